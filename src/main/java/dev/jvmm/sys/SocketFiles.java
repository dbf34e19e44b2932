package dev.jvmm.sys;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;

/**
 * Listening UNIX sockets that appear at their path only once they listen, owner-only.
 *
 * <p>bind(2) creates the socket file before listen(2) makes it accept connections, so a script
 * that waits for the file and then connects can be refused (ECONNREFUSED) in between. Here the
 * socket is bound and listens in a fresh private (0700) directory beside its path, is made 0600,
 * and only then gets its real name by a hard link, which never replaces a file that appeared
 * meanwhile. Where that detour cannot be taken (the private name would not fit in sockaddr_un, or
 * the file system has no hard links) the socket is bound in place and restricted at once.
 */
public final class SocketFiles {
    private SocketFiles() { }

    /** Binds and listens on the path it is given. */
    @FunctionalInterface
    public interface Binder<S extends AutoCloseable> {
        S listen(Path at) throws IOException;
    }

    /** A socket from {@code binder} listening at {@code path} (which must not exist), mode 0600. */
    public static <S extends AutoCloseable> S listen(Path path, Binder<S> binder) throws IOException {
        Path p = path.toAbsolutePath();
        Path dir = p.resolveSibling(".jvmm-" + Long.toString(new SecureRandom().nextLong() >>> 28, 36));
        Path tmp = dir.resolve("s");
        if (tmp.toString().getBytes(StandardCharsets.UTF_8).length < UnixSocket.SUN_PATH_BYTES) {
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            try {
                S s = binder.listen(tmp);
                try {
                    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
                    Files.createLink(p, tmp); // fails if p appeared meanwhile: never replaces someone's file
                    return s;
                } catch (FileAlreadyExistsException e) {
                    close(s);
                    throw new IOException(p + " appeared while jvmm was creating it");
                } catch (IOException | UnsupportedOperationException e) {
                    close(s); // no hard links here: bind in place below
                }
            } finally {
                Files.deleteIfExists(tmp);
                Files.deleteIfExists(dir);
            }
        }
        S s = binder.listen(p);
        try {
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-------"));
        } catch (IOException | RuntimeException e) {
            close(s);
            Files.deleteIfExists(p);
            throw e;
        }
        return s;
    }

    /**
     * Makes way for a socket at {@code path}: nothing there is fine; a socket nobody listens on (left
     * by a jvmm that was killed) is removed; a socket someone listens on, or anything that is not a
     * socket, is an IOException naming the path, and the file is left alone.
     */
    public static void removeStale(Path path) throws IOException {
        Path p = path.toAbsolutePath();
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
        if (!UnixSocket.isSocket(p)) throw new IOException(p + " exists and is not a socket; remove it or choose another path");
        int rc = SocketIo.probeConnect(p);
        if (rc == 0 || rc == SocketIo.WOULD_BLOCK) throw new IOException(p + " is in use: another program listens on it");
        if (rc != -UnixSocket.ECONNREFUSED) throw new IOException("cannot use " + p + ": " + UnixSocket.describe(-rc));
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new IOException("cannot remove the stale socket " + p + ": " + e.getMessage(), e);
        }
    }

    private static void close(AutoCloseable s) {
        try {
            s.close();
        } catch (Exception ignored) {
            // a socket that never served anyone
        }
    }
}
