package dev.jvmm.device.virtio;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.function.Consumer;

/**
 * Common device plumbing: a little-endian configuration space in a byte array (read-only to the
 * driver unless {@link #writeConfig} is overridden), the queues and features given at activation,
 * counters. Subclasses process their queues in {@link #notify(int)}.
 */
public abstract class AbstractVirtioDevice extends BaseVirtioDevice {
    protected final VirtioCounters stats = new VirtioCounters();
    protected final ByteBuffer config;
    protected Transport transport;
    protected List<SplitVirtqueue> queues;
    protected long features;

    /** What consumes one popped chain; returns the bytes written into its writable buffers. */
    @FunctionalInterface
    protected interface ChainHandler {
        long handle(DescriptorChain chain) throws VirtqueueException;
    }

    protected AbstractVirtioDevice(int deviceId, int configSize, int queueCount, int queueSize) {
        super(deviceId, queueCount, queueSize);
        this.config = ByteBuffer.allocate(configSize).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * How many chains one {@link #serve} call completes at most: a guest that keeps its queue full must
     * not keep the thread serving it (the event loop) from everything else.
     */
    protected static final int CHAINS_PER_TURN = 64;

    /**
     * Pops available chains of queue {@code queueIndex} (if it is live) and completes each with
     * {@code h}: at most {@link #CHAINS_PER_TURN}; if more are waiting, the transport is asked to
     * continue later.
     */
    protected void serve(int queueIndex, ChainHandler h) throws VirtqueueException {
        SplitVirtqueue q = queue(queueIndex);
        if (q == null) return;
        for (int i = 0; i < CHAINS_PER_TURN; i++) {
            DescriptorChain chain = q.pop();
            if (chain == null) return;
            q.addUsed(chain, h.handle(chain));
            stats.requests.incrementAndGet();
        }
        if (q.hasAvailable()) transport.continueLater(queueIndex);
    }

    /**
     * Like {@link #serve(int, ChainHandler)}, but pops a chain only while {@code ready} says the
     * device can take one (a back end with a full socket); when it says no the queue waits, with its
     * chains left in the ring, until the device is served again.
     */
    protected void serve(int queueIndex, java.util.function.BooleanSupplier ready, ChainHandler h) throws VirtqueueException {
        SplitVirtqueue q = queue(queueIndex);
        if (q == null) return;
        for (int i = 0; i < CHAINS_PER_TURN; i++) {
            if (!ready.getAsBoolean()) return;
            DescriptorChain chain = q.pop();
            if (chain == null) return;
            q.addUsed(chain, h.handle(chain));
            stats.requests.incrementAndGet();
        }
        if (q.hasAvailable()) transport.continueLater(queueIndex);
    }

    // ---- the receive side of devices that bring host data to the guest (console input, network frames) ----

    private Runnable receiveListener = () -> { };

    /**
     * Sets what runs when the guest makes receive buffers available (host data that found none can
     * then be offered again). Runs on the notifying thread with the device lock held: it may deliver
     * directly or schedule a retry, but must not block.
     */
    public synchronized void onReceiveBuffers(Runnable listener) {
        this.receiveListener = listener == null ? () -> { } : listener;
    }

    /**
     * For {@link #notify}: whether the notified queue is {@code receiveQueue} (the guest added receive
     * buffers, so the listener runs) or not live; either way there is nothing more to serve.
     */
    protected boolean receiveNotified(int queueIndex, int receiveQueue) {
        if (queue(queueIndex) == null) return true;
        if (queueIndex != receiveQueue) return false;
        receiveListener.run();
        return true;
    }

    /** The next receive chain of queue {@code receiveQueue}, or null: not active, broken, or none available. */
    protected DescriptorChain nextReceiveBuffer(int receiveQueue) throws VirtqueueException {
        SplitVirtqueue q = queue(receiveQueue);
        return q == null || q.isBroken() ? null : q.pop();
    }

    /**
     * Copies as much of {@code buf[off, off + len)} into the receive chains of queue {@code receiveQueue}
     * as they hold, each returned with the bytes it got, and returns how many bytes were taken. A
     * malformed chain goes to {@code broken} and ends the copy; what was taken before it counts.
     */
    protected int fillReceiveBuffers(int receiveQueue, byte[] buf, int off, int len, Consumer<VirtqueueException> broken) {
        int done = 0;
        try {
            DescriptorChain chain;
            while (done < len && (chain = nextReceiveBuffer(receiveQueue)) != null) {
                int n = chain.write(0, buf, off + done, len - done);
                receiveDone(receiveQueue, chain, n, n);
                done += n;
            }
        } catch (VirtqueueException e) {
            broken.accept(e);
        }
        return done;
    }

    /** Returns a filled receive chain holding {@code used} bytes to the guest, counting {@code payload} of them. */
    protected void receiveDone(int receiveQueue, DescriptorChain chain, long used, long payload) throws VirtqueueException {
        queue(receiveQueue).addUsed(chain, used);
        stats.requests.incrementAndGet();
        stats.bytes.addAndGet(payload);
    }

    @Override
    public int configSize() {
        return config.capacity();
    }

    @Override
    public synchronized long readConfig(int offset, int size) {
        long v = 0;
        for (int i = size - 1; i >= 0; i--) {
            int at = offset + i;
            v = (v << 8) | (at >= 0 && at < config.capacity() ? config.get(at) & 0xff : 0);
        }
        return v;
    }

    @Override
    public synchronized void writeConfig(int offset, int size, long value) {
    }

    @Override
    public synchronized void activate(Transport transport, List<SplitVirtqueue> queues, long features) {
        this.transport = transport;
        this.queues = queues;
        this.features = features;
    }

    @Override
    public synchronized void reset() {
        this.transport = null;
        this.queues = null;
        this.features = 0;
    }

    /** The queue {@code i} if the device is active and the driver made it ready, else null. */
    protected SplitVirtqueue queue(int i) {
        return queues == null || i < 0 || i >= queues.size() ? null : queues.get(i);
    }

    protected boolean hasFeature(int bit) {
        return (features & (1L << bit)) != 0;
    }

    @Override
    public VirtioCounters stats() {
        return stats;
    }
}
