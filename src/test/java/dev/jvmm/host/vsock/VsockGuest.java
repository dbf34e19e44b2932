package dev.jvmm.host.vsock;

import dev.jvmm.device.virtio.TestDriver;
import dev.jvmm.device.virtio.TestDriver.Buf;
import dev.jvmm.device.virtio.VirtioAttachment;
import dev.jvmm.device.virtio.VirtioMmioTransport;
import dev.jvmm.device.virtio.VirtioVsock;
import dev.jvmm.device.virtio.VsockPacket;
import dev.jvmm.event.EventLoop;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.LibC;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

import static dev.jvmm.device.virtio.VsockPacket.*;

/**
 * A scripted guest driver for a {@link VirtioVsock} on a real {@link VsockMuxer}: the test thread is
 * the event loop's; it posts receive buffers (a 44-byte header descriptor and a 4096-byte one, as
 * Linux 6.1 does), sends packets on the transmit queue and collects what comes back.
 */
final class VsockGuest implements AutoCloseable {
    static final long CID = 3;
    static final int RX_BUFFERS = 64, RX_DATA = 4096;
    static final long MEM = 16 << 20;
    static final long RX_BASE = 4 << 20, TX_BASE = 8 << 20;

    /** A packet the guest received. */
    record Rx(VsockPacket header, byte[] data) {
        int op() {
            return header.op();
        }
    }

    final EventLoop loop = new EventLoop();
    final GuestMemory mem = GuestMemory.wrap(List.of(new GuestMemory.Region(0, MEM, Arena.ofAuto().allocate(MEM, 4096))));
    final VsockMuxer muxer;
    final VirtioVsock device;
    final TestDriver d;
    final List<String> failures = new CopyOnWriteArrayList<>();
    final ArrayDeque<Rx> received = new ArrayDeque<>();
    private final int[] eventFds = new int[3];
    private final Map<Integer, Integer> headToBuffer = new HashMap<>();
    private int seenUsed;
    private boolean postBuffers = true;
    private final List<Integer> held = new ArrayList<>();

    VsockGuest(Path uds) throws IOException {
        muxer = VsockMuxer.open(uds, CID);
        device = new VirtioVsock(CID, muxer);
        d = new TestDriver(device, mem, loop::execute);
        for (int i = 0; i < 3; i++) eventFds[i] = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        device.attach(new VirtioAttachment(loop, eventFds, d.t::notify, d.t::resume, failures::add));
        d.init(1L << VirtioMmioTransport.F_VERSION_1, 256);
        for (int i = 0; i < RX_BUFFERS; i++) post(i);
        d.kick(VirtioVsock.RXQ);
    }

    private long rxAddr(int buffer) {
        return RX_BASE + (long) buffer * (VsockPacket.HEADER_BYTES + RX_DATA + 64);
    }

    private void post(int buffer) {
        long a = rxAddr(buffer);
        int head = d.submit(VirtioVsock.RXQ, Buf.w(a, VsockPacket.HEADER_BYTES), Buf.w(a + 64, RX_DATA));
        headToBuffer.put(head, buffer);
    }

    /** Stops giving back receive buffers (a guest that does not read its queue), or starts again. */
    void holdBuffers(boolean hold) {
        postBuffers = !hold;
        if (!hold) {
            for (int b : held) post(b);
            held.clear();
            d.kick(VirtioVsock.RXQ);
        }
    }

    /** Puts a packet with {@code data} on the transmit queue (header and payload in two descriptors) and notifies. */
    void send(VsockPacket h, byte[] data) {
        mem.write(TX_BASE, h.encode());
        if (data.length > 0) {
            mem.write(TX_BASE + 4096, data);
            d.submit(VirtioVsock.TXQ, Buf.r(TX_BASE, VsockPacket.HEADER_BYTES), Buf.r(TX_BASE + 4096, data.length));
        } else {
            d.submit(VirtioVsock.TXQ, Buf.r(TX_BASE, VsockPacket.HEADER_BYTES));
        }
        d.kick(VirtioVsock.TXQ);
    }

    void send(int op, int srcPort, int dstPort, int flags, int bufAlloc, int fwdCnt, byte[] data) {
        send(new VsockPacket(CID, HOST_CID, srcPort, dstPort, data.length, TYPE_STREAM, op, flags, bufAlloc, fwdCnt), data);
    }

    /** One loop round (at most {@code ms}), then whatever came back. */
    void turn(int ms) {
        loop.runOnce(ms);
        collect();
    }

    private void collect() {
        boolean reposted = false;
        while (seenUsed != d.usedIdx(VirtioVsock.RXQ)) {
            int head = d.usedId(VirtioVsock.RXQ, seenUsed);
            int len = d.usedLen(VirtioVsock.RXQ, seenUsed);
            seenUsed = (seenUsed + 1) & 0xffff;
            int buffer = headToBuffer.remove(head);
            long a = rxAddr(buffer);
            if (len >= VsockPacket.HEADER_BYTES) {
                byte[] h = new byte[VsockPacket.HEADER_BYTES];
                mem.read(a, h);
                VsockPacket p = VsockPacket.decode(h, 0);
                byte[] data = new byte[len - VsockPacket.HEADER_BYTES];
                mem.read(a + 64, data);
                received.add(new Rx(p, data));
            }
            if (postBuffers) {
                post(buffer);
                reposted = true;
            } else {
                held.add(buffer);
            }
        }
        if (reposted) d.kick(VirtioVsock.RXQ);
    }

    /** Runs the loop until a received packet matches (and takes it), or fails after {@code ms}. */
    Rx await(Predicate<Rx> match, long ms, String what) {
        long end = System.nanoTime() + ms * 1_000_000L;
        while (true) {
            for (var it = received.iterator(); it.hasNext(); ) {
                Rx r = it.next();
                if (match.test(r)) {
                    it.remove();
                    return r;
                }
            }
            if (System.nanoTime() > end) throw new AssertionError("no " + what + " within " + ms + " ms; received " + received);
            turn(10);
        }
    }

    Rx await(int op, int guestPort, long ms) {
        return await(r -> r.op() == op && r.header().dstPort() == guestPort, ms, opName(op) + " for guest port " + guestPort);
    }

    /** Runs the loop for {@code ms}. */
    void run(long ms) {
        long end = System.nanoTime() + ms * 1_000_000L;
        while (System.nanoTime() < end) turn(5);
    }

    @Override
    public void close() {
        device.close();
        for (int fd : eventFds) LibC.close(fd);
        loop.close();
    }
}
