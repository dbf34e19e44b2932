package dev.jvmm.arch.x86;

/** The guest-physical memory map, in one place. See the README's "Memory map" section. */
public final class Layout {
    private Layout() { }

    /** Conventional memory ends here; [EBDA_START, 1 MiB) is reserved (EBDA, VGA hole, BIOS). */
    public static final long EBDA_START = 0x9fc00L;
    /** Multiboot information block and the structures it points to (cmdline, module list, mmap). */
    public static final long MULTIBOOT_INFO = 0x9000L;
    /** End of the area reserved for multiboot structures. */
    public static final long MULTIBOOT_INFO_END = 0x10000L;
    /** kvmtool-compatible flat binaries load at 0x1000:0000. */
    public static final long FLAT_LOAD = 0x10000L;
    public static final int FLAT_CS = 0x1000;
    public static final int FLAT_SP = 0x8000;
    /** A single IRET instruction (at F000:0000) that every real-mode interrupt vector points to. */
    public static final long BIOS_IRET = 0xf0000L;
    /** Start of high memory, where protected-mode kernels load. */
    public static final long HIMEM_START = 0x100000L;
    /** The 32-bit MMIO hole: [MMIO_HOLE_START, 4 GiB) is never RAM; RAM beyond it continues at 4 GiB. */
    public static final long MMIO_HOLE_START = 0xc0000000L;
    public static final long FOUR_GIB = 0x1_0000_0000L;
    /** Local APIC and IOAPIC MMIO windows (handled by the in-kernel irqchip). */
    public static final long IOAPIC_BASE = 0xfec00000L;
    public static final long LAPIC_BASE = 0xfee00000L;
    /** Three pages KVM needs for the TSS on Intel hosts (KVM_SET_TSS_ADDR); inside the MMIO hole. */
    public static final long TSS_ADDR = 0xfffbd000L;
    /** Identity map page for KVM_SET_IDENTITY_MAP_ADDR, the page after the TSS pages. */
    public static final long IDENTITY_MAP_ADDR = 0xfffbc000L;

    /** Guest RAM below the hole for a VM of {@code memSize} bytes. */
    public static long lowRamSize(long memSize) {
        return Math.min(memSize, MMIO_HOLE_START);
    }

    /** Guest RAM placed at 4 GiB and above for a VM of {@code memSize} bytes (0 if none). */
    public static long highRamSize(long memSize) {
        return Math.max(0, memSize - MMIO_HOLE_START);
    }
}
