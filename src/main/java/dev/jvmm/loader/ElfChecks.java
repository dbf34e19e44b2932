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
