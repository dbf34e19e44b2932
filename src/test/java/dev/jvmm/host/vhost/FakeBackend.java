package dev.jvmm.host.vhost;

import dev.jvmm.sys.LibC;
import dev.jvmm.sys.UnixSocket;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A scripted vhost-user back end on one end of a socketpair, run in a thread: each step expects one
 * request and answers it as told (correctly or not). What it received is kept for the test to check;
 * a step that did not get what it expected fails the test at {@link #finish}.
 */
final class FakeBackend implements AutoCloseable {

    /** One request as the back end saw it. */
    record Request(VhostUserMessage.Header header, byte[] payload, int[] fds) {
        VhostUserRequest request() {
            return VhostUserRequest.of(header.request());
        }

        boolean needsReply() {
            return (header.flags() & VhostUserProtocol.FLAG_NEED_REPLY) != 0;
        }

        long u64() {
            return VhostUserMessage.u64(payload);
        }
    }

    interface Answer {
        void answer(Request request, UnixSocket socket) throws Exception;
    }

    private record Step(VhostUserRequest expected, Answer answer) { }

    final UnixSocket frontEndSide;
    private final UnixSocket socket;
    private final List<Step> steps = new ArrayList<>();
    final List<Request> received = new ArrayList<>();
    private Thread thread;
    private volatile Throwable failure;

    FakeBackend() {
        UnixSocket[] pair = UnixSocket.pair();
        frontEndSide = pair[0];
        socket = pair[1];
    }

    FakeBackend expect(VhostUserRequest request, Answer answer) {
        steps.add(new Step(request, answer));
        return this;
    }

    /** A request with no reply of its own: acknowledged with 0 when it asks for it (REPLY_ACK). */
    FakeBackend expect(VhostUserRequest request) {
        return expect(request, (r, s) -> {
            if (r.needsReply()) send(s, reply(r.header().request(), VhostUserMessage.u64(0)));
        });
    }

    static long deadline() {
        return System.nanoTime() + 5_000_000_000L;
    }

    static byte[] reply(int request, byte[] payload) {
        return VhostUserMessage.encode(request, VhostUserProtocol.VERSION | VhostUserProtocol.FLAG_REPLY, payload);
    }

    static void send(UnixSocket s, byte[] bytes) throws Exception {
        s.sendAll(bytes, new int[0], deadline());
    }

    static Answer u64(long value) {
        return (r, s) -> send(s, reply(r.header().request(), VhostUserMessage.u64(value)));
    }

    static Answer silence() {
        return (r, s) -> { };
    }

    FakeBackend start() {
        thread = Thread.ofPlatform().name("fake vhost-user back end").daemon().start(() -> {
            try {
                for (Step step : steps) {
                    UnixSocket.Message h = socket.receiveExactly(VhostUserProtocol.HEADER_BYTES, VhostUserProtocol.MAX_MEM_REGIONS, deadline());
                    VhostUserMessage.Header header = VhostUserMessage.decodeHeader(h.bytes());
                    if (header.size() < 0 || header.size() > 4096) throw new AssertionError("request payload of " + header.size() + " bytes");
                    byte[] payload = header.size() == 0 ? new byte[0] : socket.receiveExactly(header.size(), 0, deadline()).bytes();
                    Request r = new Request(header, payload, h.fds());
                    synchronized (received) {
                        received.add(r);
                    }
                    assertEquals(step.expected(), r.request(), "request #" + received.size());
                    assertEquals(VhostUserProtocol.VERSION, header.flags() & VhostUserProtocol.VERSION_MASK, "version");
                    step.answer().answer(r, socket);
                }
            } catch (Throwable t) {
                failure = t;
            }
        });
        return this;
    }

    /** Closes the back end's side only: the front end sees the back end hang up. */
    void hangUp() {
        socket.close();
    }

    /** Waits for the script to end and rethrows what went wrong in it. */
    void finish() throws Throwable {
        thread.join(TimeUnit.SECONDS.toMillis(10));
        if (thread.isAlive()) throw new AssertionError("the fake back end is still waiting for a request");
        if (failure != null) throw failure;
    }

    Request received(int i) {
        synchronized (received) {
            return received.get(i);
        }
    }

    @Override
    public void close() {
        socket.close();
        frontEndSide.close();
        try {
            if (thread != null) thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        synchronized (received) {
            for (Request r : received) {
                for (int fd : r.fds()) LibC.close(fd);
            }
        }
    }
}
