package dev.jvmm.memory;

/**
 * Bytes to copy into guest memory at {@code guestAddress}, followed by {@code zeroFill} bytes that
 * must read as zero (an ELF segment's .bss). Guest RAM starts zeroed, but a VM may be re-used.
 */
public record Chunk(String what, long guestAddress, byte[] data, long zeroFill) {
    public long end() {
        return guestAddress + data.length + zeroFill;
    }
}
