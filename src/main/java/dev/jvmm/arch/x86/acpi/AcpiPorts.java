package dev.jvmm.arch.x86.acpi;

/**
 * The hardware-reduced ACPI registers the FADT advertises, which the VMM must implement as I/O ports.
 * All are 8-bit registers in system I/O space.
 *
 * <ul>
 *   <li><b>Sleep control</b> ({@link #SLEEP_CONTROL}): the guest powers off by writing
 *       {@code SLP_EN | SLP_TYP << 2} with {@code SLP_TYP} from the DSDT's {@code \_S5_} package,
 *       i.e. {@link #POWEROFF_VALUE} (0x34); {@link #isPowerOff} recognizes it.</li>
 *   <li><b>Sleep status</b> ({@link #SLEEP_STATUS}): Linux writes {@link #WAK_STS} to it to clear the
 *       wake status before sleeping; reads may return 0.</li>
 *   <li><b>Reset</b> ({@link #RESET}): writing {@link #RESET_VALUE} resets the machine.</li>
 * </ul>
 */
public final class AcpiPorts {
    private AcpiPorts() { }

    /** SLEEP_CONTROL_REG: I/O port, 8 bits. */
    public static final int SLEEP_CONTROL = 0x3c0;
    /** SLEEP_STATUS_REG: I/O port, 8 bits. */
    public static final int SLEEP_STATUS = 0x3c1;
    /** RESET_REG: I/O port, 8 bits. */
    public static final int RESET = 0x3c2;
    /** RESET_VALUE: what the guest writes to {@link #RESET} to reset the machine. */
    public static final int RESET_VALUE = 0x01;

    /** Sleep control register: SLP_EN, bit 5. */
    public static final int SLP_EN = 0x20;
    /** Sleep control register: SLP_TYP field, bits 4:2. */
    public static final int SLP_TYP_SHIFT = 2, SLP_TYP_MASK = 0x07 << SLP_TYP_SHIFT;
    /** Sleep status register: WAK_STS, bit 7. */
    public static final int WAK_STS = 0x80;
    /** The SLP_TYP value for S5 (soft off), as the DSDT's {@code \_S5_} package gives it. */
    public static final int S5_SLP_TYP = 5;
    /** The byte the guest writes to {@link #SLEEP_CONTROL} to power off: 0x34. */
    public static final int POWEROFF_VALUE = SLP_EN | S5_SLP_TYP << SLP_TYP_SHIFT;

    /** The SLP_TYP field of a value written to the sleep control register. */
    public static int sleepType(int value) {
        return (value & SLP_TYP_MASK) >>> SLP_TYP_SHIFT;
    }

    /** Whether a value written to the sleep control register requests S5 (power off). */
    public static boolean isPowerOff(int value) {
        return (value & SLP_EN) != 0 && sleepType(value) == S5_SLP_TYP;
    }
}
