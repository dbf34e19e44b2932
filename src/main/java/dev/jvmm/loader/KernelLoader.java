package dev.jvmm.loader;

import java.nio.file.Path;
import java.util.Optional;

/**
 * Entry point of the loaders: reads a kernel image, works out its format (or takes the forced one)
 * and hands it to {@link FlatLoader}, {@link MultibootLoader} or {@link LinuxLoader}.
 *
 * <p>Detection, in this order: an image with a valid multiboot v1 header (magic, checksum) at a
 * 4-byte-aligned offset within its first 8192 bytes is {@link KernelFormat#MULTIBOOT}; one with boot_flag
 * 0xAA55 at 0x1FE and "HdrS" at 0x202 is {@link KernelFormat#BZIMAGE}; an ELF64 file is
 * {@link KernelFormat#ELF} (the loader refuses machines other than x86-64 by name); anything else is
 * {@link KernelFormat#FLAT}, except that {@link #load} refuses other ELF files unless the user forces
 * {@code --format flat}.
 */
public final class KernelLoader {
    private KernelLoader() { }

    /**
     * Loads {@code kernel}.
     *
     * @param forcedOrNull a format the user insisted on, or null to detect it
     * @throws LoadException with a one-line message naming the offending file
     */
    public static BootImage load(Path kernel, KernelFormat forcedOrNull, LoadOptions opts) throws LoadException {
        if (opts.memSize() <= 0) {
            throw new LoadException("guest memory size must be positive, not " + opts.memSize());
        }
        try {
            return loadChecked(kernel, forcedOrNull, opts);
        } catch (OutOfMemoryError e) {
            // The loaders bound every allocation by the file and guest sizes and check the heap first;
            // should the heap still run out, the user gets a line, not a stack trace.
            throw new LoadException(kernel + ": not enough Java heap to load the kernel and its initrd/modules;"
                    + " give jvmm's JVM a larger -Xmx");
        }
    }

    private static BootImage loadChecked(Path kernel, KernelFormat forcedOrNull, LoadOptions opts)
            throws LoadException {
        byte[] image = ImageFiles.readAll(kernel, "kernel", opts.memSize(), false);
        Optional<MultibootHeader> header = MultibootHeader.find(image);
        KernelFormat format = forcedOrNull != null ? forcedOrNull : detect(image, header);
        if (forcedOrNull == null && format == KernelFormat.FLAT && Elf32.isElf(image)) {
            // an ELF's header bytes are no real-mode code: running it as a flat binary is never meant
            throw new LoadException(kernel + ": an ELF file that is neither a Linux kernel (ELF64 x86-64) nor a"
                    + " multiboot kernel (no multiboot header in its first " + MultibootHeader.SEARCH_LIMIT
                    + " bytes); use --format flat to run it as a flat binary anyway");
        }
        return switch (format) {
            case FLAT -> FlatLoader.load(kernel, image, opts);
            case MULTIBOOT -> MultibootLoader.load(kernel, image, header.orElseThrow(() -> new LoadException(
                    kernel + ": not a multiboot kernel: no multiboot header (magic 0x1BADB002 with a valid checksum)"
                            + " in its first " + MultibootHeader.SEARCH_LIMIT + " bytes")), opts);
            case BZIMAGE -> LinuxLoader.loadBzImage(kernel, image, opts);
            case ELF -> LinuxLoader.loadElf(kernel, image, opts);
        };
    }

    /** Detects the format of an image's bytes, as {@link #load} does. */
    public static KernelFormat detect(byte[] image) {
        return detect(image, MultibootHeader.find(image));
    }

    private static KernelFormat detect(byte[] image, Optional<MultibootHeader> multiboot) {
        if (multiboot.isPresent()) {
            return KernelFormat.MULTIBOOT;
        }
        if (LinuxLoader.isBzImage(image)) {
            return KernelFormat.BZIMAGE;
        }
        if (Elf64.isElf64(image)) {
            return KernelFormat.ELF;
        }
        return KernelFormat.FLAT;
    }
}
