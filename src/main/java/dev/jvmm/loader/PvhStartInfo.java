package dev.jvmm.loader;

import dev.jvmm.arch.x86.E820;
import dev.jvmm.arch.x86.Layout;

import java.util.List;

/**
 * {@code struct hvm_start_info} (version 1) at {@link Layout#PVH_START_INFO}, then its module list
 * (one entry: the initrd, if any) and the memory map, all within the page below the zero page.
 */
final class PvhStartInfo {
    private PvhStartInfo() { }

    static final int MAGIC = 0x336ec578;
    static final int VERSION = 1;
    static final int MODLIST_OFFSET = 64;
    static final int MODLIST_ENTRY_SIZE = 32;
    static final int MEMMAP_ENTRY_SIZE = 24;

    static byte[] build(LoadOptions opts, Initrd initrd, List<E820.Entry> map) {
        int nrModules = initrd.present() ? 1 : 0;
        int memmap = MODLIST_OFFSET + nrModules * MODLIST_ENTRY_SIZE;
        byte[] b = new byte[memmap + map.size() * MEMMAP_ENTRY_SIZE];
        if (Layout.PVH_START_INFO + b.length > Layout.ZERO_PAGE) {
            throw new IllegalStateException("PVH start info does not fit below the zero page");
        }
        Bytes.put32(b, 0, MAGIC);
        Bytes.put32(b, 4, VERSION);
        Bytes.put32(b, 8, 0);
        Bytes.put32(b, 12, nrModules);
        Bytes.put64(b, 16, nrModules == 0 ? 0 : Layout.PVH_START_INFO + MODLIST_OFFSET);
        Bytes.put64(b, 24, Layout.CMDLINE);
        Bytes.put64(b, 32, opts.rsdpAddress());
        Bytes.put64(b, 40, Layout.PVH_START_INFO + memmap);
        Bytes.put32(b, 48, map.size());
        if (nrModules == 1) {
            Bytes.put64(b, MODLIST_OFFSET, initrd.address());
            Bytes.put64(b, MODLIST_OFFSET + 8, initrd.size());
        }
        for (int i = 0; i < map.size(); i++) {
            E820.Entry e = map.get(i);
            int off = memmap + i * MEMMAP_ENTRY_SIZE;
            Bytes.put64(b, off, e.base());
            Bytes.put64(b, off + 8, e.length());
            Bytes.put32(b, off + 16, e.type());
        }
        return b;
    }
}
