package dev.jvmm.device.legacy;

import dev.jvmm.arch.x86.PcPlatform;

import dev.jvmm.device.BusDevice;

import java.util.Objects;

/**
 * Port 0x61, "system control port B" / NMI status and control: the PC's wiring of PIT channel 2.
 * Register it at base 0x61, length 1 (note that {@link I8042} must then not cover port 0x61).
 *
 * <p>Writes: bit 0 is channel 2's gate, bit 1 the speaker data enable (stored; there is no
 * speaker), bits 2-3 (parity/channel check enables) are stored. Reads: bits 0-3 as written, bit 4
 * the refresh toggle, which flips on every read (old delay loops poll it), bit 5 channel 2's
 * output, bits 6-7 (parity and channel check errors) 0.
 *
 * <p>This is how Linux calibrates the TSC: gate high and speaker off through this port, channel 2
 * in mode 0 with a count, then polling bit 5 until the count reaches zero.
 */
public final class SystemControlPortB implements BusDevice {
    public static final int PORT = PcPlatform.PORT_B;
    public static final int LENGTH = 1;

    static final int GATE2 = 0x01, SPEAKER = 0x02, WRITABLE = 0x0f, REFRESH = 0x10, OUT2 = 0x20;

    private final I8254 pit;
    private int bits;
    private boolean refresh;

    public SystemControlPortB(I8254 pit) {
        this.pit = Objects.requireNonNull(pit, "pit");
    }

    @Override
    public long read(long offset, int size) {
        boolean out = pit.output(2);
        synchronized (this) {
            refresh = !refresh;
            return bits | (refresh ? REFRESH : 0) | (out ? OUT2 : 0);
        }
    }

    @Override
    public void write(long offset, int size, long value) {
        int v = (int) value & WRITABLE;
        synchronized (this) {
            bits = v;
            pit.setGate(2, (v & GATE2) != 0);
        }
    }

    /** Whether the guest has enabled the speaker data line (bit 1). */
    public synchronized boolean speakerEnabled() {
        return (bits & SPEAKER) != 0;
    }
}
