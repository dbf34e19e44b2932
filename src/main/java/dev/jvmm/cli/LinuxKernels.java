package dev.jvmm.cli;

import dev.jvmm.loader.BootImage;
import dev.jvmm.loader.KernelFormat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Telling a Linux kernel from a small test kernel, to warn before booting Linux where it cannot work. */
public final class LinuxKernels {
    private LinuxKernels() { }

    private static final byte[] BANNER = "Linux version ".getBytes(StandardCharsets.US_ASCII);

    /** A bzImage is Linux by definition; an ELF kernel is if it carries Linux's version banner. */
    public static boolean isLinux(Path kernel, BootImage image) {
        if (image.format() == KernelFormat.BZIMAGE) return true;
        if (image.format() != KernelFormat.ELF) return false;
        try (InputStream in = Files.newInputStream(kernel)) {
            return contains(in, BANNER);
        } catch (IOException e) {
            return false;
        }
    }

    /** Streams {@code in} looking for {@code needle} (no allocation per byte; vmlinux files are large). */
    static boolean contains(InputStream in, byte[] needle) throws IOException {
        byte[] buf = new byte[1 << 16];
        int matched = 0, n;
        while ((n = in.read(buf)) > 0) {
            for (int i = 0; i < n; i++) {
                byte b = buf[i];
                if (b == needle[matched]) {
                    if (++matched == needle.length) return true;
                } else {
                    matched = b == needle[0] ? 1 : 0;
                }
            }
        }
        return false;
    }
}
