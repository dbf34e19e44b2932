package dev.jvmm.sys;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class UnixSocketTest {

    private static long soon() {
        return System.nanoTime() + 2_000_000_000L;
    }

    private static int openFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return (int) s.count();
        }
    }

    @Test
    void anEventfdSentOverASocketpairIsTheSameEventfd() throws Exception {
        UnixSocket[] p = UnixSocket.pair();
        int efd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        assertTrue(efd >= 0);
        try (UnixSocket a = p[0]; UnixSocket b = p[1]; Arena arena = Arena.ofConfined()) {
            a.sendAll("k".getBytes(StandardCharsets.US_ASCII), new int[] {efd}, soon());
            UnixSocket.Message m = b.receiveExactly(1, 4, soon());
            assertEquals("k", new String(m.bytes(), StandardCharsets.US_ASCII));
            assertEquals(1, m.fds().length);
            int received = m.fds()[0];
            assertNotEquals(efd, received, "the receiver gets a new descriptor number");

            MemorySegment v = arena.allocate(JAVA_LONG);
            v.set(JAVA_LONG, 0, 41);
            assertEquals(8, LibC.write(received, v, 8));
            v.set(JAVA_LONG, 0, 0);
            assertEquals(8, LibC.read(efd, v, 8), "the count written through the received fd is read through the original");
            assertEquals(41, v.get(JAVA_LONG, 0));
            LibC.close(received);
        } finally {
            LibC.close(efd);
        }
    }

    @Test
    void aMemfdSentOverASocketpairSharesItsPages() throws Exception {
        UnixSocket[] p = UnixSocket.pair();
        int mfd = Memfd.create("unix-socket-test");
        Memfd.truncate(mfd, 4096);
        try (UnixSocket a = p[0]; UnixSocket b = p[1]; Arena arena = Arena.ofConfined()) {
            a.sendAll(new byte[] {1, 2, 3}, new int[] {mfd}, soon());
            UnixSocket.Message m = b.receiveExactly(3, 1, soon());
            assertArrayEquals(new byte[] {1, 2, 3}, m.bytes());
            int received = m.fds()[0];
            byte[] text = "through the received memfd".getBytes(StandardCharsets.US_ASCII);
            MemorySegment buf = arena.allocate(text.length);
            MemorySegment.copy(text, 0, buf, JAVA_BYTE, 0, text.length);
            assertEquals(text.length, LibC.write(received, buf, text.length));

            MemorySegment map = LibC.mmap(MemorySegment.NULL, 4096, LibC.PROT_READ, LibC.MAP_SHARED, mfd, 0);
            assertNotEquals(LibC.MAP_FAILED.address(), map.address());
            byte[] back = new byte[text.length];
            MemorySegment.copy(map.reinterpret(4096), JAVA_BYTE, 0, back, 0, back.length);
            assertEquals("through the received memfd", new String(back, StandardCharsets.US_ASCII));
            LibC.munmap(map, 4096);
            LibC.close(received);
        } finally {
            LibC.close(mfd);
        }
    }

    @Test
    void descriptorsBeyondWhatTheReceiverExpectsAreClosed() throws Exception {
        UnixSocket[] p = UnixSocket.pair();
        int[] sent = new int[3];
        for (int i = 0; i < 3; i++) sent[i] = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        try (UnixSocket a = p[0]; UnixSocket b = p[1]) {
            int before = openFds();
            a.sendAll(new byte[] {7}, sent, soon());
            UnixSocket.Message m = b.receiveExactly(1, 1, soon());
            assertEquals(1, m.fds().length);
            assertEquals(2, m.closedExtras());
            assertEquals(before + 1, openFds(), "only the one descriptor asked for stays open");
            LibC.close(m.fds()[0]);

            // none expected at all: every one is closed
            a.sendAll(new byte[] {8}, sent, soon());
            m = b.receiveExactly(1, 0, soon());
            assertEquals(0, m.fds().length);
            assertEquals(3, m.closedExtras());
            assertEquals(before, openFds());
        } finally {
            for (int f : sent) LibC.close(f);
        }
    }

    @Test
    void aSocketPathThatDoesNotFitSockaddrUnIsRefusedWithItsLength(@TempDir Path dir) throws Exception {
        String base = dir.toString() + "/";
        Path fits = Path.of(base + "s".repeat(UnixSocket.SUN_PATH_BYTES - 1 - base.length()));
        Path tooLong = Path.of(fits + "x");
        assertEquals(108, tooLong.toString().length());

        UnixSocketException e = assertThrows(UnixSocketException.class, () -> UnixSocket.listen(tooLong, 1));
        assertTrue(e.getMessage().contains("108 bytes long; at most 107"), e.getMessage());
        e = assertThrows(UnixSocketException.class, () -> UnixSocket.connect(tooLong, 100));
        assertTrue(e.getMessage().contains("108 bytes long"), e.getMessage());

        try (UnixSocket server = UnixSocket.listen(fits, 1)) {
            assertTrue(server.fd() >= 0 && Files.exists(fits), "107 bytes and the NUL fit");
        }
    }

    @Test
    void listenConnectAcceptAndTalk(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("s.sock");
        try (UnixSocket server = UnixSocket.listen(path, 1);
             UnixSocket client = UnixSocket.connect(path, 1000);
             UnixSocket conn = server.accept(1000)) {
            client.sendAll("ping".getBytes(StandardCharsets.US_ASCII), new int[0], soon());
            assertEquals("ping", new String(conn.receiveExactly(4, 0, soon()).bytes(), StandardCharsets.US_ASCII));
            conn.sendAll("pong".getBytes(StandardCharsets.US_ASCII), new int[0], soon());
            assertEquals("pong", new String(client.receiveExactly(4, 0, soon()).bytes(), StandardCharsets.US_ASCII));
        }
    }

    @Test
    void connectingToNothingGivesUpAtTheDeadline(@TempDir Path dir) {
        long t0 = System.nanoTime();
        UnixSocketException e = assertThrows(UnixSocketException.class, () -> UnixSocket.connect(dir.resolve("none.sock"), 200));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(UnixSocketException.Reason.TIMED_OUT, e.reason());
        assertTrue(ms >= 190 && ms < 2000, ms + " ms");
        assertTrue(e.getMessage().contains("ENOENT"), e.getMessage());
    }

    @Test
    void aSilentPeerTimesOutAndAClosedOneIsReportedAsClosed() throws Exception {
        UnixSocket[] p = UnixSocket.pair();
        UnixSocket a = p[0];
        try (UnixSocket b = p[1]) {
            b.setNonBlocking(true);
            assertEquals(-1, b.receive(Arena.ofAuto().allocate(8), 8, 0).bytes(), "non-blocking: nothing there yet");

            long t0 = System.nanoTime();
            UnixSocketException e = assertThrows(UnixSocketException.class, () -> b.receiveExactly(4, 0, System.nanoTime() + 200_000_000L));
            assertEquals(UnixSocketException.Reason.TIMED_OUT, e.reason());
            assertTrue((System.nanoTime() - t0) / 1_000_000 < 2000);

            a.sendAll(new byte[] {1, 2}, new int[0], soon());
            a.close();
            e = assertThrows(UnixSocketException.class, () -> b.receiveExactly(4, 0, soon()));
            assertEquals(UnixSocketException.Reason.PEER_CLOSED, e.reason());
            assertTrue(e.getMessage().contains("after 2 of 4 bytes"), e.getMessage());

            e = assertThrows(UnixSocketException.class, () -> b.sendAll(new byte[] {1}, new int[0], soon()));
            assertEquals(UnixSocketException.Reason.PEER_CLOSED, e.reason());
            assertTrue(e.getMessage().contains("EPIPE"), e.getMessage());
        } finally {
            a.close();
        }
    }
}
