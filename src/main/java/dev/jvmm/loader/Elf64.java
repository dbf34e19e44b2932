package dev.jvmm.loader;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/**
 * Just enough of an ELF64 little-endian x86-64 executable (a Linux vmlinux) for the Linux loader: the
 * entry point, the PT_LOAD program headers and the Xen PVH entry note, every field checked against the
 * file's size. Addresses and sizes above 2^63 are rejected rather than wrapped.
 */
public record Elf64(long entry, List<ElfSegment> segments, OptionalLong pvhEntry) {
    public static final int EHDR_SIZE = 64;
    public static final int PHDR_SIZE = 56;
    public static final int SHDR_SIZE = 64;
    public static final int PT_LOAD = 1;
    public static final int PT_NOTE = 4;
    public static final int SHT_NOTE = 7;
    public static final int ET_EXEC = 2;
    public static final int ET_DYN = 3;
    public static final int EM_X86_64 = 62;
    /** XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit physical PVH entry point. */
    public static final int XEN_ELFNOTE_PHYS32_ENTRY = 18;

    public Elf64 {
        segments = List.copyOf(segments);
    }

    /** True for any ELF64 file (class 2), whatever its machine: the ELF loader then names what is wrong. */
    public static boolean isElf64(byte[] image) {
        return Elf32.isElf(image) && image.length > 4 && image[4] == 2;
    }

    /** True for an ELF64 little-endian x86-64 file. */
    public static boolean isElf64X86(byte[] image) {
        return isElf64(image) && image.length >= 20 && image[5] == 1 && Bytes.u16(image, 18) == EM_X86_64;
    }

    public static Elf64 parse(Path file, byte[] image) throws LoadException {
        ElfChecks.checkIdent(file, image, EHDR_SIZE, 2, "ELF64", "Linux kernels must be x86-64 ELF64 (vmlinux)");
        int type = Bytes.u16(image, 16);
        int machine = Bytes.u16(image, 18);
        if (machine != EM_X86_64) {
            throw new LoadException(file + ": not an x86-64 ELF file (machine " + machine + ")");
        }
        if (type != ET_EXEC && type != ET_DYN) {
            throw new LoadException(file + ": not an executable ELF file (type " + type + ")");
        }
        long entry = Bytes.u64(image, 24);
        long phoff = Bytes.u64(image, 32);
        long shoff = Bytes.u64(image, 40);
        int phentsize = Bytes.u16(image, 54);
        int phnum = Bytes.u16(image, 56);
        int shentsize = Bytes.u16(image, 58);
        int shnum = Bytes.u16(image, 60);
        ElfChecks.checkCount(file, phnum);
        if (phnum > 0 && phentsize < PHDR_SIZE) {
            throw new LoadException(file + ": bad ELF program header size " + phentsize);
        }
        checkTable(file, image, "program headers", phoff, phnum, phentsize);
        List<ElfSegment> segments = new ArrayList<>();
        OptionalLong pvh = OptionalLong.empty();
        boolean sawNoteSegment = false;
        int[] noteBudget = {ElfChecks.MAX_NOTES};
        for (int i = 0; i < phnum; i++) {
            int ph = (int) (phoff + (long) i * phentsize);
            int ptype = Bytes.u32(image, ph);
            long offset = Bytes.u64(image, ph + 8);
            long filesz = Bytes.u64(image, ph + 32);
            if (ptype != PT_LOAD && ptype != PT_NOTE) {
                continue;
            }
            if (offset < 0 || filesz < 0 || filesz > image.length - offset) {
                throw new LoadException(file + ": truncated ELF file: segment " + i + " (" + Long.toUnsignedString(filesz)
                        + " bytes at offset " + Long.toUnsignedString(offset) + ") extends beyond the end of the file ("
                        + image.length + " bytes)");
            }
            if (ptype == PT_NOTE) {
                sawNoteSegment = true;
                if (pvh.isEmpty()) {
                    pvh = findPvhNote(file, image, (int) offset, (int) filesz, noteBudget);
                }
                continue;
            }
            long vaddr = Bytes.u64(image, ph + 16);
            long paddr = Bytes.u64(image, ph + 24);
            long memsz = Bytes.u64(image, ph + 40);
            if (filesz > memsz || memsz < 0) {
                throw new LoadException(file + ": bad ELF segment " + i + ": file size " + filesz
                        + " exceeds memory size " + Long.toUnsignedString(memsz));
            }
            if (memsz == 0) {
                continue;
            }
            if (paddr < 0 || paddr + memsz < 0) {
                throw new LoadException(file + ": bad ELF segment " + i + ": physical address "
                        + Bytes.hex(paddr) + " + size " + Bytes.hex(memsz) + " overflows");
            }
            segments.add(new ElfSegment(i, offset, vaddr, paddr, filesz, memsz));
        }
        if (segments.isEmpty()) {
            throw new LoadException(file + ": ELF file has no loadable segments");
        }
        ElfChecks.checkNoOverlap(file, segments.stream()
                .map(s -> new long[] {s.index(), s.paddr(), s.paddrEnd()}).toArray(long[][]::new));
        if (pvh.isEmpty() && !sawNoteSegment && shnum > 0 && shoff != 0) {
            if (shentsize < SHDR_SIZE) {
                throw new LoadException(file + ": bad ELF section header size " + shentsize);
            }
            checkTable(file, image, "section headers", shoff, shnum, shentsize);
            for (int i = 0; i < shnum && pvh.isEmpty(); i++) {
                int sh = (int) (shoff + (long) i * shentsize);
                if (Bytes.u32(image, sh + 4) != SHT_NOTE) {
                    continue;
                }
                long offset = Bytes.u64(image, sh + 24);
                long size = Bytes.u64(image, sh + 32);
                if (offset < 0 || size < 0 || size > image.length - offset) {
                    throw new LoadException(file + ": truncated ELF file: note section " + i
                            + " extends beyond the end of the file");
                }
                pvh = findPvhNote(file, image, (int) offset, (int) size, noteBudget);
            }
        }
        return new Elf64(entry, segments, pvh);
    }

