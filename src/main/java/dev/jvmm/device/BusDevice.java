package dev.jvmm.device;

/**
 * A device's register window on a {@link Bus}. Offsets are relative to the start of the range the
 * device was registered at; {@code size} is 1, 2, 4 or 8 bytes. Called on a vCPU thread while the
 * vCPU waits for the access to complete, so implementations must be quick and must not block.
 * Implementations that share state with the event loop synchronise themselves.
 */
public interface BusDevice {
    /** Returns the value read, in the low {@code size} bytes. */
    long read(long offset, int size);

    /** Writes the low {@code size} bytes of {@code value}. */
    void write(long offset, int size, long value);
}
