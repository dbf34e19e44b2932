package dev.jvmm.device;

/**
 * Where a device's output bytes go on the host (the guest console on stdout or a log file). Bounded:
 * when the reader on the host side stalls, the guest is slowed (a UART write waits, a virtio queue
 * stops draining); the event loop never waits.
 */
public interface ByteSink {
    /** Takes all of {@code b[off, off + len)}, or nothing when there is no room for it now. Never blocks. */
    boolean offer(byte[] b, int off, int len);

    /** Takes one byte, waiting for room while the host side is stalled (a vCPU thread only, never the loop). */
    void put(int b);

    /** Runs {@code listener} (on another thread) whenever room has been made after an offer was refused. */
    void onSpace(Runnable listener);
}
