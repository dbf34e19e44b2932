package dev.jvmm.loader;

import dev.jvmm.arch.x86.E820;
import dev.jvmm.arch.x86.EntryState;
import dev.jvmm.arch.x86.Layout;
import dev.jvmm.loader.LoadOptions.BootProtocol;
import dev.jvmm.memory.Chunk;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Linux kernels: bzImages through the 64-bit boot protocol (Documentation/arch/x86/boot.rst), either
 * with the payload decompressed on the host and its vmlinux entered directly (default) or with the
 * kernel's own decompressor; and ELF64 vmlinux images through the 64-bit protocol or PVH (the Xen
 * PHYS32_ENTRY note, {@code struct hvm_start_info}).
 *
 * <p>Guest addresses used: the zero page ({@link ZeroPage}) at {@link Layout#ZERO_PAGE}, the command
 * line at {@link Layout#CMDLINE}, the PVH start info ({@link PvhStartInfo}) in
 * [{@link Layout#PVH_START_INFO}, {@link Layout#ZERO_PAGE}); the kernel and the initrd where
 * {@link LinuxPlacement} puts them.
 */
public final class LinuxLoader {
    private LinuxLoader() { }

    /** Offset of the 64-bit entry point (startup_64) from the start of the protected-mode kernel. */
    public static final long STARTUP_64_OFFSET = 0x200;
    /** Host decompression refuses output beyond this, beyond guest RAM, or beyond the image's init_size. */
    public static final long MAX_DECOMPRESSED = 512L << 20;

    /** True if {@code image} has a bzImage setup header: boot_flag 0xAA55 and "HdrS". */
    public static boolean isBzImage(byte[] image) {
        return BzImageHeader.isBzImage(image);
    }

    /**
     * The bzImage's payload, decompressed: at most {@code ramLimit} bytes ({@code ramReason} says
     * what that limit is), at most 512 MiB, and at most the header's init_size; from {@code cache}
     * (null for none) if it has it.
     */
    static byte[] payload(Path file, byte[] image, BzImageHeader h, long ramLimit, String ramReason, KernelCache cache)
            throws LoadException {
        long limit = Math.min(ramLimit, MAX_DECOMPRESSED);
        String reason = ramLimit <= MAX_DECOMPRESSED ? ramReason : "512 MiB";
        // the kernel decompresses into the init_size bytes from its load address: more is not a kernel
        if (h.initSize() > 0 && h.initSize() < limit) {
            limit = h.initSize();
            reason = "the image's init_size";
        }
        long max = limit;
        String why = reason;
        KernelCache.Decompressor d = () -> PayloadDecompressor.decompress(file, image, (int) h.payloadStart(),
                (int) h.payloadLength(), max, why);
        return cache == null ? d.decompress() : cache.decompressed(image, (int) h.payloadStart(), (int) h.payloadLength(), limit, d);
    }

    /**
     * The vmlinux ELF inside a bzImage (what host-side decompression boots), at most 512 MiB.
     * @throws LoadException if {@code image} is not a bzImage or its payload cannot be decompressed
     */
    public static byte[] extractVmlinux(Path file, byte[] image) throws LoadException {
        BzImageHeader h = BzImageHeader.parse(file, image, image.length, false);
        return payload(file, image, h, MAX_DECOMPRESSED, "512 MiB", null);
    }

    /**
     * The vmlinux ELF inside the bzImage {@code file}: the header is read and checked first, then only
     * the payload is read (at most 512 MiB of it) and decompressed.
     */
    public static byte[] extractVmlinux(Path file) throws LoadException {
        try {
            long size = ImageFiles.size(file, "bzImage", false);
            byte[] head = ImageFiles.readRange(file, "bzImage", 0, (int) Math.min(size, BzImageHeader.MAX_END), size);
            BzImageHeader h = BzImageHeader.parse(file, head, size, false);
            if (h.payloadLength() > MAX_DECOMPRESSED) {
                throw new LoadException(file + ": bzImage payload of " + h.payloadLength() + " bytes is larger than"
                        + " the 512 MiB jvmm decompresses");
            }
            byte[] payload = ImageFiles.readRange(file, "bzImage", h.payloadStart(), (int) h.payloadLength(), size);
            return PayloadDecompressor.decompress(file, payload, 0, payload.length,
                    h.initSize() > 0 ? Math.min(h.initSize(), MAX_DECOMPRESSED) : MAX_DECOMPRESSED,
                    h.initSize() > 0 && h.initSize() < MAX_DECOMPRESSED ? "the image's init_size" : "512 MiB");
        } catch (OutOfMemoryError e) {   // the bounds above make this unlikely; never a stack trace
            throw new LoadException(file + ": not enough Java heap to extract the vmlinux; give jvmm's JVM a larger"
                    + " -Xmx");
        }
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
        BzImageHeader h = BzImageHeader.parse(file, image, image.length, true);
        byte[] cmdline = cmdline(file, opts, h.cmdlineSize());
        byte[] zp = ZeroPage.fromSetupHeader(image, h);

        long lowRam = Layout.lowRamSize(opts.memSize());
        List<Chunk> chunks = new ArrayList<>();
        long kernelEnd;
        long rip;
        if (opts.hostDecompress()) {
            byte[] vmlinux = payload(file, image, h, lowRam, "guest RAM (--mem)", opts.kernelCache());
            Path inner = Path.of(file + " (decompressed payload)");
            Elf64 elf = Elf64.parse(inner, vmlinux);
            kernelEnd = LinuxPlacement.checkSegments(inner, elf, lowRam);
            rip = elf.physicalEntry(inner);
            LinuxPlacement.copySegments(inner, vmlinux, elf, chunks);
        } else {
            if (h.pmSize() <= STARTUP_64_OFFSET) {   // the entry would be past the loaded bytes, in zeros
                throw new LoadException(file + ": truncated bzImage: its " + h.pmSize() + "-byte protected-mode kernel"
                        + " ends before the 64-bit entry point at offset " + Bytes.hex(STARTUP_64_OFFSET));
            }
            long span = Math.max(h.initSize(), h.pmSize());
            long load = LinuxPlacement.bzImageLoadAddress(file, h, span, lowRam);
            ImageFiles.requireHeap(file, "kernel", h.pmSize());
            chunks.add(new Chunk("Linux kernel " + file.getFileName(), load,
                    Arrays.copyOfRange(image, h.pmOffset(), image.length), 0));
            Bytes.put32(zp, BzImageHeader.CODE32_START, load);
            kernelEnd = load + span;
            rip = load + STARTUP_64_OFFSET;
        }
        long initrdMax = Math.min(h.initrdAddrMax() + 1, lowRam);
        Initrd initrd = LinuxPlacement.placeInitrd(opts.modules(), kernelEnd, initrdMax, lowRam, chunks);
        ZeroPage.fill(zp, opts, initrd, E820.map(opts.memSize()));
        chunks.add(new Chunk("zero page", Layout.ZERO_PAGE, zp, 0));
        chunks.add(new Chunk("kernel command line", Layout.CMDLINE, cmdline, 0));
        return new BootImage(KernelFormat.BZIMAGE, chunks, new EntryState.Long64(rip, Layout.ZERO_PAGE));
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
        long kernelEnd = LinuxPlacement.checkSegments(file, elf, lowRam);
        if (pvh) {
            long entry = elf.pvhEntry().getAsLong();
            if (elf.segments().stream().noneMatch(s -> entry >= s.paddr() && entry < s.paddrEnd())) {
                throw new LoadException(file + ": the Xen PVH entry point " + Bytes.hex(entry)
                        + " is outside every loadable segment");
            }
            byte[] cmdline = cmdline(file, opts, Layout.CMDLINE_MAX - 1);
            LinuxPlacement.copySegments(file, image, elf, chunks);
            Initrd initrd = LinuxPlacement.placeInitrd(opts.modules(), kernelEnd, Math.min(lowRam, Layout.FOUR_GIB),
                    lowRam, chunks);
            chunks.add(new Chunk("PVH start info", Layout.PVH_START_INFO,
                    PvhStartInfo.build(opts, initrd, E820.map(opts.memSize())), 0));
            chunks.add(new Chunk("kernel command line", Layout.CMDLINE, cmdline, 0));
            return new BootImage(KernelFormat.ELF, chunks, new EntryState.Protected32(entry, 0, Layout.PVH_START_INFO, 0));
        }
        long rip = elf.physicalEntry(file);
        byte[] cmdline = cmdline(file, opts, ZeroPage.DEFAULT_CMDLINE_SIZE);
        LinuxPlacement.copySegments(file, image, elf, chunks);
        byte[] zp = ZeroPage.synthetic();
        Initrd initrd = LinuxPlacement.placeInitrd(opts.modules(), kernelEnd,
                Math.min(ZeroPage.DEFAULT_INITRD_ADDR_MAX + 1, lowRam), lowRam, chunks);
        ZeroPage.fill(zp, opts, initrd, E820.map(opts.memSize()));
        chunks.add(new Chunk("zero page", Layout.ZERO_PAGE, zp, 0));
        chunks.add(new Chunk("kernel command line", Layout.CMDLINE, cmdline, 0));
        return new BootImage(KernelFormat.ELF, chunks, new EntryState.Long64(rip, Layout.ZERO_PAGE));
    }

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
}
