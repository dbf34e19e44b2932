package dev.jvmm.device;

/**
 * A guest console's input side, fed from the host's stdin: the 8250 UART or a virtio console. Input
 * is never dropped: {@link #offer} takes what fits and the caller keeps the rest until the space
 * listener runs.
 */
public interface ConsoleEndpoint {
    /** Takes as much of {@code buf[off, off + len)} as fits now; returns how much. Any thread. */
    int offer(byte[] buf, int off, int len);

    /** Runs {@code listener} (quick, any thread) when input refused by {@link #offer} may fit now. */
    void onInputSpace(Runnable listener);

    /**
     * The host input ended (stdin reached EOF) after {@link #offer} took every byte given so far. A
     * UART has no way to tell the guest, so the default does nothing; a virtio-serial port tells the
     * guest's reader (its read then returns 0).
     */
    default void endOfInput() {
    }
}
