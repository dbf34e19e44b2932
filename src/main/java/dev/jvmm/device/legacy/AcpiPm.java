package dev.jvmm.device.legacy;

import dev.jvmm.arch.x86.acpi.AcpiPorts;
import dev.jvmm.device.BusDevice;
import dev.jvmm.device.StopRequest;

import java.util.Objects;

/**
 * The hardware-reduced ACPI sleep and reset registers the FADT advertises: three 8-bit I/O ports.
 * Register it at base {@value #BASE_PORT} (0x3c0), length {@value #LENGTH}:
 * <ul>
 * <li>offset 0 (0x3c0), sleep control: a write with SLP_EN (bit 5) set and SLP_TYPx (bits 2-4)
 *     equal to {@link #S5_SLP_TYP}, the value the DSDT's {@code _S5_} package announces, powers the
 *     machine off: {@code poweroff.stop(0, "the guest powered off (ACPI S5)")}. There are no sleep
 *     states: SLP_EN with any other SLP_TYP is ignored (the guest's suspend attempt simply returns,
 *     which the DSDT avoids by announcing only {@code _S5_}). Reads return 0.</li>
 * <li>offset 1 (0x3c1), sleep status: reads 0 (WAK_STS, bit 7, clear); writes ignored.</li>
 * <li>offset 2 (0x3c2), reset register: writing {@link #RESET_VALUE} runs {@code reset}; other
 *     values are ignored. Reads return 0.</li>
 * </ul>
 * The FADT must advertise SLEEP_CONTROL_REG = 0x3c0, SLEEP_STATUS_REG = 0x3c1 and RESET_REG = 0x3c2
 * (system I/O, 8 bits wide) with RESET_VALUE = 1. Stateless, hence thread-safe; the callbacks run on
 * the writing vCPU's thread.
 */
public final class AcpiPm implements BusDevice, dev.jvmm.device.DeviceState.Stateless {
    /** The three registers the FADT announces ({@link AcpiPorts}), which are consecutive ports. */
    public static final int BASE_PORT = AcpiPorts.SLEEP_CONTROL;
    public static final int LENGTH = 3;
    static final int SLEEP_CONTROL = AcpiPorts.SLEEP_CONTROL - BASE_PORT, SLEEP_STATUS = AcpiPorts.SLEEP_STATUS - BASE_PORT,
            RESET = AcpiPorts.RESET - BASE_PORT;
    static final String POWEROFF_REASON = "the guest powered off (ACPI S5)";

    private final StopRequest poweroff;
    private final Runnable reset;

    /**
     * @param poweroff called with status 0 when the guest enters S5
     * @param reset called when the guest writes the reset value, e.g. a stop with status 0 and
     *     "guest reset the machine via ACPI"
     */
    public AcpiPm(StopRequest poweroff, Runnable reset) {
        this.poweroff = Objects.requireNonNull(poweroff, "poweroff");
        this.reset = Objects.requireNonNull(reset, "reset");
    }

    @Override
    public long read(long offset, int size) {
        return 0;
    }

    @Override
    public void write(long offset, int size, long value) {
        int v = (int) (value & 0xff);
        if (offset == SLEEP_CONTROL) {
            if (AcpiPorts.isPowerOff(v)) {
                poweroff.stop(0, POWEROFF_REASON);
            }
        } else if (offset == RESET && v == AcpiPorts.RESET_VALUE) {
            reset.run();
        }
    }
}
