package dev.jvmm.arch.x86.acpi;

/**
 * A virtio-mmio device window the DSDT announces ({@code _HID "LNRO0005"}): {@code size} bytes of MMIO
 * at {@code base} (below 4 GiB), interrupt {@code gsi} on the IOAPIC, edge-triggered unless
 * {@code levelTriggered} (active high, exclusive either way).
 */
public record VirtioMmioSlot(long base, long size, int gsi, boolean levelTriggered) {
    public VirtioMmioSlot {
        if (base < 0 || size <= 0 || base + size > 0x1_0000_0000L) {
            throw new IllegalArgumentException("virtio-mmio window 0x" + Long.toHexString(base) + " + 0x" + Long.toHexString(size)
                    + " must be non-empty and below 4 GiB");
        }
        if (gsi < 0) throw new IllegalArgumentException("virtio-mmio GSI must not be negative: " + gsi);
    }

    /** An edge-triggered slot (what an irqfd into the IOAPIC delivers). */
    public VirtioMmioSlot(long base, long size, int gsi) {
        this(base, size, gsi, false);
    }
}
