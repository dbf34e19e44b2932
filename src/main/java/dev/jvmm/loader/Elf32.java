package dev.jvmm.loader;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Just enough of an ELF32 little-endian i386 executable for a multiboot loader: the entry point and the
 * PT_LOAD program headers, every field checked against the file's size.
 */
public record Elf32(long entry, List<ElfSegment> segments) {
    public static final int EHDR_SIZE = 52;
    public static final int PHDR_SIZE = 32;
    public static final int PT_LOAD = 1;
    public static final int ET_EXEC = 2;
    public static final int EM_386 = 3;

    public Elf32 {
        segments = List.copyOf(segments);
    }

    public static boolean isElf(byte[] image) {
        return image.length >= 4 && image[0] == 0x7f && image[1] == 'E' && image[2] == 'L' && image[3] == 'F';
    }

    public static Elf32 parse(Path file, byte[] image) throws LoadException {
        ElfChecks.checkIdent(file, image, EHDR_SIZE, 1, "ELF32", "multiboot kernels must be 32-bit i386 ELF");
        int type = Bytes.u16(image, 16);
        int machine = Bytes.u16(image, 18);
        if (machine != EM_386) {
            throw new LoadException(file + ": not an i386 ELF file (machine " + machine
                    + "); multiboot kernels must be 32-bit i386 ELF");
        }
        if (type != ET_EXEC) {
            throw new LoadException(file + ": not an executable ELF file (type " + type + ")");
        }
        long entry = Bytes.u32u(image, 24);
        long phoff = Bytes.u32u(image, 28);
        int phentsize = Bytes.u16(image, 42);
        int phnum = Bytes.u16(image, 44);
        ElfChecks.checkCount(file, phnum);
        if (phnum > 0 && phentsize < PHDR_SIZE) {
            throw new LoadException(file + ": bad ELF program header size " + phentsize);
        }
        long phEnd = phoff + (long) phnum * phentsize;   // < 2^33, no overflow
        if (phEnd > image.length) {
            throw new LoadException(file + ": truncated ELF file: program headers end at " + phEnd
                    + ", beyond the end of the file (" + image.length + " bytes)");
        }
        List<ElfSegment> segments = new ArrayList<>();
        for (int i = 0; i < phnum; i++) {
            int ph = (int) (phoff + (long) i * phentsize);
            if (Bytes.u32(image, ph) != PT_LOAD) {
                continue;
            }
            long offset = Bytes.u32u(image, ph + 4);
            long vaddr = Bytes.u32u(image, ph + 8);
            long paddr = Bytes.u32u(image, ph + 12);
            long filesz = Bytes.u32u(image, ph + 16);
            long memsz = Bytes.u32u(image, ph + 20);
            if (offset + filesz > image.length) {
                throw new LoadException(file + ": truncated ELF file: segment " + i + " (" + filesz
                        + " bytes at offset " + offset + ") extends beyond the end of the file ("
                        + image.length + " bytes)");
            }
            if (filesz > memsz) {
                throw new LoadException(file + ": bad ELF segment " + i + ": file size " + filesz
                        + " exceeds memory size " + memsz);
            }
            if (memsz == 0) {
                continue;
            }
            segments.add(new ElfSegment(i, offset, vaddr, paddr, filesz, memsz));
        }
        if (segments.isEmpty()) {
            throw new LoadException(file + ": ELF file has no loadable segments");
        }
        // paddr + memsz < 2^33: no overflow; ranges past 4 GiB are refused by the loader's RAM check
        ElfChecks.checkNoOverlap(file, segments.stream()
                .map(s -> new long[] {s.index(), s.paddr(), s.paddr() + s.memSize()}).toArray(long[][]::new));
        return new Elf32(entry, segments);
    }
}
