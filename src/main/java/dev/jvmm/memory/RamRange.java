package dev.jvmm.memory;

/** A range of guest-physical addresses backed by RAM. */
public record RamRange(long start, long size) {
    public long end() {
        return start + size;
    }

    public boolean contains(long gpa, long len) {
        return len >= 0 && gpa >= start && gpa - start <= size && len <= size - (gpa - start);
    }
}
