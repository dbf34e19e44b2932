package dev.jvmm.loader;

/** A PT_LOAD segment of an ELF32 or ELF64 file: {@code fileSize} bytes from {@code offset}, then zeros up to {@code memSize}. */
public record ElfSegment(int index, long offset, long vaddr, long paddr, long fileSize, long memSize) {
    public long paddrEnd() {
        return paddr + memSize;
    }
}
