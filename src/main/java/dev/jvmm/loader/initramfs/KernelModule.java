package dev.jvmm.loader.initramfs;

import io.airlift.compress.zstd.ZstdInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.zip.GZIPInputStream;
import org.tukaani.xz.XZInputStream;

/**
 * One loadable kernel module file.
 *
 * @param name    the module's name in the kernel's spelling ('_', not '-'): "pvpanic_mmio"
 * @param file    the .ko, .ko.xz, .ko.zst or .ko.gz file
 * @param depends the names of the modules it needs loaded first (as modules.dep or its .modinfo
 *                say; built-in ones already left out)
 */
public record KernelModule(String name, Path file, List<String> depends) {
    /** No module comes near this decompressed (the largest in Debian's kernels are a few MiB). */
    public static final long MAX_SIZE = 64L << 20;

    public KernelModule {
        depends = List.copyOf(depends);
    }

    /** How a module file is compressed, by its name's ending. */
    public enum Compression {
        NONE(".ko"), XZ(".ko.xz"), ZSTD(".ko.zst"), GZIP(".ko.gz");

        final String suffix;

        Compression(String suffix) {
            this.suffix = suffix;
        }

        /** The compression of a file named {@code fileName}, or null if it is not a module file. */
        public static Compression of(String fileName) {
            String lower = fileName.toLowerCase(Locale.ROOT);
            for (Compression c : values()) {
                if (lower.endsWith(c.suffix) && lower.length() > c.suffix.length()) return c;
            }
            return null;
        }
    }

    /** "pvpanic-mmio.ko.xz" → "pvpanic_mmio"; null if the name is not a module file's. */
    public static String nameOf(String fileName) {
        Compression c = Compression.of(fileName);
        return c == null ? null : canonical(fileName.substring(0, fileName.length() - c.suffix.length()));
    }

    /** Module names treat '-' and '_' as the same character; the kernel writes '_'. */
    public static String canonical(String name) {
        return name.replace('-', '_');
    }

    /** The file name the module gets in the initramfs: uncompressed, canonical. */
    public String initramfsName() {
        return name + ".ko";
    }

    /** The module's ELF bytes: the file, decompressed on the host (the guest's finit_module gets them as they are). */
    public byte[] read() throws InitramfsException {
        return read(file, MAX_SIZE);
    }

    static byte[] read(Path file, long limit) throws InitramfsException {
        Compression c = Compression.of(file.getFileName().toString());
        if (c == null) throw new InitramfsException(file + ": not a kernel module file (.ko, .ko.xz, .ko.zst, .ko.gz)");
        try {
            long size = Files.size(file);
            if (size > limit) {
                throw new InitramfsException(file + ": " + size + " bytes" + (c == Compression.NONE ? "" : " compressed")
                        + ", more than a module can be (" + (limit >> 20) + " MiB)");
            }
            byte[] raw = Files.readAllBytes(file);
            if (c == Compression.NONE) return raw;
            try (InputStream in = switch (c) {
                case XZ -> new XZInputStream(new ByteArrayInputStream(raw));
                case ZSTD -> new ZstdInputStream(new ByteArrayInputStream(raw));
                case GZIP -> new GZIPInputStream(new ByteArrayInputStream(raw));
                case NONE -> throw new AssertionError();
            }) {
                byte[] out = in.readNBytes((int) Math.min(limit + 1, Integer.MAX_VALUE - 16));
                if (out.length > limit) {
                    throw new InitramfsException(file + ": decompresses to more than " + (limit >> 20)
                            + " MiB, more than a module can be");
                }
                return out;
            }
        } catch (IOException | RuntimeException e) {
            // the decoders report corrupt input as IOException or as runtime exceptions of their own
            throw new InitramfsException(file + ": cannot read the module: " + e.getMessage(), e);
        }
    }
}
