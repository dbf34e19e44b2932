package dev.jvmm.arch.x86;

import java.util.ArrayList;
import java.util.List;

/** The guest's physical RAM map as a BIOS E820 / multiboot mmap would report it. */
public final class E820 {
    private E820() { }

    public static final int TYPE_RAM = 1;
    public static final int TYPE_RESERVED = 2;

    /** One range of the map. */
    public record Entry(long base, long length, int type) {
        public long end() {
            return base + length;
        }
    }

    /**
     * The map for a VM of {@code memSize} bytes: conventional RAM below {@link Layout#EBDA_START}, the
     * reserved EBDA/VGA/BIOS area up to 1 MiB, RAM from 1 MiB to the end of low RAM, and RAM from
     * 4 GiB for whatever did not fit below the MMIO hole.
     */
    public static List<Entry> map(long memSize) {
        if (memSize <= 0) {
            throw new IllegalArgumentException("memory size must be positive: " + memSize);
        }
        List<Entry> map = new ArrayList<>();
        long low = Layout.lowRamSize(memSize);
        map.add(new Entry(0, Math.min(low, Layout.EBDA_START), TYPE_RAM));
        map.add(new Entry(Layout.EBDA_START, Layout.HIMEM_START - Layout.EBDA_START, TYPE_RESERVED));
        if (low > Layout.HIMEM_START) {
            map.add(new Entry(Layout.HIMEM_START, low - Layout.HIMEM_START, TYPE_RAM));
        }
        long high = Layout.highRamSize(memSize);
        if (high > 0) {
            map.add(new Entry(Layout.FOUR_GIB, high, TYPE_RAM));
        }
        return List.copyOf(map);
    }

    /** Bytes of RAM contiguous from 1 MiB (multiboot's mem_upper, in bytes); 0 if none. */
    public static long upperMemory(long memSize) {
        return Math.max(0, Layout.lowRamSize(memSize) - Layout.HIMEM_START);
    }
}
