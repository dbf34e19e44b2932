package dev.jvmm.device.virtio;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Common device plumbing: a little-endian configuration space in a byte array (read-only to the
 * driver unless {@link #writeConfig} is overridden), the queues and features given at activation,
 * counters. Subclasses process their queues in {@link #notify(int)}.
 */
public abstract class AbstractVirtioDevice implements VirtioDevice {
    protected final VirtioCounters stats = new VirtioCounters();
    protected final ByteBuffer config;
    protected Host host;
    protected List<SplitVirtqueue> queues;
    protected long features;

    private final int deviceId;
    private final int queueCount;
    private final int queueSize;

    /** What consumes one popped chain; returns the bytes written into its writable buffers. */
    @FunctionalInterface
    protected interface ChainHandler {
        long handle(DescriptorChain chain) throws VirtqueueException;
    }

    protected AbstractVirtioDevice(int deviceId, int configSize, int queueCount, int queueSize) {
        this.deviceId = deviceId;
        this.queueCount = queueCount;
        this.queueSize = queueSize;
        this.config = ByteBuffer.allocate(configSize).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public int deviceId() {
        return deviceId;
    }

    @Override
    public int queueCount() {
        return queueCount;
    }

    @Override
    public int queueMaxSize(int queue) {
        return queueSize;
    }

    /** Pops every available chain of queue {@code queueIndex} (if it is live) and completes each with {@code h}. */
    protected void serve(int queueIndex, ChainHandler h) throws VirtqueueException {
        SplitVirtqueue q = queue(queueIndex);
        if (q == null) return;
        DescriptorChain chain;
        while ((chain = q.pop()) != null) {
            q.addUsed(chain, h.handle(chain));
            stats.requests.incrementAndGet();
        }
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
    public synchronized void activate(Host host, List<SplitVirtqueue> queues, long features) {
        this.host = host;
        this.queues = queues;
        this.features = features;
    }

    @Override
    public synchronized void reset() {
        this.host = null;
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
