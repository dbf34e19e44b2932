package dev.jvmm.loader;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;

/**
 * jvmm's cache directory, {@code ${XDG_CACHE_HOME:-~/.cache}/jvmm}, and the one way files get into
 * it: written to a temporary file, forced to disk, then renamed into place, so a concurrent run
 * never sees a partial file and a full disk leaves only a temporary file that a later run removes.
 */
public final class CacheFiles {
    private CacheFiles() { }

    /** Temporary files older than this in a cache directory are leftovers of killed runs. */
    static final Duration STALE_TEMP = Duration.ofHours(1);

    /** {@code ${XDG_CACHE_HOME:-~/.cache}/jvmm/NAME} (a relative XDG_CACHE_HOME is ignored, as the spec says). */
    public static Path directory(String name) {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isEmpty() && Path.of(xdg).isAbsolute() ? Path.of(xdg)
                : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("jvmm").resolve(name);
    }

    /**
     * Writes {@code parts} (one after the other) to {@code target} in {@code dir} (made if missing)
     * through a temporary file named {@code .PREFIX-*.tmp}, replacing what was there; forced to disk
     * before the rename if {@code durable} (else a crash of the machine may leave a damaged file,
     * which the reader must detect).
     */
    public static void publish(Path dir, String prefix, Path target, boolean durable, byte[]... parts) throws IOException {
        Files.createDirectories(dir);
        deleteStaleTemps(dir, prefix);
        Path tmp = Files.createTempFile(dir, "." + prefix + "-", ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                for (byte[] part : parts) {
                    ByteBuffer buf = ByteBuffer.wrap(part);
                    while (buf.hasRemaining()) ch.write(buf);
                }
                if (durable) ch.force(true);   // the rename must not land before the data
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException | RuntimeException e) {
            deleteQuietly(tmp);
            throw e;
        }
    }

    private static void deleteStaleTemps(Path dir, String prefix) {
        Instant before = Instant.now().minus(STALE_TEMP);
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "." + prefix + "-*.tmp")) {
            for (Path p : ds) {
                try {
                    if (Files.getLastModifiedTime(p).toInstant().isBefore(before)) Files.deleteIfExists(p);
                } catch (IOException e) {
                    // another run may have taken it away already
                }
            }
        } catch (IOException e) {
            // nothing to clean, or nothing we may clean
        }
    }

    /** Deletes {@code p} if it is there; a failure leaves it for a later run. */
    public static void deleteQuietly(Path p) {
        if (p == null) return;
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            // a leftover, cleaned by a later run
        }
    }
}
