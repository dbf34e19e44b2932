package dev.jvmm.sys;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SocketFilesTest {

    @Test
    void theSocketAppearsAtItsPathOnlyOnceItListensAndIsOwnerOnly(@TempDir Path dir) throws Exception {
        Path p = dir.resolve("api.sock");
        try (UnixSocket s = SocketFiles.listen(p, at -> {
            assertFalse(Files.exists(p), "nothing at the path while the socket is being bound");
            assertTrue(Files.isDirectory(at.getParent()) && !at.getParent().equals(dir), "bound in a private directory: " + at);
            return UnixSocket.listen(at, 4);
        })) {
            assertTrue(UnixSocket.isSocket(p));
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(p)));
            try (UnixSocket c = UnixSocket.connect(p, 0)) {
                assertTrue(c.fd() >= 0, "a connection at once");
            }
            try (var list = Files.list(dir)) {
                assertEquals(List.of(p), list.toList(), "the private directory is gone");
            }
        }
    }

    @Test
    void aFileThatAppearedMeanwhileIsNeverReplaced(@TempDir Path dir) throws IOException {
        Path p = dir.resolve("s");
        IOException e = assertThrows(IOException.class, () -> SocketFiles.listen(p, at -> {
            Files.writeString(p, "someone's");
            return UnixSocket.listen(at, 1);
        }));
        assertTrue(e.getMessage().contains("appeared"), e.getMessage());
        assertEquals("someone's", Files.readString(p));
        try (var list = Files.list(dir)) {
            assertEquals(List.of(p), list.toList());
        }
    }

    @Test
    void aPathTooLongForTheDetourIsBoundInPlace(@TempDir Path dir) throws Exception {
        Path deep = dir;
        while (deep.toString().length() < 95) deep = deep.resolve("d");
        Files.createDirectories(deep);
        Path p = deep.resolve("x".repeat(106 - deep.toString().length()));
        assertTrue(p.toString().length() < UnixSocket.SUN_PATH_BYTES);
        try (UnixSocket s = SocketFiles.listen(p, at -> {
            assertEquals(p, at);
            return UnixSocket.listen(at, 1);
        })) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(p)));
        }
    }
}
