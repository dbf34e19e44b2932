package dev.jvmm.arch.x86;

/**
 * The fixed facts of the PC that jvmm builds, in one place: which legacy device sits at which I/O
 * port and interrupt, and how many CPUs the tables can describe. The devices are registered at
 * these ports (vmm's LegacyDevices), and the MP and ACPI tables describe the same.
 */
public final class PcPlatform {
    private PcPlatform() { }

    /** The first serial port (an 8250/16550A UART) and its ISA interrupt. */
    public static final int COM1_PORT = 0x3f8, COM1_IRQ = 4;
    /** QEMU's isa-debug-exit convention: one port a test guest writes its verdict to. */
    public static final int DEBUG_EXIT_PORT = 0xf4;
    /** The i8042 keyboard controller: data port and status/command port (0x61 between them is port B). */
    public static final int I8042_DATA_PORT = 0x60, I8042_COMMAND_PORT = 0x64;
    /** The i8254 PIT and system control port B (its gate and speaker bits). */
    public static final int PIT_PORT = 0x40, PIT_IRQ = 0, PORT_B = 0x61;
    /** The CMOS RTC (index and data ports) and its interrupt. */
    public static final int RTC_PORT = 0x70, RTC_IRQ = 8;
    /** QEMU's pvpanic ISA device (ACPI id QEMU0001): a guest kernel reports a panic here. */
    public static final int PVPANIC_PORT = 0x505;
    /** POST diagnostic codes; guests write here to delay. */
    public static final int POST_PORT = 0x80;
    /**
     * The most vCPUs jvmm describes: APIC ids are 8 bits in the MP table, the MADT's local APIC
     * entries and CPUID leaf 1 (x2APIC entries would lift this).
     */
    public static final int MAX_CPUS = 255;
}
