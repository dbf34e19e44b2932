package dev.jvmm.device.virtio;

/**
 * virtio-console (id 3) with a single port and no optional features: receiveq (0) carries host
 * input to the guest, transmitq (1) guest output to the {@link Output} sink.
 *
 * <p>Host input goes in with {@link #offer}: it fills the receive buffers the guest has made
 * available and returns how much fitted, so the caller keeps the rest; the
 * {@link #onReceiveBuffers(Runnable) listener} runs when the guest makes new receive buffers available
 * (on the notifying thread, with the device lock held: it may call {@code offer} directly or schedule a
 * retry).
 */
public final class VirtioConsole extends AbstractVirtioDevice {
    public static final int DEVICE_ID = 3;
    public static final int RECEIVEQ = 0;
    public static final int TRANSMITQ = 1;
    public static final int QUEUE_SIZE = 256;
    /** Bytes copied out of one transmit chain at a time. */
    private static final int CHUNK = 64 * 1024;

    /** Where guest output goes. Called with the device lock held: must not block for long. */
    @FunctionalInterface
    public interface Output {
        void write(byte[] b, int off, int len);
    }

    private final Output output;
    private Runnable receiveListener = () -> { };

    public VirtioConsole(Output output) {
        super(DEVICE_ID, 12, 2, QUEUE_SIZE); // cols, rows, max_nr_ports, emerg_wr: all zero, none of their features is offered
        this.output = output;
    }

    public synchronized void onReceiveBuffers(Runnable listener) {
        this.receiveListener = listener == null ? () -> { } : listener;
    }


    @Override
    public long deviceFeatures() {
        return 0;
    }



    /**
     * Copies as much of {@code buf[off, off + len)} into the guest's receive buffers as they hold
     * (each chain is returned with the bytes it got) and returns how many bytes were taken; 0 when the
     * device is not active or the guest has no receive buffer available.
     */
    public synchronized int offer(byte[] buf, int off, int len) {
        SplitVirtqueue q = queue(RECEIVEQ);
        if (q == null || len <= 0 || q.isBroken()) return 0;
        int done = 0;
        try {
            while (done < len) {
                DescriptorChain chain = q.pop();
                if (chain == null) break;
                int n = chain.write(0, buf, off + done, len - done);
                q.addUsed(chain, n);
                done += n;
                stats.requests.incrementAndGet();
                stats.bytes.addAndGet(n);
            }
        } catch (VirtqueueException e) {
            host.queueBroken(e);
        }
        host.signalUsed(RECEIVEQ);
        return done;
    }

    @Override
    public synchronized void notify(int queueIndex) throws VirtqueueException {
        SplitVirtqueue q = queue(queueIndex);
        if (q == null) return;
        if (queueIndex == RECEIVEQ) {
            receiveListener.run();
            return;
        }
        byte[][] buf = {null};
        serve(TRANSMITQ, chain -> {
            long total = chain.readableLength();
            for (long pos = 0; pos < total; ) {
                int n = (int) Math.min(CHUNK, total - pos);
                if (buf[0] == null || buf[0].length < n) buf[0] = new byte[Math.min(CHUNK, Math.max(n, 4096))];
                chain.read(pos, buf[0], 0, n);
                output.write(buf[0], 0, n);
                pos += n;
            }
            stats.bytes.addAndGet(total);
            return 0;
        });
    }
}
