package dev.jvmm.loader;

import dev.jvmm.memory.Chunk;
import dev.jvmm.arch.x86.EntryState;

import dev.jvmm.arch.x86.E820;
import dev.jvmm.arch.x86.Layout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Multiboot v1 (spec 0.6.96) kernels: ELF32 i386 images, or any image using the a.out kludge (header
 * flag 16, which takes precedence over ELF). The kernel must load within [1 MiB, end of low RAM).
 * Modules follow the kernel, page aligned, each with its file name as string. The information block
 * and everything it points to (boot loader name, mmap, module list, strings, command line) live in
 * [{@link Layout#MULTIBOOT_INFO}, {@link Layout#MULTIBOOT_INFO_END}). The command line passed is the
 * user's {@code cmdline} string exactly (no kernel file name is prepended).
 */
public final class MultibootLoader {
    private MultibootLoader() { }

    static final long PAGE = 4096;

    /** Offsets in the multiboot information structure. */
    public static final int INFO_FLAGS = 0, INFO_MEM_LOWER = 4, INFO_MEM_UPPER = 8, INFO_CMDLINE = 16,
            INFO_MODS_COUNT = 20, INFO_MODS_ADDR = 24, INFO_MMAP_LENGTH = 44, INFO_MMAP_ADDR = 48,
            INFO_BOOT_LOADER_NAME = 64;
    /** The structure's size up to and including the framebuffer fields, rounded up. */
    public static final int INFO_SIZE = 128;

    public static final int INFO_F_MEMORY = 1, INFO_F_CMDLINE = 1 << 2, INFO_F_MODS = 1 << 3,
            INFO_F_MMAP = 1 << 6, INFO_F_LOADER_NAME = 1 << 9;
    public static final String LOADER_NAME = "jvmm";

    public static BootImage load(Path file, byte[] image, MultibootHeader header, LoadOptions opts)
            throws LoadException {
        int unsupported = header.unsupportedRequiredFlags();
        if (unsupported != 0) {
            throw new LoadException(file + ": multiboot header requires unsupported features (flags "
                    + Bytes.hex(header.flags() & 0xffffffffL) + ", unsupported bits " + Bytes.hex(unsupported) + ")");
        }
        long ramEnd = Math.min(Layout.lowRamSize(opts.memSize()), Layout.MMIO_HOLE_START);
        List<Chunk> chunks = new ArrayList<>();
        long entry;
        if (header.aoutKludge()) {
            entry = loadAout(file, image, header, ramEnd, chunks);
        } else {
            entry = loadElf(file, image, ramEnd, chunks);
        }
        long kernelEnd = chunks.stream().mapToLong(Chunk::end).max().orElseThrow();

        // Every module's size and place first, so that nothing is read unless all of them fit.
        int n = opts.modules().size();
        long[] sizes = new long[n];
        long[] starts = new long[n];
        long cursor = alignUp(kernelEnd);
        for (int i = 0; i < n; i++) {
            Path mod = opts.modules().get(i);
            sizes[i] = ImageFiles.size(mod, "module", true);
            starts[i] = cursor;
            if (sizes[i] > ramEnd - cursor) {
                throw new LoadException(mod + ": module is too large: it does not fit in guest memory (" + sizes[i]
                        + " bytes at " + Bytes.hex(cursor) + ", RAM ends at " + Bytes.hex(ramEnd) + ")");
            }
            long end = cursor + sizes[i];
            cursor = sizes[i] == 0 ? cursor : alignUp(end);
        }
        List<long[]> mods = new ArrayList<>();   // {start, end}
        List<String> modNames = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Path mod = opts.modules().get(i);
            String name = mod.getFileName() == null ? mod.toString() : mod.getFileName().toString();
            chunks.addAll(ImageFiles.readConcatenated("multiboot module " + i + " (" + name + ")", starts[i],
                    List.of(mod), new long[] {sizes[i]}, "module"));
            mods.add(new long[] {starts[i], starts[i] + sizes[i]});
            modNames.add(name);
        }

        chunks.add(new Chunk("multiboot information", Layout.MULTIBOOT_INFO,
                buildInfo(file, opts, mods, modNames), 0));
        return new BootImage(KernelFormat.MULTIBOOT, chunks,
                new EntryState.Protected32(entry, MultibootHeader.BOOTLOADER_MAGIC & 0xffffffffL,
                        Layout.MULTIBOOT_INFO, 0));
    }

    private static long loadAout(Path file, byte[] image, MultibootHeader h, long ramEnd, List<Chunk> chunks)
            throws LoadException {
        if (h.offset() + MultibootHeader.AOUT_SIZE > image.length) {
            throw new LoadException(file + ": truncated multiboot header: flag 16 (a.out kludge) set but the"
                    + " address fields are missing");
        }
        if (h.loadAddr() > h.headerAddr()) {
            throw new LoadException(file + ": bad multiboot header: load_addr " + Bytes.hex(h.loadAddr())
                    + " is above header_addr " + Bytes.hex(h.headerAddr()));
        }
        long fileStart = h.offset() - (h.headerAddr() - h.loadAddr());
        if (fileStart < 0) {
            throw new LoadException(file + ": bad multiboot header: header_addr - load_addr ("
                    + (h.headerAddr() - h.loadAddr()) + ") is larger than the header's file offset " + h.offset());
        }
        long loadEnd = h.loadEndAddr() == 0 ? h.loadAddr() + (image.length - fileStart) : h.loadEndAddr();
        if (loadEnd < h.loadAddr()) {
            throw new LoadException(file + ": bad multiboot header: load_end_addr " + Bytes.hex(loadEnd)
                    + " is below load_addr " + Bytes.hex(h.loadAddr()));
        }
        long size = loadEnd - h.loadAddr();
        if (fileStart + size > image.length) {
            throw new LoadException(file + ": truncated kernel: the multiboot header asks for " + size
                    + " bytes from file offset " + fileStart + ", the file has " + image.length);
        }
        long bssEnd = h.bssEndAddr() == 0 ? loadEnd : h.bssEndAddr();
        if (bssEnd < loadEnd) {
            throw new LoadException(file + ": bad multiboot header: bss_end_addr " + Bytes.hex(bssEnd)
                    + " is below load_end_addr " + Bytes.hex(loadEnd));
        }
        if (h.entryAddr() < h.loadAddr() || h.entryAddr() >= loadEnd) {
            throw new LoadException(file + ": multiboot entry_addr " + Bytes.hex(h.entryAddr())
                    + " is outside the loaded image [" + Bytes.hex(h.loadAddr()) + ", " + Bytes.hex(loadEnd) + ")");
        }
        checkInRam(file, "kernel image", h.loadAddr(), bssEnd, ramEnd);
        chunks.add(new Chunk("kernel image", h.loadAddr(),
                Arrays.copyOfRange(image, (int) fileStart, (int) (fileStart + size)), bssEnd - loadEnd));
        return h.entryAddr();
    }

    private static long loadElf(Path file, byte[] image, long ramEnd, List<Chunk> chunks) throws LoadException {
        if (!Elf32.isElf(image)) {
            throw new LoadException(file + ": multiboot kernel is not an ELF file and its header does not set"
                    + " flag 16 (a.out kludge addresses)");
        }
        Elf32 elf = Elf32.parse(file, image);   // segments in the file, not overlapping
        long entry = elf.entry();
        boolean inPhys = false;
        for (ElfSegment s : elf.segments()) {
            inPhys |= entry >= s.paddr() && entry - s.paddr() < s.memSize();
        }
        for (ElfSegment s : elf.segments()) {
            if (!inPhys && entry >= s.vaddr() && entry - s.vaddr() < s.memSize()) {
                entry = s.paddr() + (entry - s.vaddr());   // linked high, loaded low: enter physically
                inPhys = true;
            }
        }
        if (!inPhys) {
            throw new LoadException(file + ": ELF entry point " + Bytes.hex(elf.entry())
                    + " is not inside any loadable segment");
        }
        long total = 0;
        for (ElfSegment s : elf.segments()) {
            checkInRam(file, "kernel segment " + s.index(), s.paddr(), s.paddr() + s.memSize(), ramEnd);
            total += s.fileSize();
        }
        ImageFiles.requireHeap(file, "kernel", total);   // <= RAM: the segments fit there without overlapping
        for (ElfSegment s : elf.segments()) {
            byte[] data = Arrays.copyOfRange(image, (int) s.offset(), (int) (s.offset() + s.fileSize()));
            chunks.add(new Chunk("kernel segment " + s.index(), s.paddr(), data, s.memSize() - s.fileSize()));
        }
        return entry;
    }

    /** Checks that a piece of the kernel, [start, end), lies in RAM above 1 MiB (before it is copied). */
    private static void checkInRam(Path file, String what, long start, long end, long ramEnd) throws LoadException {
        if (start < Layout.HIMEM_START || end > ramEnd) {   // end < 2^34: no overflow
            throw new LoadException(file + ": " + what + " [" + Bytes.hex(start) + ", " + Bytes.hex(end)
                    + ") is outside guest RAM for kernels [" + Bytes.hex(Layout.HIMEM_START) + ", "
                    + Bytes.hex(ramEnd) + ")");
        }
    }

    private static byte[] buildInfo(Path file, LoadOptions opts, List<long[]> mods, List<String> modNames)
            throws LoadException {
        byte[] cmdline = opts.cmdline().getBytes(StandardCharsets.UTF_8);
        for (byte b : cmdline) {
            if (b == 0) {
                throw new LoadException(file + ": the kernel command line contains a NUL character");
            }
        }
        Area area = new Area(file);
        int info = area.alloc(INFO_SIZE, 8);
        int flags = INFO_F_MEMORY | INFO_F_CMDLINE | INFO_F_MMAP | INFO_F_LOADER_NAME;

        long low = Layout.lowRamSize(opts.memSize());
        area.put32(info + INFO_MEM_LOWER, Math.min(low, Layout.EBDA_START) / 1024);
        area.put32(info + INFO_MEM_UPPER, E820.upperMemory(opts.memSize()) / 1024);

        int name = area.string(LOADER_NAME.getBytes(StandardCharsets.US_ASCII));
        area.put32(info + INFO_BOOT_LOADER_NAME, area.address(name));

        List<E820.Entry> map = E820.map(opts.memSize());
        int mmap = area.alloc(24 * map.size(), 8);
        for (int i = 0; i < map.size(); i++) {
            E820.Entry e = map.get(i);
            int off = mmap + 24 * i;
            area.put32(off, 20);
            area.put64(off + 4, e.base());
            area.put64(off + 12, e.length());
            area.put32(off + 20, e.type());
        }
        area.put32(info + INFO_MMAP_LENGTH, 24L * map.size());
        area.put32(info + INFO_MMAP_ADDR, area.address(mmap));

        if (!mods.isEmpty()) {
            flags |= INFO_F_MODS;
            int list = area.alloc(16 * mods.size(), 8);
            for (int i = 0; i < mods.size(); i++) {
                int s = area.string(modNames.get(i).getBytes(StandardCharsets.UTF_8));
                area.put32(list + 16 * i, mods.get(i)[0]);
                area.put32(list + 16 * i + 4, mods.get(i)[1]);
                area.put32(list + 16 * i + 8, area.address(s));
            }
            area.put32(info + INFO_MODS_COUNT, mods.size());
            area.put32(info + INFO_MODS_ADDR, area.address(list));
        }

        area.put32(info + INFO_CMDLINE, area.address(area.string(cmdline)));
        area.put32(info + INFO_FLAGS, flags);
        return area.bytes();
    }

    static long alignUp(long v) {
        return Math.addExact(v, PAGE - 1) & -PAGE;
    }

    /** A bump allocator over the multiboot information area. */
    private static final class Area {
        private final Path file;
        private final byte[] buf = new byte[(int) (Layout.MULTIBOOT_INFO_END - Layout.MULTIBOOT_INFO)];
        private int used;

        Area(Path file) {
            this.file = file;
        }

        int alloc(int size, int align) throws LoadException {
            int start = (used + align - 1) & -align;
            if (size < 0 || start > buf.length || size > buf.length - start) {
                throw new LoadException(file + ": multiboot information does not fit in its "
                        + buf.length + "-byte area (command line or module names too long)");
            }
            used = start + size;
            return start;
        }

        /** Stores a NUL-terminated copy of {@code s}. */
        int string(byte[] s) throws LoadException {
            int off = alloc(s.length + 1, 1);
            System.arraycopy(s, 0, buf, off, s.length);
            return off;
        }

        long address(int off) {
            return Layout.MULTIBOOT_INFO + off;
        }

        void put32(int off, long v) {
            Bytes.put32(buf, off, v);
        }

        void put64(int off, long v) {
            Bytes.put64(buf, off, v);
        }

        byte[] bytes() {
            return Arrays.copyOf(buf, used);
        }
    }
}
