package dev.jvmm.loader;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * For tests outside this package (the distribution's): a bzImage of a small ELF vmlinux in each of the
 * compressions a kernel build offers and jvmm decompresses, as {@link LinuxImages} makes them.
 */
public final class CompressedKernels {
    private CompressedKernels() { }

    /** The compressions, by name: GZIP, XZ, LZMA, LZ4, ZSTD, BZIP2. */
    public static List<String> kinds() {
        List<String> names = new ArrayList<>();
        for (LinuxImages.Kind k : LinuxImages.Kind.values()) names.add(k.name());
        return names;
    }

    /** The vmlinux every bzImage here holds. */
    public static byte[] vmlinux() {
        return LinuxImages.vmlinux(null);
    }

    /** A standard bzImage whose payload is {@link #vmlinux()} compressed as {@code kind}. */
    public static byte[] bzImage(String kind) throws IOException {
        return LinuxImages.bzImage(LinuxImages.Hdr.standard(), LinuxImages.compress(LinuxImages.Kind.valueOf(kind), vmlinux()));
    }
}
