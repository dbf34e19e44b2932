package dev.jvmm.vmm;

import dev.jvmm.sys.ShutdownHooks;
import dev.jvmm.log.Log;
import dev.jvmm.sys.Errno;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SyscallException;
import dev.jvmm.sys.SocketFiles;
import dev.jvmm.sys.UnixSocket;
import dev.jvmm.sys.UnixSocketException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * {@code --api-socket PATH}: the control socket. A UNIX stream socket, owner-only from the moment it
 * exists and removed when jvmm ends, served by a thread of its own ("jvmm api") with poll(2), so no
 * client can hold up the vCPUs or the event loop. One JSON object per line in ({@link ApiRequest}),
 * one per line out.
 *
 * <p>Everything a client can make it hold is bounded: a request line is at most {@link #MAX_LINE}
 * bytes (a longer one gets a {@code line_too_long} reply and the connection is closed), replies
 * waiting for a slow reader at most {@link #MAX_PENDING_OUT} (further requests are not read until
 * they drain), and at most {@link #MAX_CLIENTS} connections are served at once (one more gets a
 * {@code too_many_clients} reply and is closed). A client's failure or misbehaviour closes that
 * client, never the server or the VM.
 *
 * <p>The server outlives a VM restart (--on-reboot restart): {@link #attach} says which VM requests go
 * to; with none attached, requests other than info get a {@code no_vm} reply.
 */
public final class ApiServer implements AutoCloseable {
    /** The longest request line, without its newline. */
    public static final int MAX_LINE = 64 * 1024;
    /** Reply bytes a client may leave unread before jvmm stops reading its requests. */
    static final int MAX_PENDING_OUT = 256 * 1024;
    /** Connections served at once. */
    public static final int MAX_CLIENTS = 256;
    private static final String DEBUGGER = "a debugger attached with --gdb controls when the VM runs; detach it first";

    /** How long a pause may take (every vCPU out of KVM_RUN, the event loop holding) before its reply says it did not. */
    static final long PAUSE_TIMEOUT_NANOS = 5_000_000_000L;
    private static final int READ_CHUNK = 64 * 1024;
    private static final int ACCEPTS_PER_ROUND = 64;

    private final Path path;
    private final UnixSocket listener;
    private final Object fileKey;
    private final Map<String, Object> runInfo;
    private final int wakeFd;
    private final Thread thread;
    private final Thread removeAtExit;
    private volatile Vm vm;
    private volatile boolean closing;
    private boolean closed;

    private ApiServer(Path path, UnixSocket listener, Map<String, Object> runInfo) throws IOException {
        this.path = path;
        this.listener = listener;
        this.runInfo = runInfo;
        this.fileKey = Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
        // belt and braces: the socket was made 0600 before bind already
        Files.setPosixFilePermissions(path, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        this.wakeFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (wakeFd < 0) throw new SyscallException("eventfd", LibC.errno());
        this.removeAtExit = new Thread(this::removeFile, "jvmm api cleanup");
        ShutdownHooks.add(removeAtExit); // a signal that ends the process before the normal path
        RunGuard.atHalt(removeAtExit); // and the watchdog's halt, which runs no shutdown hooks
        this.thread = Thread.ofPlatform().name("jvmm api").daemon(true).unstarted(this::serve);
    }

    /**
     * Creates the socket at {@code path} and starts serving it. A socket file left there by a jvmm
     * that was killed (nobody listening) is replaced; anything else at the path is refused.
     * @param runInfo facts for the info reply (kernel, command line), written as given
     */
    public static ApiServer start(Path path, Map<String, Object> runInfo) throws VmmException {
        Path p = path.toAbsolutePath();
        UnixSocket listener;
        try {
            SocketFiles.removeStale(p);
            listener = SocketFiles.listen(p, at -> UnixSocket.listenPrivate(at, 128));
        } catch (IOException e) {
            throw new VmmException(ExitStatus.USAGE, "--api-socket: " + e.getMessage());
        }
        try {
            ApiServer server = new ApiServer(p, listener, runInfo);
            server.thread.start();
            return server;
        } catch (IOException | RuntimeException e) {
            listener.close();
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // reported below
            }
            throw new VmmException(ExitStatus.USAGE, "--api-socket " + path + ": " + e.getMessage(), e);
        }
    }

    public Path path() {
        return path;
    }

    /** The VM requests go to from now on (null: none, between boots or after the run). Any thread. */
    public void attach(Vm vm) {
        this.vm = vm;
        wake();
    }

    private void wake() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(JAVA_LONG);
            one.set(JAVA_LONG, 0, 1L);
            LibC.write(wakeFd, one, 8);
        }
    }

    // ---- the serving thread ----

    /** One connection: its partial request line, its unsent replies, what it waits for. */
    private static final class Client {
        final UnixSocket socket;
        final int fd;
        byte[] in = new byte[1024];
        int inLength;
        byte[] out = new byte[0];
        int outStart, outLength;
        /** No more requests are read: end of input, or an error closes the connection once the replies are out. */
        boolean closeWhenFlushed;
        /** A pause request waiting for the VM to be paused: its id, and the deadline for the reply. */
        boolean pausePending;
        Object pauseId;
        long pauseDeadline;

        Client(UnixSocket socket) {
            this.socket = socket;
            this.fd = socket.fd();
        }

        boolean hasOutput() {
            return outLength > 0;
        }

        void reply(Map<String, Object> message) {
            byte[] line = (Json.line(message) + "\n").getBytes(StandardCharsets.UTF_8);
            if (outStart > 0 && outLength + line.length > out.length) {
                System.arraycopy(out, outStart, out, 0, outLength);
                outStart = 0;
            }
            if (outStart + outLength + line.length > out.length) {
                out = Arrays.copyOf(out, Math.max(out.length * 2, outLength + line.length + 256));
            }
            System.arraycopy(line, 0, out, outStart + outLength, line.length);
            outLength += line.length;
        }

        /** The index of the first newline in the input, or -1. */
        int newline() {
            for (int i = 0; i < inLength; i++) if (in[i] == '\n') return i;
            return -1;
        }
    }

    private final List<Client> clients = new ArrayList<>();

    private void serve() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment chunk = arena.allocate(READ_CHUNK);
            MemorySegment drain = arena.allocate(JAVA_LONG);
            MemorySegment fds = arena.allocate(LibC.POLLFD, MAX_CLIENTS + 2);
            long pollSize = LibC.POLLFD.byteSize();
            List<Client> polled = new ArrayList<>();
            while (!closing) {
                fds.set(JAVA_INT, 0, wakeFd);
                fds.set(JAVA_SHORT, 4, LibC.POLLIN);
                fds.set(JAVA_SHORT, 6, (short) 0);
                boolean accepting = System.nanoTime() - acceptAgainAt >= 0;
                fds.set(JAVA_INT, pollSize, listener.fd());
                fds.set(JAVA_SHORT, pollSize + 4, accepting ? LibC.POLLIN : 0);
                fds.set(JAVA_SHORT, pollSize + 6, (short) 0);
                polled.clear();
                boolean waiting = false;
                for (Client c : clients) {
                    short events = 0;
                    if (c.hasOutput()) events |= LibC.POLLOUT;
                    if (!c.closeWhenFlushed && !c.pausePending && c.outLength < MAX_PENDING_OUT) events |= LibC.POLLIN;
                    waiting |= c.pausePending;
                    long at = (polled.size() + 2) * pollSize;
                    fds.set(JAVA_INT, at, c.fd);
                    fds.set(JAVA_SHORT, at + 4, events);
                    fds.set(JAVA_SHORT, at + 6, (short) 0);
                    polled.add(c);
                }
                int rc = LibC.poll(fds, polled.size() + 2, waiting ? 2 : accepting ? -1 : 100);
                if (rc < 0) {
                    int errno = LibC.errno();
                    if (errno == Errno.EINTR) continue;
                    throw new SyscallException("poll", errno);
                }
                if (fds.get(JAVA_SHORT, 6) != 0) LibC.read(wakeFd, drain, 8);
                if (closing) break;
                for (int i = 0; i < polled.size(); i++) {
                    Client c = polled.get(i);
                    short revents = fds.get(JAVA_SHORT, (i + 2) * pollSize + 6);
                    if (revents == 0) continue;
                    try {
                        serveClient(c, revents, chunk);
                    } catch (RuntimeException | UnixSocketException | StackOverflowError e) {
                        Log.debug(ApiServer.class, "control socket client closed: {}", e.toString());
                        drop(c);
                    }
                }
                for (Client c : List.copyOf(clients)) {
                    try {
                        if (c.pausePending) finishPause(c);
                        if (!c.pausePending) handleLines(c);
                        flush(c, chunk);
                        if (c.closeWhenFlushed && !c.hasOutput() && !c.pausePending) drop(c);
                    } catch (RuntimeException | StackOverflowError e) {
                        Log.debug(ApiServer.class, "control socket client closed: {}", e.toString());
                        drop(c);
                    }
                }
                if (fds.get(JAVA_SHORT, pollSize + 6) != 0) acceptClients(chunk);
            }
        } catch (Throwable t) { // the control socket fails alone: the VM runs on
            if (!closing) Log.warn(ApiServer.class, "the control socket {} stopped serving: {}", path, t.toString());
        } finally {
            for (Client c : List.copyOf(clients)) drop(c);
        }
    }

    /** After accept fails (no descriptors left: EMFILE), connections wait this long instead of spinning the thread. */
    private static final long ACCEPT_BACKOFF_NANOS = 100_000_000L;
    private long acceptAgainAt = System.nanoTime();

    private void acceptClients(MemorySegment chunk) {
        for (int i = 0; i < ACCEPTS_PER_ROUND; i++) {
            UnixSocket s;
            try {
                s = listener.acceptNow();
            } catch (UnixSocketException e) {
                Log.debug(ApiServer.class, "control socket: {}", e.getMessage());
                acceptAgainAt = System.nanoTime() + ACCEPT_BACKOFF_NANOS;
                return;
            }
            if (s == null) return;
            Client c = new Client(s);
            if (clients.size() >= MAX_CLIENTS) {
                c.reply(ApiRequest.error(null, null, "too_many_clients", "already serving " + MAX_CLIENTS + " connections; try again later"));
                flush(c, chunk);
                s.close();
                continue;
            }
            clients.add(c);
        }
    }

    private void drop(Client c) {
        clients.remove(c);
        c.socket.close();
    }

    private void serveClient(Client c, short revents, MemorySegment chunk) throws UnixSocketException {
        if ((revents & LibC.POLLOUT) != 0) flush(c, chunk);
        if ((revents & (LibC.POLLIN | LibC.POLLHUP | LibC.POLLERR)) != 0 && !c.closeWhenFlushed && !c.pausePending) read(c, chunk);
        if ((revents & LibC.POLLNVAL) != 0) drop(c);
    }

    private void read(Client c, MemorySegment chunk) {
        int room = MAX_LINE + 1 - c.inLength; // one byte more than a line may hold: enough to see it is too long
        if (room <= 0) return;
        long n = LibC.read(c.fd, chunk, Math.min(READ_CHUNK, room));
        if (n < 0) {
            int errno = LibC.errno();
            if (errno == Errno.EAGAIN || errno == Errno.EINTR) return;
            c.closeWhenFlushed = true; // ECONNRESET and the like: nothing more comes
            c.inLength = 0;
            return;
        }
        if (n == 0) { // end of input: answer what came, then close
            c.closeWhenFlushed = true;
            if (c.inLength > 0 && c.newline() < 0) {
                c.in = Arrays.copyOf(c.in, Math.max(c.in.length, c.inLength + 1));
                c.in[c.inLength++] = '\n'; // a last request without its newline still counts
            }
            handleLines(c);
            return;
        }
        if (c.inLength + n > c.in.length) c.in = Arrays.copyOf(c.in, (int) Math.min(MAX_LINE + 1, Math.max(c.in.length * 2L, c.inLength + n)));
        MemorySegment.copy(chunk, JAVA_BYTE, 0, c.in, c.inLength, (int) n);
        c.inLength += (int) n;
        handleLines(c);
    }

    /** Answers the complete request lines in {@code c}'s input, while its unsent replies stay under the limit. */
    private void handleLines(Client c) {
        while (!c.pausePending && c.outLength < MAX_PENDING_OUT) {
            int nl = c.newline();
            if (nl < 0) {
                if (c.inLength > MAX_LINE) {
                    c.reply(ApiRequest.error(null, null, "line_too_long", "a request line is at most " + MAX_LINE
                            + " bytes; closing the connection"));
                    c.inLength = 0;
                    c.in = new byte[0];
                    c.closeWhenFlushed = true;
                }
                return;
            }
            String line = new String(c.in, 0, nl, StandardCharsets.UTF_8);
            System.arraycopy(c.in, nl + 1, c.in, 0, c.inLength - nl - 1);
            c.inLength -= nl + 1;
            if (c.in.length > 4096 && c.inLength < 1024) c.in = Arrays.copyOf(c.in, 1024); // give a big line's room back
            if (line.isBlank()) continue;
            handle(c, line);
        }
    }

    private void handle(Client c, String line) {
        ApiRequest r;
        try {
            r = ApiRequest.parse(line.strip());
        } catch (ApiRequest.Error e) {
            c.reply(ApiRequest.error(null, e.id(), e.code(), e.getMessage()));
            return;
        } catch (RuntimeException | StackOverflowError e) { // the parser's own failure on a hostile line
            c.reply(ApiRequest.error(null, null, "malformed_json", "not valid JSON: " + e.getClass().getSimpleName()));
            return;
        }
        Vm v = vm;
        try {
            switch (r.name()) {
                case "info" -> {
                    Map<String, Object> m = ApiRequest.reply(true, r.name(), r.id());
                    m.put("pid", ProcessHandle.current().pid());
                    m.putAll(runInfo);
                    if (v == null) m.put("state", "no_vm");
                    else m.putAll(v.info());
                    c.reply(m);
                }
                case "stats" -> {
                    if (v == null || v.state().equals("starting")) {
                        c.reply(noVm(r));
                        return;
                    }
                    Map<String, Object> m = ApiRequest.reply(true, r.name(), r.id());
                    m.put("state", v.state());
                    m.put("stats", v.liveReport().toMap());
                    c.reply(m);
                }
                case "pause" -> {
                    if (v == null) {
                        c.reply(noVm(r));
                        return;
                    }
                    String why = v.debuggerAttached() ? DEBUGGER : v.requestPause();
                    if (why != null) {
                        c.reply(ApiRequest.error(r.name(), r.id(), "wrong_state", why));
                        return;
                    }
                    c.pausePending = true;
                    c.pauseId = r.id();
                    c.pauseDeadline = System.nanoTime() + PAUSE_TIMEOUT_NANOS;
                    finishPause(c);
                }
                case "resume" -> {
                    if (v == null) {
                        c.reply(noVm(r));
                        return;
                    }
                    long clock = v.pausedClock();
                    boolean advance = (Boolean) r.args().get("advance_clock");
                    String why = v.debuggerAttached() ? DEBUGGER : v.resume(advance);
                    if (why != null) {
                        c.reply(ApiRequest.error(r.name(), r.id(), "wrong_state", why));
                        return;
                    }
                    Map<String, Object> m = ApiRequest.reply(true, r.name(), r.id());
                    m.put("state", v.state());
                    if (clock >= 0 && !advance) m.put("kvmclock_ns", clock);
                    c.reply(m);
                }
                case "stop" -> {
                    if (v == null) {
                        c.reply(noVm(r));
                        return;
                    }
                    int status = (Integer) r.args().get("status");
                    v.stop(new Stop(StopCause.API_STOP, status, "stopped by a stop request on the control socket (status " + status + ")"));
                    Map<String, Object> m = ApiRequest.reply(true, r.name(), r.id());
                    m.put("state", "stopping");
                    m.put("exit_status", status);
                    c.reply(m);
                }
                case "snapshot" -> {
                    if (v == null) {
                        c.reply(noVm(r));
                        return;
                    }
                    try {
                        Map<String, Object> m = ApiRequest.reply(true, r.name(), r.id());
                        m.putAll(VmSnapshot.take(v, Path.of((String) r.args().get("dir")), runInfo));
                        c.reply(m);
                    } catch (ApiRequest.Error e) {
                        c.reply(ApiRequest.error(r.name(), r.id(), e.code(), e.getMessage()));
                    } catch (IOException | java.nio.file.InvalidPathException e) {
                        c.reply(ApiRequest.error(r.name(), r.id(), "failed", "cannot write the snapshot: " + e));
                    }
                }
                default -> c.reply(ApiRequest.error(r.name(), r.id(), "unknown_request", "unknown request '" + r.name() + "'"));
            }
        } catch (RuntimeException e) { // a KVM call failing under a request: that request's error, not the server's
            c.pausePending = false;
            c.reply(ApiRequest.error(r.name(), r.id(), "failed", String.valueOf(e.getMessage())));
        }
    }

    private static Map<String, Object> noVm(ApiRequest r) {
        return ApiRequest.error(r.name(), r.id(), "no_vm", "no VM is running now (starting, between boots, or ended)");
    }

    /** Replies to a pending pause once the VM is paused, or with an error once that cannot happen or takes too long. */
    private void finishPause(Client c) {
        Vm v = vm;
        if (v == null) {
            c.pausePending = false;
            c.reply(ApiRequest.error("pause", c.pauseId, "no_vm", "the VM ended before it was paused"));
        } else if (v.pauseDone()) {
            c.pausePending = false;
            Map<String, Object> m = ApiRequest.reply(true, "pause", c.pauseId);
            m.put("state", "paused");
            m.put("kvmclock_ns", v.pausedClock());
            c.reply(m);
        } else if (v.stopping() || !v.pauseRequested()) {
            c.pausePending = false;
            c.reply(ApiRequest.error("pause", c.pauseId, "wrong_state", v.stopping() ? "the VM is stopping" : "the pause was called off by a resume"));
        } else if (System.nanoTime() - c.pauseDeadline > 0) {
            c.pausePending = false;
            c.reply(ApiRequest.error("pause", c.pauseId, "pause_timeout", "not every vCPU left KVM_RUN within "
                    + PAUSE_TIMEOUT_NANOS / 1_000_000_000L + " s (a vCPU waits on a device?); the VM stays pausing until a resume"));
        }
    }

    /** Sends what it can of {@code c}'s replies without blocking. */
    private void flush(Client c, MemorySegment chunk) {
        while (c.hasOutput()) {
            int n = Math.min(c.outLength, READ_CHUNK);
            MemorySegment.copy(c.out, c.outStart, chunk, JAVA_BYTE, 0, n);
            long sent = c.socket.send(chunk, n);
            if (sent == -1) return; // full: POLLOUT brings us back
            if (sent < 0) { // the peer went away: its replies go nowhere
                c.outLength = 0;
                c.closeWhenFlushed = true;
                return;
            }
            c.outStart += (int) sent;
            c.outLength -= (int) sent;
        }
        c.outStart = 0;
        if (c.out.length > 64 * 1024) c.out = new byte[0];
    }

    /** Stops serving, closes every connection and removes the socket file. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        closing = true;
        wake();
        try {
            thread.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        listener.close();
        removeFile();
        if (!thread.isAlive()) LibC.close(wakeFd);
        RunGuard.removeAtHalt(removeAtExit);
        ShutdownHooks.remove(removeAtExit);
    }

    /** Removes the socket file if it is still the one this server made. */
    private void removeFile() {
        try {
            Object key = Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            if (key != null && key.equals(fileKey)) Files.deleteIfExists(path);
        } catch (IOException e) {
            // already gone
        }
    }

    /** The facts a run gives the info reply. */
    public static Map<String, Object> runInfo(Path kernel, String cmdline) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("kernel", kernel == null ? null : kernel.toString());
        m.put("cmdline", cmdline);
        return m;
    }
}
