package dev.jvmm.host.vhost;

/**
 * One SET_MEM_TABLE region: guest range [guestAddress, guestAddress + size) is mapped in this process
 * at {@code userAddress}, and the back end maps it from {@code fd} at {@code mmapOffset}.
 */
public record MemRegion(long guestAddress, long size, long userAddress, long mmapOffset, int fd) {
    public MemRegion {
        if (size <= 0) throw new IllegalArgumentException("memory region of " + size + " bytes");
        if (fd < 0) throw new IllegalArgumentException(String.format("memory region at guest 0x%x has no file descriptor", guestAddress));
        if (mmapOffset < 0) throw new IllegalArgumentException("negative mmap offset " + mmapOffset);
        if (guestAddress + size < guestAddress || userAddress + size < userAddress) {
            throw new IllegalArgumentException(String.format("memory region at guest 0x%x of 0x%x bytes wraps around", guestAddress, size));
        }
    }
}
