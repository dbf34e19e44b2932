package dev.jvmm.device.virtio;

import dev.jvmm.device.ByteSink;
import dev.jvmm.device.ConsoleEndpoint;

/**
 * virtio-console (id 3) with a single port and no optional features: receiveq (0) carries host
 * input to the guest, transmitq (1) guest output to a {@link ByteSink}.
 *
 * <p>Host input goes in with {@link #offer}: it fills the receive buffers the guest has made
 * available and returns how much fitted, so the caller keeps the rest; the
 * {@link #onInputSpace(Runnable) listener} runs when the guest makes new receive buffers available
 * (on the notifying thread, with the device lock held: it may call {@code offer} directly or schedule a
 * retry).
 *
 * <p>Output is back-pressured: a transmit chain is copied to the sink in pieces of at most
 * {@link #CHUNK} bytes; when the sink has no room (its reader on the host stalled) the device stops
 * with the chain half sent and resumes where it was once the sink has room again, so the guest's
 * transmit queue stops draining and nothing is dropped.
 */
public final class VirtioConsole extends AbstractVirtioDevice implements ConsoleEndpoint {
    public static final int DEVICE_ID = 3;
    public static final int RECEIVEQ = 0;
    public static final int TRANSMITQ = 1;
    public static final int QUEUE_SIZE = 256;
    /** Bytes copied out of a transmit chain at a time. */
    static final int CHUNK = 16 * 1024;

    private final ByteSink output;
    private final byte[] chunk = new byte[CHUNK];
    /** A transmit chain the sink has not taken all of yet, and how far it got. */
    private DescriptorChain sending;
    private long sent;
    private boolean waitingForSpace;

    public VirtioConsole(ByteSink output) {
        super(DEVICE_ID, 12, 2, QUEUE_SIZE); // cols, rows, max_nr_ports, emerg_wr: all zero, none of their features is offered
        this.output = output;
        output.onSpace(this::spaceAvailable);
    }

    @Override
    public void onInputSpace(Runnable listener) {
        onReceiveBuffers(listener);
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
    @Override
    public synchronized int offer(byte[] buf, int off, int len) {
        if (transport == null || len <= 0) return 0;
        int done = fillReceiveBuffers(RECEIVEQ, buf, off, len, transport::queueBroken);
        transport.signalUsed(RECEIVEQ);
        return done;
    }

    @Override
    public synchronized void notify(int queueIndex) throws VirtqueueException {
        if (!receiveNotified(queueIndex, RECEIVEQ)) transmit(queue(queueIndex));
    }

    private void transmit(SplitVirtqueue q) throws VirtqueueException {
        for (int i = 0; i < CHAINS_PER_TURN; i++) {
            if (sending == null) {
                sending = q.pop();
                sent = 0;
                if (sending == null) return;
            }
            long total = sending.readableLength();
            while (sent < total) {
                int n = (int) Math.min(CHUNK, total - sent);
                sending.read(sent, chunk, 0, n);
                if (!output.offer(chunk, 0, n)) { // the host side is stalled: resume on space
                    waitingForSpace = true;
                    return;
                }
                sent += n;
                stats.bytes.addAndGet(n);
            }
            q.addUsed(sending, 0);
            stats.requests.incrementAndGet();
            sending = null;
        }
        if (q.hasAvailable()) transport.continueLater(TRANSMITQ);
    }

    /** The sink has room again (its writer thread calls this). */
    private void spaceAvailable() {
        synchronized (this) {
            if (!waitingForSpace || transport == null) return;
            waitingForSpace = false;
            transport.continueLater(TRANSMITQ);
        }
    }

    /**
     * Nothing of its own to save: a transmit chain half written to a stalled output is in flight,
     * which the transport refuses to save; host input not yet offered is the host's.
     */
    @Override
    public String snapshotRefusal() {
        return null;
    }

    @Override
    public synchronized void reset() {
        sending = null;
        waitingForSpace = false;
        super.reset();
    }
}
