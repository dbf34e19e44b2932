package dev.jvmm.loader;

import java.io.IOException;
import java.nio.file.Files;
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
 * {@link KernelFormat#FLAT}.
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
        byte[] image = readFile(kernel, "kernel", opts.memSize(), false);
        Optional<MultibootHeader> header = MultibootHeader.find(image);
        KernelFormat format = forcedOrNull != null ? forcedOrNull : detect(image, header);
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

    /**
     * Reads a whole file after checking it exists, is a regular readable file, and is no larger than
     * {@code limit} bytes. {@code what} ("kernel", "module") is only used in messages.
     */
    static byte[] readFile(Path file, String what, long limit, boolean emptyOk) throws LoadException {
        if (!Files.exists(file)) {
            throw new LoadException(file + ": no such " + what + " file");
        }
        if (!Files.isRegularFile(file)) {
            throw new LoadException(file + ": " + what + " is not a regular file");
        }
        if (!Files.isReadable(file)) {
            throw new LoadException(file + ": " + what + " file is not readable (permission denied)");
        }
        try {
            long size = Files.size(file);
            if (size == 0 && !emptyOk) {
                throw new LoadException(file + ": " + what + " file is empty");
            }
            if (size > limit || size > Integer.MAX_VALUE - 16) {
                throw new LoadException(file + ": " + what + " is too large for guest memory ("
                        + size + " bytes, at most " + Math.max(0, limit) + " bytes available)");
            }
            byte[] bytes = Files.readAllBytes(file);
            if (bytes.length > limit) {  // it grew while we looked
                throw new LoadException(file + ": " + what + " is too large for guest memory ("
                        + bytes.length + " bytes)");
            }
            if (bytes.length == 0 && !emptyOk) {
                throw new LoadException(file + ": " + what + " file is empty");
            }
            return bytes;
        } catch (IOException e) {
            throw new LoadException(file + ": cannot read " + what + ": " + e.getMessage(), e);
        }
    }
}
