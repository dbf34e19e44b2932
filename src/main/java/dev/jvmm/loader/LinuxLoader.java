package dev.jvmm.loader;

import dev.jvmm.memory.Chunk;
import dev.jvmm.arch.x86.EntryState;

import dev.jvmm.arch.x86.E820;
import dev.jvmm.arch.x86.Layout;
import dev.jvmm.loader.LoadOptions.BootProtocol;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Linux kernels: bzImages through the 64-bit boot protocol (Documentation/arch/x86/boot.rst), either
 * with the payload decompressed on the host and its vmlinux entered directly (default) or with the
 * kernel's own decompressor; and ELF64 vmlinux images through the 64-bit protocol or PVH (the Xen
 * PHYS32_ENTRY note, {@code struct hvm_start_info}).
 *
 * <p>Guest addresses used: the zero page at {@link Layout#ZERO_PAGE}, the command line at
 * {@link Layout#CMDLINE}, the PVH start info with its module list and memory map in
 * [{@link Layout#PVH_START_INFO}, {@link Layout#ZERO_PAGE}); the kernel at its preferred/physical
 * addresses (from 1 MiB up); the initrd page-aligned as high in low RAM as the kernel allows.
 */
public final class LinuxLoader {
    private LinuxLoader() { }

    // Setup header fields, as offsets in the bzImage file and in struct boot_params alike.
    public static final int HDR_SETUP_SECTS = 0x1F1, HDR_BOOT_FLAG = 0x1FE, HDR_JUMP = 0x200, HDR_MAGIC = 0x202,
            HDR_VERSION = 0x206, HDR_TYPE_OF_LOADER = 0x210, HDR_LOADFLAGS = 0x211, HDR_CODE32_START = 0x214,
            HDR_RAMDISK_IMAGE = 0x218, HDR_RAMDISK_SIZE = 0x21C, HDR_HEAP_END_PTR = 0x224, HDR_CMD_LINE_PTR = 0x228,
            HDR_INITRD_ADDR_MAX = 0x22C, HDR_KERNEL_ALIGNMENT = 0x230, HDR_RELOCATABLE = 0x234,
            HDR_XLOADFLAGS = 0x236, HDR_CMDLINE_SIZE = 0x238, HDR_PAYLOAD_OFFSET = 0x248,
            HDR_PAYLOAD_LENGTH = 0x24C, HDR_PREF_ADDRESS = 0x258, HDR_INIT_SIZE = 0x260;
    /** End of the setup header fields this loader reads (init_size is the last, protocol 2.10). */
    static final int HDR_NEEDED_END = 0x264;
    /** The setup header area of boot_params ends here (edd_mbr_sig_buffer follows). */
    static final int HDR_AREA_END = 0x290;
    // Other struct boot_params fields.
    public static final int BP_ACPI_RSDP_ADDR = 0x070, BP_EXT_RAMDISK_IMAGE = 0x0C0, BP_EXT_RAMDISK_SIZE = 0x0C4,
            BP_EXT_CMD_LINE_PTR = 0x0C8, BP_E820_ENTRIES = 0x1E8, BP_E820_TABLE = 0x2D0;
    public static final int ZERO_PAGE_SIZE = 4096;
    public static final int E820_MAX_ENTRIES = 128;
    /** "HdrS" as a little-endian u32. */
    public static final int HDRS_MAGIC = 0x53726448;
    public static final int BOOT_FLAG = 0xAA55;
    public static final int LOADED_HIGH = 0x01, KEEP_SEGMENTS = 0x40, CAN_USE_HEAP = 0x80;
    public static final int XLF_KERNEL_64 = 0x01;
    public static final int TYPE_OF_LOADER_UNDEFINED = 0xff;
    /** Boot protocol 2.12: the first with xloadflags, which says a kernel has a 64-bit entry. */
    public static final int MIN_PROTOCOL = 0x020c;
    /** The protocol version a from-scratch zero page (ELF vmlinux, 64-bit entry) announces. */
    public static final int SYNTHETIC_PROTOCOL = 0x020f;
    /** Linux's default COMMAND_LINE_SIZE is 2048 bytes including the NUL. */
    public static final int DEFAULT_CMDLINE_SIZE = 2047;
    public static final long DEFAULT_INITRD_ADDR_MAX = 0x7fffffffL;
    /** Offset of the 64-bit entry point (startup_64) from the start of the protected-mode kernel. */
    public static final long STARTUP_64_OFFSET = 0x200;
    /** Where a relocatable bzImage goes when its preferred address will not do (aligned up). */
    public static final long RELOCATE_FROM = 16L << 20;
    /** Host decompression refuses output beyond this, or beyond guest RAM. */
    public static final long MAX_DECOMPRESSED = 512L << 20;
    /** Heap end for CAN_USE_HEAP, relative to the (unused) real-mode setup segment. */
    static final int HEAP_END = 0xfe00;

    // struct hvm_start_info (version 1) and friends.
    public static final int PVH_MAGIC = 0x336ec578;
    public static final int PVH_VERSION = 1;
    public static final int PVH_START_INFO_SIZE = 56;
    public static final int PVH_MODLIST_ENTRY_SIZE = 32;
    public static final int PVH_MEMMAP_ENTRY_SIZE = 24;

    static final long PAGE = 4096;
    static final long MIB = 1L << 20;

    /** The compressed payload of a bzImage whose protected-mode part starts at {@code pmOffset}, decompressed. */
    static byte[] payload(Path file, byte[] image, int pmOffset, long limit, String limitReason) throws LoadException {
        long payloadOffset = Bytes.u32u(image, HDR_PAYLOAD_OFFSET);
        long payloadLength = Bytes.u32u(image, HDR_PAYLOAD_LENGTH);
        long start = pmOffset + payloadOffset;
        if (payloadLength == 0 || start + payloadLength > image.length) {
            throw new LoadException(file + ": truncated bzImage payload: " + payloadLength + " bytes at offset "
                    + start + ", the file has " + image.length + " bytes");
        }
        return PayloadDecompressor.decompress(file, image, (int) start, (int) payloadLength, limit, limitReason);
    }

    /**
     * The vmlinux ELF inside a bzImage (what host-side decompression boots), at most 512 MiB.
     * @throws LoadException if {@code image} is not a bzImage or its payload cannot be decompressed
     */
    public static byte[] extractVmlinux(Path file, byte[] image) throws LoadException {
        if (!isBzImage(image)) throw new LoadException(file + ": not a bzImage (no HdrS setup header)");
        int setupSects = image[HDR_SETUP_SECTS] & 0xff;
        int pmOffset = ((setupSects == 0 ? 4 : setupSects) + 1) * 512;
        if (pmOffset >= image.length) throw new LoadException(file + ": truncated bzImage: no protected-mode kernel");
        return payload(file, image, pmOffset, MAX_DECOMPRESSED, "512 MiB");
    }

    /** True if {@code image} has a bzImage setup header: boot_flag 0xAA55 and "HdrS". */
    public static boolean isBzImage(byte[] image) {
        return image.length >= HDR_MAGIC + 4 && Bytes.u16(image, HDR_BOOT_FLAG) == BOOT_FLAG
                && Bytes.u32(image, HDR_MAGIC) == HDRS_MAGIC;
    }

    // ---------------------------------------------------------------- bzImage

    public static BootImage loadBzImage(Path file, byte[] image, LoadOptions opts) throws LoadException {
        if (!isBzImage(image)) {
            throw new LoadException(file + ": not a Linux bzImage (no boot_flag 0xAA55 and \"HdrS\" setup header)");
        }
        if (opts.boot() == BootProtocol.PVH) {
            throw new LoadException(file + ": PVH boot needs the kernel's ELF vmlinux (with its Xen PVH note),"
                    + " not a bzImage");
        }
        if (image.length < HDR_VERSION + 2) {
            throw new LoadException(file + ": truncated bzImage setup header");
        }
        int version = Bytes.u16(image, HDR_VERSION);
        if (version < MIN_PROTOCOL) {
            throw new LoadException(file + ": Linux boot protocol " + protocol(version)
                    + " is too old: jvmm needs 2.12 or later (a kernel with a 64-bit entry point)");
        }
        int hdrEnd = HDR_JUMP + 2 + (image[HDR_JUMP + 1] & 0xff);
        if (hdrEnd < HDR_NEEDED_END || image.length < hdrEnd) {
            throw new LoadException(file + ": truncated bzImage setup header: it should end at " + Bytes.hex(hdrEnd)
                    + " and reach at least " + Bytes.hex(HDR_NEEDED_END) + ", the file has " + image.length + " bytes");
        }
        if ((Bytes.u16(image, HDR_XLOADFLAGS) & XLF_KERNEL_64) == 0) {
            throw new LoadException(file + ": not a 64-bit capable kernel (XLF_KERNEL_64 not set in xloadflags):"
                    + " jvmm boots x86-64 kernels through the 64-bit boot protocol");
        }
        int setupSects = image[HDR_SETUP_SECTS] & 0xff;
        if (setupSects == 0) {
            setupSects = 4;
        }
        int pmOffset = (setupSects + 1) * 512;
        if (pmOffset >= image.length) {
            throw new LoadException(file + ": truncated bzImage: the setup code (" + setupSects
                    + " sectors) leaves no protected-mode kernel in the " + image.length + "-byte file");
        }
        byte[] cmdline = cmdline(file, opts, version >= 0x0206 ? Bytes.u32u(image, HDR_CMDLINE_SIZE) : 255);

        byte[] zp = new byte[ZERO_PAGE_SIZE];
        int copyEnd = Math.min(hdrEnd, HDR_AREA_END);
        System.arraycopy(image, HDR_SETUP_SECTS, zp, HDR_SETUP_SECTS, copyEnd - HDR_SETUP_SECTS);

        long lowRam = Layout.lowRamSize(opts.memSize());
        List<Chunk> chunks = new ArrayList<>();
        long kernelEnd;
        long rip;
        if (opts.hostDecompress()) {
            boolean ramLimits = opts.memSize() < MAX_DECOMPRESSED;
            byte[] vmlinux = payload(file, image, pmOffset, Math.min(opts.memSize(), MAX_DECOMPRESSED),
                    ramLimits ? "guest RAM (--mem)" : "512 MiB");
            Path inner = Path.of(file + " (decompressed payload)");
            Elf64 elf = Elf64.parse(inner, vmlinux);
            kernelEnd = addSegments(inner, vmlinux, elf, lowRam, chunks);
            rip = elf.physicalEntry(inner);
        } else {
            long align = Bytes.u32u(image, HDR_KERNEL_ALIGNMENT);
            boolean relocatable = image[HDR_RELOCATABLE] != 0;
            long pref = Bytes.u64(image, HDR_PREF_ADDRESS);
            long pmSize = image.length - pmOffset;
            long span = Math.max(Bytes.u32u(image, HDR_INIT_SIZE), pmSize);
            boolean prefOk = pref >= Layout.HIMEM_START && pref < Layout.MMIO_HOLE_START;
            long load = -1;
            long wanted = pref;
            if (prefOk && pref <= lowRam && span <= lowRam - pref) {
                load = pref;
            } else if (relocatable) {
                long a = align == 0 || Long.bitCount(align) != 1 ? 2 * MIB : align;
                long candidate = (RELOCATE_FROM + a - 1) & -a;
                if (candidate <= lowRam && span <= lowRam - candidate) {
                    load = candidate;
                } else if (!prefOk || candidate < pref) {
                    wanted = candidate;
                }
            } else if (!prefOk) {
                throw new LoadException(file + ": kernel is not relocatable and its preferred address "
                        + Bytes.hex(pref) + " is not in RAM between 1 MiB and the 32-bit MMIO hole");
            }
            if (load < 0) {
                throw tooBig(file, "kernel", wanted + span, lowRam);
            }
            chunks.add(new Chunk("Linux kernel " + file.getFileName(), load,
                    Arrays.copyOfRange(image, pmOffset, image.length), 0));
            Bytes.put32(zp, HDR_CODE32_START, load);
            kernelEnd = load + span;
            rip = load + STARTUP_64_OFFSET;
        }
        long initrdMax = Math.min(Bytes.u32u(image, HDR_INITRD_ADDR_MAX) + 1, lowRam);
        long[] initrd = addInitrd(opts, kernelEnd, initrdMax, chunks);
        fillZeroPage(zp, opts, initrd, E820.map(opts.memSize()));
        chunks.add(new Chunk("zero page", Layout.ZERO_PAGE, zp, 0));
        chunks.add(new Chunk("kernel command line", Layout.CMDLINE, cmdline, 0));
        return new BootImage(KernelFormat.BZIMAGE, chunks, new EntryState.Long64(rip, Layout.ZERO_PAGE));
    }

    private static String protocol(int version) {
        return (version >> 8) + "." + String.format("%02d", version & 0xff);
    }

    // ---------------------------------------------------------------- ELF vmlinux

    public static BootImage loadElf(Path file, byte[] image, LoadOptions opts) throws LoadException {
        Elf64 elf = Elf64.parse(file, image);
        boolean pvh = switch (opts.boot()) {
            case PVH -> true;
            case LONG64 -> false;
            // PVH only for images whose ELF entry is the PVH entry (nothing else to enter): a Linux
            // vmlinux has both, and its 64-bit entry is the one proven on every kernel tried
            case DEFAULT -> elf.pvhEntry().isPresent() && elf.pvhEntry().getAsLong() == elf.physicalEntry(file);
        };
        if (pvh && elf.pvhEntry().isEmpty()) {
            throw new LoadException(file + ": PVH boot requested but the kernel has no Xen PVH entry note"
                    + " (ELF note \"Xen\" type 18; Linux needs CONFIG_PVH=y)");
        }
        long lowRam = Layout.lowRamSize(opts.memSize());
        List<Chunk> chunks = new ArrayList<>();
        long kernelEnd = addSegments(file, image, elf, lowRam, chunks);
        if (pvh) {
            long entry = elf.pvhEntry().getAsLong();
            if (elf.segments().stream().noneMatch(s -> entry >= s.paddr() && entry < s.paddrEnd())) {
                throw new LoadException(file + ": the Xen PVH entry point " + Bytes.hex(entry)
                        + " is outside every loadable segment");
            }
            byte[] cmdline = cmdline(file, opts, Layout.CMDLINE_MAX - 1);
            long[] initrd = addInitrd(opts, kernelEnd, Math.min(lowRam, Layout.FOUR_GIB), chunks);
            chunks.add(new Chunk("PVH start info", Layout.PVH_START_INFO,
                    pvhStartInfo(opts, initrd, E820.map(opts.memSize())), 0));
            chunks.add(new Chunk("kernel command line", Layout.CMDLINE, cmdline, 0));
            return new BootImage(KernelFormat.ELF, chunks, new EntryState.Protected32(entry, 0, Layout.PVH_START_INFO, 0));
        }
        long rip = elf.physicalEntry(file);
        byte[] cmdline = cmdline(file, opts, DEFAULT_CMDLINE_SIZE);
        byte[] zp = syntheticZeroPage();
        long[] initrd = addInitrd(opts, kernelEnd, Math.min(DEFAULT_INITRD_ADDR_MAX + 1, lowRam), chunks);
        fillZeroPage(zp, opts, initrd, E820.map(opts.memSize()));
        chunks.add(new Chunk("zero page", Layout.ZERO_PAGE, zp, 0));
        chunks.add(new Chunk("kernel command line", Layout.CMDLINE, cmdline, 0));
        return new BootImage(KernelFormat.ELF, chunks, new EntryState.Long64(rip, Layout.ZERO_PAGE));
    }

    /** A zero page for a kernel that came without a setup header (an ELF vmlinux). */
    static byte[] syntheticZeroPage() {
        byte[] zp = new byte[ZERO_PAGE_SIZE];
        Bytes.put16(zp, HDR_BOOT_FLAG, BOOT_FLAG);
        zp[HDR_JUMP + 1] = (byte) (HDR_NEEDED_END + 4 - (HDR_JUMP + 2));
        Bytes.put32(zp, HDR_MAGIC, HDRS_MAGIC);
        Bytes.put16(zp, HDR_VERSION, SYNTHETIC_PROTOCOL);
        zp[HDR_LOADFLAGS] = LOADED_HIGH;
        Bytes.put32(zp, HDR_KERNEL_ALIGNMENT, 0x200000);
        Bytes.put32(zp, HDR_INITRD_ADDR_MAX, DEFAULT_INITRD_ADDR_MAX);
        Bytes.put32(zp, HDR_CMDLINE_SIZE, DEFAULT_CMDLINE_SIZE);
        Bytes.put16(zp, HDR_XLOADFLAGS, XLF_KERNEL_64);
        return zp;
    }

    /**
     * Adds the PT_LOAD segments as chunks after checking each lies in RAM from 1 MiB to the end of low
     * RAM and no two overlap; returns the end of the highest.
     */
    static long addSegments(Path file, byte[] image, Elf64 elf, long lowRam, List<Chunk> chunks)
            throws LoadException {
        List<Elf64.Segment> sorted = new ArrayList<>(elf.segments());
        sorted.sort(Comparator.comparingLong(Elf64.Segment::paddr));
        long end = 0;
        for (Elf64.Segment s : sorted) {
            if (s.paddr() < Layout.HIMEM_START) {
                throw new LoadException(file + ": ELF segment " + s.index() + " at physical address "
                        + Bytes.hex(s.paddr()) + " lies below 1 MiB, where jvmm keeps its boot structures");
            }
            if (s.paddrEnd() > lowRam) {
                throw tooBig(file, "kernel", s.paddrEnd(), lowRam);
            }
            if (s.paddr() < end) {
                throw new LoadException(file + ": ELF segment " + s.index() + " [" + Bytes.hex(s.paddr()) + ", "
                        + Bytes.hex(s.paddrEnd()) + ") overlaps the segment before it (which ends at " + Bytes.hex(end)
                        + ")");
            }
            end = s.paddrEnd();
        }
        for (Elf64.Segment s : elf.segments()) {
            chunks.add(new Chunk("kernel segment " + s.index(), s.paddr(),
                    Arrays.copyOfRange(image, (int) s.offset(), (int) (s.offset() + s.fileSize())),
                    s.memSize() - s.fileSize()));
        }
        return end;
    }

    private static LoadException tooBig(Path file, String what, long end, long lowRam) {
        if (end > Layout.MMIO_HOLE_START) {
            return new LoadException(file + ": " + what + " would end at " + Bytes.hex(end)
                    + ", beyond the RAM below the 32-bit MMIO hole (" + Bytes.hex(Layout.MMIO_HOLE_START) + ")");
        }
        long needMib = (end + MIB - 1) / MIB;
        return new LoadException(file + ": " + what + " does not fit in guest memory: it ends at " + Bytes.hex(end)
                + " and RAM ends at " + Bytes.hex(lowRam) + "; it needs at least " + needMib + "M of guest RAM (--mem)");
    }

    // ---------------------------------------------------------------- shared pieces

    /** The command line, NUL-terminated, after checking it against {@code maxLen} (without the NUL). */
    static byte[] cmdline(Path file, LoadOptions opts, long maxLen) throws LoadException {
        byte[] s = opts.cmdline().getBytes(StandardCharsets.UTF_8);
        for (byte b : s) {
            if (b == 0) {
                throw new LoadException(file + ": the kernel command line contains a NUL character");
            }
        }
        long max = Math.min(maxLen, Layout.CMDLINE_MAX - 1);
        if (s.length > max) {
            throw new LoadException(file + ": the kernel command line is too long: " + s.length
                    + " bytes, the kernel accepts at most " + max);
        }
        return Arrays.copyOf(s, s.length + 1);
    }

    /**
     * Concatenates the initrd files into one chunk placed page-aligned as high as possible below
     * {@code maxExclusive} and above {@code kernelEnd}. Returns {address, size}, or null without modules.
     */
    static long[] addInitrd(LoadOptions opts, long kernelEnd, long maxExclusive, List<Chunk> chunks)
            throws LoadException {
        if (opts.modules().isEmpty()) {
            return null;
        }
        long lowRam = Layout.lowRamSize(opts.memSize());
        List<byte[]> parts = new ArrayList<>();
        long total = 0;
        for (Path p : opts.modules()) {
            byte[] data = KernelLoader.readFile(p, "initrd", lowRam, true);
            parts.add(data);
            total += data.length;
        }
        Path first = opts.modules().getFirst();
        String name = opts.modules().size() == 1 ? first.toString() : first + " (and the other initrd files)";
        long top = Math.min(maxExclusive, lowRam) & -PAGE;
        long bottom = (kernelEnd + PAGE - 1) & -PAGE;
        long start = (top - total) & -PAGE;
        if (total > top || start < bottom || total > Integer.MAX_VALUE - 16) {
            String need = maxExclusive < lowRam ? "the kernel accepts an initrd only below " + Bytes.hex(maxExclusive)
                    : "it needs at least " + ((bottom + total + MIB - 1) / MIB) + "M of guest RAM (--mem)";
            throw new LoadException(name + ": initrd of " + total + " bytes does not fit in guest memory between the"
                    + " end of the kernel (" + Bytes.hex(bottom) + ") and " + Bytes.hex(top) + "; " + need);
        }
        byte[] all = new byte[(int) total];
        int off = 0;
        for (byte[] part : parts) {
            System.arraycopy(part, 0, all, off, part.length);
            off += part.length;
        }
        if (total > 0) {
            chunks.add(new Chunk("initrd", start, all, 0));
        }
        return new long[] {total > 0 ? start : 0, total};
    }

    /** Sets the boot loader's fields of a zero page whose setup header is already in place. */
    static void fillZeroPage(byte[] zp, LoadOptions opts, long[] initrd, List<E820.Entry> map) {
        zp[HDR_TYPE_OF_LOADER] = (byte) TYPE_OF_LOADER_UNDEFINED;
        zp[HDR_LOADFLAGS] = (byte) ((zp[HDR_LOADFLAGS] | CAN_USE_HEAP) & ~KEEP_SEGMENTS);
        Bytes.put16(zp, HDR_HEAP_END_PTR, HEAP_END);
        Bytes.put32(zp, HDR_CMD_LINE_PTR, Layout.CMDLINE);
        Bytes.put32(zp, BP_EXT_CMD_LINE_PTR, Layout.CMDLINE >>> 32);
        long addr = initrd == null ? 0 : initrd[0];
        long size = initrd == null ? 0 : initrd[1];
        Bytes.put32(zp, HDR_RAMDISK_IMAGE, addr);
        Bytes.put32(zp, HDR_RAMDISK_SIZE, size);
        Bytes.put32(zp, BP_EXT_RAMDISK_IMAGE, addr >>> 32);
        Bytes.put32(zp, BP_EXT_RAMDISK_SIZE, size >>> 32);
        Bytes.put64(zp, BP_ACPI_RSDP_ADDR, opts.rsdpAddress());
        int n = Math.min(map.size(), E820_MAX_ENTRIES);
        zp[BP_E820_ENTRIES] = (byte) n;
        for (int i = 0; i < n; i++) {
            E820.Entry e = map.get(i);
            int off = BP_E820_TABLE + 20 * i;
            Bytes.put64(zp, off, e.base());
            Bytes.put64(zp, off + 8, e.length());
            Bytes.put32(zp, off + 16, e.type());
        }
    }

    /**
     * struct hvm_start_info (version 1) at {@link Layout#PVH_START_INFO}, then the module list (one
     * entry: the initrd, if any) and the memory map, all within the page below the zero page.
     */
    static byte[] pvhStartInfo(LoadOptions opts, long[] initrd, List<E820.Entry> map) {
        int modlist = 64;
        int nrModules = initrd != null && initrd[1] > 0 ? 1 : 0;
        int memmap = modlist + nrModules * PVH_MODLIST_ENTRY_SIZE;
        byte[] b = new byte[memmap + map.size() * PVH_MEMMAP_ENTRY_SIZE];
        if (Layout.PVH_START_INFO + b.length > Layout.ZERO_PAGE) {
            throw new IllegalStateException("PVH start info does not fit below the zero page");
        }
        Bytes.put32(b, 0, PVH_MAGIC);
        Bytes.put32(b, 4, PVH_VERSION);
        Bytes.put32(b, 8, 0);
        Bytes.put32(b, 12, nrModules);
        Bytes.put64(b, 16, nrModules == 0 ? 0 : Layout.PVH_START_INFO + modlist);
        Bytes.put64(b, 24, Layout.CMDLINE);
        Bytes.put64(b, 32, opts.rsdpAddress());
        Bytes.put64(b, 40, Layout.PVH_START_INFO + memmap);
        Bytes.put32(b, 48, map.size());
        if (nrModules == 1) {
            Bytes.put64(b, modlist, initrd[0]);
            Bytes.put64(b, modlist + 8, initrd[1]);
        }
        for (int i = 0; i < map.size(); i++) {
            E820.Entry e = map.get(i);
            int off = memmap + i * PVH_MEMMAP_ENTRY_SIZE;
            Bytes.put64(b, off, e.base());
            Bytes.put64(b, off + 8, e.length());
            Bytes.put32(b, off + 16, e.type());
        }
        return b;
    }
}