    private static void checkTable(Path file, byte[] image, String what, long off, int num, int entSize)
            throws LoadException {
        if (num == 0) {
            return;
        }
        if (off < 0 || off > image.length || (long) num * entSize > image.length - off) {
            throw new LoadException(file + ": truncated ELF file: " + what + " at offset "
                    + Long.toUnsignedString(off) + " extend beyond the end of the file (" + image.length + " bytes)");
        }
    }

    /**
     * Walks the notes in [off, off + size) for the Xen PHYS32_ENTRY note, examining at most
     * {@code budget[0]} notes (shared by all calls for one file, so a file of many tiny notes stays fast).
     */
    private static OptionalLong findPvhNote(Path file, byte[] image, int off, int size, int[] budget)
            throws LoadException {
        int p = off;
        int end = off + size;
        while (end - p >= 12 && budget[0]-- > 0) {
            long namesz = Bytes.u32u(image, p);
            long descsz = Bytes.u32u(image, p + 4);
            int type = Bytes.u32(image, p + 8);
            long nameStart = p + 12L;
            long descStart = nameStart + align4(namesz);
            long next = descStart + align4(descsz);
            if (descStart + descsz > end) {
                throw new LoadException(file + ": bad ELF note at offset " + p + ": extends beyond its note area");
            }
            if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && image[(int) nameStart] == 'X'
                    && image[(int) nameStart + 1] == 'e' && image[(int) nameStart + 2] == 'n'
                    && image[(int) nameStart + 3] == 0) {
                if (descsz < 4) {
                    throw new LoadException(file + ": bad Xen PVH entry note: " + descsz + "-byte value");
                }
                return OptionalLong.of(Bytes.u32u(image, (int) descStart));
            }
            if (next > end) {
                break;
            }
            p = (int) next;
        }
        return OptionalLong.empty();
    }

    private static long align4(long v) {
        return (v + 3) & ~3L;
    }

    /**
     * The physical address of the entry point: as is if it lies in a segment's physical range (Linux's
     * vmlinux), else translated through the segment whose virtual range holds it.
     */
    public long physicalEntry(Path file) throws LoadException {
        for (ElfSegment s : segments) {
            if (entry >= s.paddr() && entry - s.paddr() < s.memSize()) {
                return entry;
            }
        }
        for (ElfSegment s : segments) {
            if (Long.compareUnsigned(entry, s.vaddr()) >= 0 && Long.compareUnsigned(entry - s.vaddr(), s.memSize()) < 0) {
                return s.paddr() + (entry - s.vaddr());
            }
        }
        throw new LoadException(file + ": ELF entry point " + Bytes.hex(entry) + " is outside every loadable segment");
    }
}
