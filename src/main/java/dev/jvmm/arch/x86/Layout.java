package dev.jvmm.arch.x86;

/** The guest-physical memory map, in one place. See the README's "Memory map" section. */
public final class Layout {
    private Layout() { }

    /** The x86 page: guest RAM (KVM memory slots) comes in whole pages. */
    public static final long PAGE_SIZE = 4096;

    /** Conventional memory ends here; [EBDA_START, 1 MiB) is reserved (EBDA, VGA hole, BIOS). */
    public static final long EBDA_START = 0x9fc00L;
    /** PVH {@code struct hvm_start_info}, then its module list and memory map. */
    public static final long PVH_START_INFO = 0x6000L;
    /** The Linux zero page ({@code struct boot_params}). */
    public static final long ZERO_PAGE = 0x7000L;
    /** Initial RSP and RBP for 64-bit entry. */
    public static final long BOOT_STACK = 0x8ff0L;
    /**
     * Long-mode page tables (64-bit entry only): PML4 here, the PDPT in the next page, then four page
     * directories of 2 MiB pages identity-mapping the first 4 GiB, then the PDPT of the kernel text
     * mapping (see CpuSetup.writePageTables). Overlaps the multiboot area, which a Linux boot does not use.
     */
    public static final long PML4 = 0x9000L;
    /** End of the page tables (PML4 + PDPT + 4 PDs + the high PDPT). */
    public static final long PAGE_TABLES_END = 0x10000L;
    /** The Linux kernel command line. */
    public static final long CMDLINE = 0x20000L;
    /** Room for the command line: up to the end of conventional memory's first 64 KiB block. */
    public static final long CMDLINE_MAX = 0x10000L;
    /** ACPI: the RSDP (16-byte aligned, in the BIOS area the guest searches); tables follow it. */
    public static final long ACPI_RSDP = 0xe0000L;
    /** End of the ACPI tables area. */
    public static final long ACPI_END = 0xf0000L;
    /** MP floating pointer and configuration table (in the BIOS area, after the IRET). */
    public static final long MP_TABLE = 0xf0100L;
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
    /** The real-mode reset vector F000:FFF0 (physical 0xffff0): a tiny reset routine lives there. */
    public static final long RESET_VECTOR = 0xffff0L;
    /** Start of high memory, where protected-mode kernels load. */
    public static final long HIMEM_START = 0x100000L;
    /** The 32-bit MMIO hole: [MMIO_HOLE_START, 4 GiB) is never RAM; RAM beyond it continues at 4 GiB. */
    public static final long MMIO_HOLE_START = 0xc0000000L;
    public static final long FOUR_GIB = 0x1_0000_0000L;
    /** virtio-mmio devices: one 4 KiB slot each from here, in the MMIO hole. */
    public static final long VIRTIO_MMIO_BASE = 0xd0000000L;
    public static final long VIRTIO_MMIO_SLOT = 0x1000L;
    /** virtio-mmio interrupts: GSI 5 upwards, skipping 8 (the RTC's); at most {@link #VIRTIO_MAX_DEVICES} devices. */
    public static final int VIRTIO_GSI_BASE = 5;
    public static final int VIRTIO_MAX_DEVICES = 18;

    /** The GSI of the {@code index}-th virtio-mmio device. */
    public static int virtioGsi(int index) {
        int gsi = VIRTIO_GSI_BASE + index;
        return gsi >= 8 ? gsi + 1 : gsi;
    }

    /** Local APIC and IOAPIC MMIO windows (handled by the in-kernel irqchip). */
    public static final long IOAPIC_BASE = 0xfec00000L;
    public static final long LAPIC_BASE = 0xfee00000L;
    /** Three pages KVM needs for the TSS on Intel hosts (KVM_SET_TSS_ADDR); inside the MMIO hole. */
    public static final long TSS_ADDR = 0xfffbd000L;
    /** Identity map page for KVM_SET_IDENTITY_MAP_ADDR, the page after the TSS pages. */
    public static final long IDENTITY_MAP_ADDR = 0xfffbc000L;

    /** Guest RAM below the hole for a VM of {@code memSize} bytes. */
    /** The RAM ranges of a VM with {@code memBytes} of memory: below the 32-bit MMIO hole, then above 4 GiB. */
    public static java.util.List<dev.jvmm.memory.RamRange> ramRanges(long memBytes) {
        java.util.List<dev.jvmm.memory.RamRange> ranges = new java.util.ArrayList<>();
        ranges.add(new dev.jvmm.memory.RamRange(0, lowRamSize(memBytes)));
        long high = highRamSize(memBytes);
        if (high > 0) ranges.add(new dev.jvmm.memory.RamRange(FOUR_GIB, high));
        return ranges;
    }

    public static long lowRamSize(long memSize) {
        return Math.min(memSize, MMIO_HOLE_START);
    }

    /** Guest RAM placed at 4 GiB and above for a VM of {@code memSize} bytes (0 if none). */
    public static long highRamSize(long memSize) {
        return Math.max(0, memSize - MMIO_HOLE_START);
    }
}
