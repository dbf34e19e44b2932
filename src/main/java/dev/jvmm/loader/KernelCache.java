package dev.jvmm.loader;

import dev.jvmm.log.Log;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Decompressed bzImage payloads (the vmlinux ELF inside), kept so that booting the same kernel again
 * skips host decompression. An entry is named by the compressed payload's length and checksums
 * ({@link #key}), so a kernel rebuilt in place is a new entry, and holds the decompressed bytes followed by a trailer: their
 * length, their CRC-32C and a magic. An entry that does not check out (a damaged disk, a file
 * written by something else) is removed and the payload decompressed again; an entry larger than
 * what the boot allows is never read. Entries appear by rename ({@link CacheFiles#publish}), so
 * concurrent runs are safe; a full disk or an unwritable directory only means no caching. The
 * {@link #KEEP} most recently used entries are kept.
 */
public final class KernelCache {

    /** Part of every entry's name: bump it when the entry layout changes. */
    static final int LAYOUT_VERSION = 1;
    static final int KEEP = 8;
    static final String SUFFIX = ".vmlinux";
    static final int TRAILER = 16;
    static final int MAGIC = 0x314b4d4a; // "JMK1", little-endian

    private final Path dir;

    public KernelCache(Path dir) {
        this.dir = dir;
    }

    /** ${XDG_CACHE_HOME:-~/.cache}/jvmm/vmlinux */
    public static KernelCache inDefaultDirectory() {
        return new KernelCache(CacheFiles.directory("vmlinux"));
    }

    public Path directory() {
        return dir;
    }

    /** Decompresses a payload the way the loader would without a cache. */
    @FunctionalInterface
    public interface Decompressor {
        byte[] decompress() throws LoadException;
    }

    /**
     * The decompressed form of {@code image[off, off + len)}: the cached one if there is an intact
     * entry of at most {@code limit} bytes, else {@code decompressor}'s, which is then cached.
     */
    public byte[] decompressed(byte[] image, int off, int len, long limit, Decompressor decompressor) throws LoadException {
        long t0 = System.nanoTime();
        Path entry = dir.resolve(key(image, off, len) + SUFFIX);
        byte[] cached = read(entry, limit);
        if (cached != null) {
            Log.debug(KernelCache.class, "kernel cache: {} ({} bytes) in {} ms", entry.getFileName(), cached.length, (System.nanoTime() - t0) / 1_000_000);
            return cached;
        }
        byte[] data = decompressor.decompress();
        write(entry, data);
        return data;
    }

    /**
     * The entry name for a payload: its length and two different 32-bit CRCs (CRC-32C and CRC-32),
     * 64 bits of checksum that two kernels will not share by accident. Both run on the JVM's CPU
     * intrinsics even before the JIT has compiled anything: looking up Debian's cloud kernel (14 MB of
     * LZ4) took 75-106 ms this way and 336 ms with a SHA-256 of the payload as the name (2026-12-01).
     */
    static String key(byte[] image, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(image, off, len);
        java.util.zip.CRC32 d = new java.util.zip.CRC32();
        d.update(image, off, len);
        java.util.HexFormat hex = java.util.HexFormat.of(); // "v%d-%d-%08x%08x", without a Formatter (start-up)
        return "v" + LAYOUT_VERSION + "-" + len + "-" + hex.toHexDigits((int) c.getValue()) + hex.toHexDigits((int) d.getValue());
    }

    /** The entry's data if it is intact and at most {@code limit} bytes, else null (a damaged one is removed). */
    byte[] read(Path entry, long limit) {
        try (FileChannel ch = FileChannel.open(entry, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < TRAILER || size - TRAILER > limit) {
                if (size < TRAILER) damaged(entry, "shorter than its trailer");
                return null; // too large for this boot: decompressing says why
            }
            int n = (int) (size - TRAILER);
            byte[] data = new byte[n];
            ByteBuffer body = ByteBuffer.wrap(data);
            ByteBuffer trailer = ByteBuffer.allocate(TRAILER).order(ByteOrder.LITTLE_ENDIAN);
            while (body.hasRemaining()) {
                if (ch.read(body) < 0) return damaged(entry, "shorter than its size");
            }
            while (trailer.hasRemaining()) {
                if (ch.read(trailer) < 0) return damaged(entry, "shorter than its size");
            }
            trailer.flip();
            long length = trailer.getLong();
            int crc = trailer.getInt(), magic = trailer.getInt();
            if (magic != MAGIC || length != n) return damaged(entry, "no trailer");
            if (crc != crc(data)) return damaged(entry, "its checksum does not match");
            try {
                Files.setLastModifiedTime(entry, FileTime.fromMillis(System.currentTimeMillis())); // recently used
            } catch (IOException e) {
                // a read-only cache still serves
            }
            return data;
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException | OutOfMemoryError e) {
            Log.debug(KernelCache.class, "kernel cache: cannot read {}: {}", entry, e.toString());
            return null;
        }
    }

    private static byte[] damaged(Path entry, String why) {
        Log.warn(KernelCache.class, "kernel cache entry {} is damaged ({}): decompressing again", entry, why);
        CacheFiles.deleteQuietly(entry);
        return null;
    }

    private static int crc(byte[] data) {
        CRC32C c = new CRC32C();
        c.update(data);
        return (int) c.getValue();
    }

    private void write(Path entry, byte[] data) {
        ByteBuffer trailer = ByteBuffer.allocate(TRAILER).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(data.length).putInt(crc(data)).putInt(MAGIC);
        try {
            // not forced to disk (tens of MiB on the boot's path): a torn entry fails its CRC and is replaced
            CacheFiles.publish(dir, "kernel", entry, false, data, trailer.array());
            evict();
        } catch (IOException | RuntimeException e) {
            // no room or no permission: the boot goes on without caching (say so only with -v)
            Log.debug(KernelCache.class, "kernel cache: cannot write {}: {}", entry, e.toString());
        }
    }

    /** Removes all but the {@link #KEEP} most recently used entries. */
    private void evict() throws IOException {
        List<Path> entries = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*" + SUFFIX)) {
            ds.forEach(entries::add);
        }
        if (entries.size() <= KEEP) return;
        entries.sort(Comparator.comparing(KernelCache::usedAt).reversed());
        for (Path p : entries.subList(KEEP, entries.size())) CacheFiles.deleteQuietly(p);
    }

    private static FileTime usedAt(Path p) {
        try {
            return Files.getLastModifiedTime(p);
        } catch (IOException e) {
            return FileTime.fromMillis(0);
        }
    }
}
