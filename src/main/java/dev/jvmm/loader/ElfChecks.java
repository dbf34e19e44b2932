package dev.jvmm.loader;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;

/** Checks shared by the ELF32 and ELF64 parsers, done on the headers before any segment is read. */
final class ElfChecks {
    private ElfChecks() { }

    /**
     * At most this many program headers: kernels have a handful (a Linux vmlinux 5), and every header
     * costs a check and maybe a copy, so a file claiming 65,535 is refused before any is looked at.
     */
    static final int MAX_PROGRAM_HEADERS = 256;
    /** At most this many ELF notes are examined looking for the PVH one (a vmlinux has about 10). */
    static final int MAX_NOTES = 1024;

    /**
     * The checks before any class-specific field is read: an ELF file, at least {@code headerSize}
     * bytes, of class {@code elfClass} (else "not an {@code name} file (class N); {@code hint}"),
     * little-endian.
     */
    static void checkIdent(Path file, byte[] image, int headerSize, int elfClass, String name, String hint) throws LoadException {
        if (!Elf32.isElf(image)) {
            throw new LoadException(file + ": not an ELF file");
        }
        if (image.length < headerSize) {
            throw new LoadException(file + ": truncated ELF file: header needs " + headerSize + " bytes, file has "
                    + image.length);
        }
        if (image[4] != elfClass) {
            throw new LoadException(file + ": not an " + name + " file (class " + image[4] + "); " + hint);
        }
        if (image[5] != 1) {
            throw new LoadException(file + ": not a little-endian ELF file");
        }
    }

    static void checkCount(Path file, int phnum) throws LoadException {
        if (phnum > MAX_PROGRAM_HEADERS) {
            throw new LoadException(file + ": ELF file has " + phnum + " program headers, more than the "
                    + MAX_PROGRAM_HEADERS + " jvmm accepts");
        }
    }

    /**
     * Refuses loadable segments whose physical ranges overlap. {@code ranges} holds {index, start, end}
     * per segment, ends not wrapped (the parsers refuse overflow first).
     */
    static void checkNoOverlap(Path file, long[][] ranges) throws LoadException {
        long[][] sorted = ranges.clone();
        Arrays.sort(sorted, Comparator.comparingLong((long[] r) -> r[1]));
        for (int i = 1; i < sorted.length; i++) {
            long[] a = sorted[i - 1];
            long[] b = sorted[i];
            if (b[1] < a[2]) {
                throw new LoadException(file + ": ELF segment " + b[0] + " [" + Bytes.hex(b[1]) + ", " + Bytes.hex(b[2])
                        + ") overlaps segment " + a[0] + " [" + Bytes.hex(a[1]) + ", " + Bytes.hex(a[2]) + ")");
            }
        }
    }
}
