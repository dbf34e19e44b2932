package dev.jvmm.host;

import dev.jvmm.log.Log;
import dev.jvmm.device.DeviceFailure;
import dev.jvmm.event.EventLoop;
import dev.jvmm.device.virtio.VirtioNet;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.Tun;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicBoolean;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Joins a {@link VirtioNet} to a {@link Tun}. Guest to host: {@link #send} writes each packet to the
 * tap (from whichever thread processes the transmit queue; a full tap queue, EAGAIN, or an interface
 * that is down, EIO, drops the packet). Host to guest: the event loop watches the tap descriptor and
 * on input reads up to {@link #BATCH} packets and {@link VirtioNet#deliver delivers} them. Packets the
 * guest has no receive buffer for wait in a backlog of at most {@link #BACKLOG}, retried when the guest
 * adds receive buffers; while the backlog is full the tap is not read at all, so further packets queue
 * (and are finally dropped and counted) in the kernel's tap queue instead of costing CPU time here.
 */
public final class TapLink implements VirtioNet.Backend {
    static final int BACKLOG = 256;
    static final int BATCH = 64;

    private final Tun tun;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment txBuf = arena.allocate(VirtioNet.MAX_PACKET);
    /** One byte more than a packet may have, so an oversized one shows as such. */
    private final MemorySegment rxBuf = arena.allocate(VirtioNet.MAX_PACKET + 1);
    private final ArrayDeque<byte[]> backlog = new ArrayDeque<>(); // loop thread only
    private final AtomicBoolean retryScheduled = new AtomicBoolean();
    private volatile boolean backlogged;
    private VirtioNet net;
    private EventLoop loop;
    private boolean watching;
    private boolean closed;
    private boolean loggedTxError;

    public TapLink(Tun tun) {
        this.tun = tun;
    }

    Tun tun() {
        return tun;
    }

    /** Starts the receive side: watches the tap on {@code loop}. Loop thread (or before the loop runs). */
    @Override
    public void start(VirtioNet net, EventLoop loop, DeviceFailure failure) {
        this.net = net;
        this.loop = loop;
        net.onReceiveBuffers(() -> {
            if (backlogged && retryScheduled.compareAndSet(false, true)) loop.execute(this::retry);
        });
        watch();
    }

    private void watch() {
        if (watching || closed) return;
        watching = true;
        loop.watch(tun.fd(), (fd, revents) -> readable(revents));
    }

    private void unwatch() {
        if (!watching) return;
        watching = false;
        loop.unwatch(tun.fd());
    }

    @Override
    public synchronized int send(byte[] packet, int len) {
        if (closed) return -1;
        MemorySegment.copy(packet, 0, txBuf, JAVA_BYTE, 0, len);
        long n = tun.write(txBuf, len);
        if (n < 0 && !loggedTxError) {
            loggedTxError = true;
            Log.debug(TapLink.class, "tap {}: dropping guest packets: {} (further drops are only counted)", tun.name(),
                    dev.jvmm.sys.Errno.describe((int) -n));
        }
        return n < 0 ? -1 : (int) n;
    }

    private void readable(short revents) {
        if ((revents & LibC.POLLIN) == 0) { // POLLERR/POLLHUP/POLLNVAL alone: the tap is gone
            Log.warn(TapLink.class, "tap {}: poll reports 0x{}; no longer reading from it", tun.name(), Integer.toHexString(revents & 0xffff));
            unwatch();
            return;
        }
        flushBacklog();
        for (int i = 0; i < BATCH && backlog.size() < BACKLOG; i++) {
            long n;
            try {
                n = tun.read(rxBuf, rxBuf.byteSize());
            } catch (RuntimeException e) {
                Log.warn(TapLink.class, "{}; no longer reading from the tap", e.getMessage());
                unwatch();
                return;
            }
            if (n < 0) break;
            byte[] packet = rxBuf.asSlice(0, Math.min(n, rxBuf.byteSize())).toArray(JAVA_BYTE);
            if (!backlog.isEmpty() || net.deliver(packet, packet.length) == VirtioNet.NO_BUFFER) backlog.add(packet);
        }
        if (backlog.size() >= BACKLOG) unwatch();
        backlogged = !backlog.isEmpty();
    }

    /** Delivers backlogged packets in order until the guest runs out of receive buffers. */
    private void flushBacklog() {
        byte[] p;
        while ((p = backlog.peek()) != null) {
            if (net.deliver(p, p.length) == VirtioNet.NO_BUFFER) break;
            backlog.poll();
        }
    }

    /** The guest added receive buffers while packets were waiting. Loop thread. */
    private void retry() {
        retryScheduled.set(false);
        if (closed) return;
        flushBacklog();
        backlogged = !backlog.isEmpty();
        if (backlog.size() < BACKLOG) watch();
    }

    /** Packets waiting for receive buffers (for tests and stats). Loop thread. */
    int backlogSize() {
        return backlog.size();
    }

    /** A copy of the waiting packets, oldest first (for tests). Loop thread. */
    java.util.List<byte[]> backlog() {
        return java.util.List.copyOf(backlog);
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        if (loop != null) unwatch();
        closed = true;
        backlog.clear();
        tun.close();
        arena.close();
    }
}
