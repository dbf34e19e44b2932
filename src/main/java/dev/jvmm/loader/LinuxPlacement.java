package dev.jvmm.loader;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.memory.Chunk;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Where a Linux kernel and its initrd go in guest RAM. Every placement is checked against RAM
 * before any byte is copied or read: the kernel from 1 MiB to the end of low RAM, the initrd
 * page-aligned as high as the kernel allows above the kernel's end.
 */
final class LinuxPlacement {
    private LinuxPlacement() { }

    static final long PAGE = 4096;
    static final long MIB = 1L << 20;
    /** Where a relocatable bzImage goes when its preferred address will not do (aligned up). */
    static final long RELOCATE_FROM = 16L << 20;

    /**
     * Checks that every PT_LOAD segment lies in RAM from 1 MiB to the end of low RAM (the parser
     * already refused overlaps); returns the end of the highest.
     */
    static long checkSegments(Path file, Elf64 elf, long lowRam) throws LoadException {
        List<ElfSegment> sorted = new ArrayList<>(elf.segments());
        sorted.sort(Comparator.comparingLong(ElfSegment::paddr));
        long end = 0;
        for (ElfSegment s : sorted) {
            if (s.paddr() < Layout.HIMEM_START) {
                throw new LoadException(file + ": ELF segment " + s.index() + " at physical address "
                        + Bytes.hex(s.paddr()) + " lies below 1 MiB, where jvmm keeps its boot structures");
            }
            if (s.paddrEnd() > lowRam) {
                throw tooBig(file, "kernel", s.paddrEnd(), lowRam);
            }
            end = Math.max(end, s.paddrEnd());
        }
        return end;
    }

    /** The segments' file bytes as chunks (after {@link #checkSegments}: they fit in RAM together). */
    static void copySegments(Path file, byte[] image, Elf64 elf, List<Chunk> chunks) throws LoadException {
        long total = 0;
        for (ElfSegment s : elf.segments()) total += s.fileSize();
        ImageFiles.requireHeap(file, "kernel", total);
        for (ElfSegment s : elf.segments()) {
            chunks.add(new Chunk("kernel segment " + s.index(), s.paddr(),
                    Arrays.copyOfRange(image, (int) s.offset(), (int) (s.offset() + s.fileSize())),
                    s.memSize() - s.fileSize()));
        }
    }

    /**
     * Where the protected-mode part of a bzImage loads when the kernel decompresses itself: its
     * preferred address if [pref, pref + span) fits, else (relocatable kernels) the first aligned
     * address from 16 MiB.
     *
     * @param span bytes the kernel needs from its load address on (init_size, or more)
     */
    static long bzImageLoadAddress(Path file, BzImageHeader h, long span, long lowRam) throws LoadException {
        long pref = h.prefAddress();
        boolean prefOk = pref >= Layout.HIMEM_START && pref < Layout.MMIO_HOLE_START;
        long wanted = pref;
        if (prefOk && pref <= lowRam && span <= lowRam - pref) {
            return pref;
        }
        if (h.relocatable()) {
            long align = h.kernelAlignment();
            long a = align == 0 || Long.bitCount(align) != 1 ? 2 * MIB : align;
            long candidate = (RELOCATE_FROM + a - 1) & -a;
            if (candidate <= lowRam && span <= lowRam - candidate) {
                return candidate;
            }
            if (!prefOk || candidate < pref) {
                wanted = candidate;
            }
        } else if (!prefOk) {
            throw new LoadException(file + ": kernel is not relocatable and its preferred address "
                    + Bytes.hex(pref) + " is not in RAM between 1 MiB and the 32-bit MMIO hole");
        }
        throw tooBig(file, "kernel", wanted + span, lowRam);
    }

    static LoadException tooBig(Path file, String what, long end, long lowRam) {
        if (end > Layout.MMIO_HOLE_START) {
            return new LoadException(file + ": " + what + " would end at " + Bytes.hex(end)
                    + ", beyond the RAM below the 32-bit MMIO hole (" + Bytes.hex(Layout.MMIO_HOLE_START) + ")");
        }
        long needMib = (end + MIB - 1) / MIB;
        return new LoadException(file + ": " + what + " does not fit in guest memory: it ends at " + Bytes.hex(end)
                + " and RAM ends at " + Bytes.hex(lowRam) + "; it needs at least " + needMib + "M of guest RAM (--mem)");
    }

    /**
     * The initrd: the files concatenated into one range placed page-aligned as high as possible below
     * {@code maxExclusive} and above {@code kernelEnd}. Every file's size is checked (stat) before
     * any is read; then each is read once, straight into its place.
     */
    static Initrd placeInitrd(List<Path> files, long kernelEnd, long maxExclusive, long lowRam, List<Chunk> chunks)
            throws LoadException {
        if (files.isEmpty()) {
            return Initrd.NONE;
        }
        long top = Math.min(maxExclusive, lowRam) & -PAGE;
        long bottom = (kernelEnd + PAGE - 1) & -PAGE;
        long room = Math.max(0, top - bottom);
        long[] sizes = new long[files.size()];
        long total = 0;
        for (int i = 0; i < files.size(); i++) {
            Path p = files.get(i);
            sizes[i] = ImageFiles.size(p, "initrd", true);
            total += sizes[i];   // no overflow: total <= room < 4 GiB before, and a size is < 2^63
            if (total > room) {
                String need = maxExclusive < lowRam
                        ? "the kernel accepts an initrd only below " + Bytes.hex(maxExclusive)
                        : "it needs at least " + ((bottom + total + MIB - 1) / MIB) + "M of guest RAM (--mem)";
                String with = i == 0 ? "" : " (" + total + " bytes with the " + i + " initrd file"
                        + (i == 1 ? "" : "s") + " before it)";
                throw new LoadException(p + ": initrd of " + sizes[i] + " bytes" + with + " does not fit in guest"
                        + " memory between the end of the kernel (" + Bytes.hex(bottom) + ") and " + Bytes.hex(top)
                        + " (" + room + " bytes); " + need);
            }
        }
        if (total == 0) {
            return Initrd.NONE;
        }
        long start = (top - total) & -PAGE;   // >= bottom: total <= top - bottom and bottom is page-aligned
        chunks.addAll(ImageFiles.readConcatenated("initrd", start, files, sizes, "initrd"));
        return new Initrd(start, total);
    }
}
