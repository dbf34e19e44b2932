package dev.jvmm.loader;

/**
 * Where the initrd went: the guest-physical address and size the kernel is told about (the zero
 * page's ramdisk fields, the PVH module list). {@link #NONE} when there is none, or it is empty.
 */
public record Initrd(long address, long size) {
    public static final Initrd NONE = new Initrd(0, 0);

    public boolean present() {
        return size > 0;
    }
}
