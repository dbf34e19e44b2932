package dev.jvmm.host.vhost;

import dev.jvmm.host.HelperProcess;
import dev.jvmm.host.ProcessAssertions;
import dev.jvmm.host.Virtiofsd;
import dev.jvmm.host.VirtiofsdSupport;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.memory.RamRange;
import dev.jvmm.sys.LibC;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The front end against the real virtiofsd: a whole session including one FUSE request through a
 * virtqueue whose rings live in memfd-backed guest memory, and a virtiofsd killed mid-session.
 * Under CI=true a missing virtiofsd (or not being root, which virtiofsd needs) fails the test.
 */
class VirtiofsdBackendTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(5);
    private static final long VERSION_1 = 1L << VhostUserProtocol.VIRTIO_F_VERSION_1;
    private static final long PROTOCOL_FEATURES = 1L << VhostUserProtocol.VHOST_USER_F_PROTOCOL_FEATURES;

    private static Virtiofsd.Binary virtiofsd;

    @BeforeAll
    static void findVirtiofsd() throws IOException {
        virtiofsd = VirtiofsdSupport.requireVirtiofsd();
        System.out.println("virtiofsd: " + virtiofsd);
    }

    // split-ring layout of queue 1 (the first request queue) in guest memory
    private static final int QUEUE = 1, QSIZE = 16;
    private static final long DESC = 0x10000, AVAIL = 0x11000, USED = 0x12000, REQUEST = 0x20000, RESPONSE = 0x21000;
    private static final int FUSE_INIT = 26, IN_HEADER = 40, INIT_IN = 64, OUT_HEADER = 16;
    private static final short VRING_DESC_F_NEXT = 1, VRING_DESC_F_WRITE = 2;

    /** FUSE_INIT as a two-descriptor chain (request readable, response writable), made available as head 0. */
    private static void queueFuseInit(GuestMemory mem, long unique) {
        MemorySegment req = mem.slice(REQUEST, IN_HEADER + INIT_IN);
        req.fill((byte) 0);
        req.set(JAVA_INT, 0, IN_HEADER + INIT_IN);   // len
        req.set(JAVA_INT, 4, FUSE_INIT);             // opcode
        req.set(JAVA_LONG, 8, unique);               // unique
        req.set(JAVA_INT, IN_HEADER, 7);             // major
        req.set(JAVA_INT, IN_HEADER + 4, 31);        // minor
        MemorySegment desc = mem.slice(DESC, 16L * QSIZE);
        desc.set(JAVA_LONG, 0, REQUEST);
        desc.set(JAVA_INT, 8, IN_HEADER + INIT_IN);
        desc.set(JAVA_SHORT, 12, VRING_DESC_F_NEXT);
        desc.set(JAVA_SHORT, 14, (short) 1);
        desc.set(JAVA_LONG, 16, RESPONSE);
        desc.set(JAVA_INT, 24, 4096);
        desc.set(JAVA_SHORT, 28, VRING_DESC_F_WRITE);
        MemorySegment avail = mem.slice(AVAIL, 4 + 2L * QSIZE + 2);
        avail.set(JAVA_SHORT, 4, (short) 0);         // ring[0] = head 0
        VarFence.release();
        avail.set(JAVA_SHORT, 2, (short) 1);         // idx = 1
    }

    /** Orders the ring writes before the index update another process reads. */
    private static final class VarFence {
        static void release() {
            java.lang.invoke.VarHandle.releaseFence();
        }
    }

    private static void signal(int eventfd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(JAVA_LONG);
            v.set(JAVA_LONG, 0, 1);
            assertEquals(8, LibC.write(eventfd, v, 8));
        }
    }

    /** Waits for the back end to signal {@code eventfd}; false on timeout. */
    private static boolean awaitSignal(int eventfd, int ms) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pfd = arena.allocate(LibC.POLLFD);
            pfd.set(JAVA_INT, 0, eventfd);
            pfd.set(JAVA_SHORT, 4, LibC.POLLIN);
            return LibC.poll(pfd, 1, ms) == 1;
        }
    }

    private static void drain(int eventfd) {
        try (Arena arena = Arena.ofConfined()) {
            LibC.read(eventfd, arena.allocate(JAVA_LONG), 8);
        }
    }

    private static String output(HelperProcess h) {
        return " (virtiofsd said: " + String.join(" | ", h.recentOutput(5)) + ")";
    }

    @Test
    void aWholeSessionWithOneFuseRequest(@TempDir Path shared) throws Exception {
        Files.writeString(shared.resolve("hello.txt"), "hello from the host\n");
        HelperProcess h = Virtiofsd.start(virtiofsd, shared, false, TIMEOUT);
        Path dir = h.directory();
        long pid = h.pid();
        int kick = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK), call = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        try (GuestMemory mem = GuestMemory.allocateShared(List.of(new RamRange(0, 16 << 20)));
             VhostUserFrontend fe = VhostUserFrontend.connect(Virtiofsd.socket(h), TIMEOUT)) {
            long features = fe.getFeatures();
            System.out.printf("virtiofsd features 0x%x%n", features);
            assertTrue(VhostUserProtocol.has(features, VhostUserProtocol.VIRTIO_F_VERSION_1), "VIRTIO_F_VERSION_1" + output(h));
            assertTrue(VhostUserProtocol.has(features, VhostUserProtocol.VHOST_USER_F_PROTOCOL_FEATURES), "PROTOCOL_FEATURES");
            fe.setOwner();
            long protocol = fe.getProtocolFeatures();
            System.out.printf("virtiofsd protocol features 0x%x%n", protocol);
            fe.setProtocolFeatures(protocol & VhostUserProtocol.SUPPORTED_PROTOCOL_FEATURES);
            fe.setFeatures(VERSION_1 | PROTOCOL_FEATURES);
            fe.setMemTable(mem);
            if (VhostUserProtocol.has(fe.protocolFeatures(), VhostUserProtocol.PROTOCOL_F_MQ)) {
                System.out.println("virtiofsd queues: " + fe.getQueueNum());
            }

            queueFuseInit(mem, 0x1234);
            fe.startQueue(QUEUE, QSIZE, mem.slice(DESC, 16L * QSIZE).address(), mem.slice(AVAIL, 4 + 2L * QSIZE).address(),
                    mem.slice(USED, 4 + 8L * QSIZE).address(), kick, call, -1);
            signal(kick);
            // libvhost-user signals a call eventfd once as soon as it is set ("in case of I/O hang after
            // reconnecting"), so a signal alone proves nothing: wait for the used index to move
            MemorySegment used = mem.slice(USED, 4 + 8L * QSIZE);
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (used.get(JAVA_SHORT, 2) == 0 && System.nanoTime() < deadline) {
                if (awaitSignal(call, 100)) drain(call);
            }
            assertEquals(1, Short.toUnsignedInt(used.get(JAVA_SHORT, 2)), "used idx" + output(h));
            assertEquals(0, used.get(JAVA_INT, 4), "used element: head 0");
            int written = used.get(JAVA_INT, 8);
            MemorySegment resp = mem.slice(RESPONSE, 4096);
            assertTrue(written >= OUT_HEADER + 8 && written == resp.get(JAVA_INT, 0), "response length " + written);
            assertEquals(0, resp.get(JAVA_INT, 4), "FUSE_INIT error");
            assertEquals(0x1234, resp.get(JAVA_LONG, 8), "unique");
            assertEquals(7, resp.get(JAVA_INT, OUT_HEADER), "FUSE major version");

            assertEquals(1, fe.stopQueue(QUEUE), "the back end took one buffer, so it resumes at avail index 1");
        } finally {
            LibC.close(kick);
            LibC.close(call);
            h.close();
        }
        assertFalse(h.isAlive());
        assertTrue(ProcessAssertions.dead(pid), "virtiofsd pid " + pid + " is gone");
        assertFalse(Files.exists(dir), "its private directory is removed");
        assertTrue(Files.exists(shared.resolve("hello.txt")), "the shared directory is untouched");
    }

    @Test
    void aVirtiofsdKilledMidSessionFailsTheNextRequestQuickly(@TempDir Path shared) throws Exception {
        HelperProcess h = Virtiofsd.start(virtiofsd, shared, false, TIMEOUT);
        try (GuestMemory mem = GuestMemory.allocateShared(List.of(new RamRange(0, 2 << 20)));
             VhostUserFrontend fe = VhostUserFrontend.connect(Virtiofsd.socket(h), TIMEOUT)) {
            fe.negotiate(VERSION_1);
            fe.setMemTable(mem);
            List<ProcessHandle> all = new java.util.ArrayList<>(ProcessHandle.of(h.pid()).orElseThrow().descendants().toList());
            all.add(ProcessHandle.of(h.pid()).orElseThrow());
            // kill -9 of the pid jvmm knows; the C virtiofsd's sandboxed child (a new pid namespace) follows it
            // by its own parent-death signal, and with it goes the connection
            ProcessHandle.of(h.pid()).orElseThrow().destroyForcibly();
            for (ProcessHandle p : all) ProcessAssertions.awaitDead(p.pid(), 2000);

            long t0 = System.nanoTime();
            VhostUserException e = assertThrows(VhostUserException.class, () -> fe.setVringNum(0, 16));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            System.out.println("after kill -9: " + e.getMessage() + " (" + ms + " ms)");
            assertEquals(VhostUserException.Kind.CLOSED, e.kind(), e.getMessage());
            assertTrue(ms < 1000, "failed at once, not after the " + TIMEOUT.toSeconds() + " s timeout: " + ms + " ms");
            assertFalse(e.getMessage().contains("\n"));
            assertTrue(e.getMessage().startsWith("vhost-user back end " + Virtiofsd.socket(h) + ": "), e.getMessage());
        } finally {
            h.close();
        }
        assertFalse(Files.exists(h.directory()));
    }

    private static void signalAll(List<ProcessHandle> processes, String signal) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("kill", "-" + signal));
        for (ProcessHandle p : processes) cmd.add(Long.toString(p.pid()));
        assertEquals(0, new ProcessBuilder(cmd).inheritIO().start().waitFor());
    }

    @Test
    void aStoppedVirtiofsdEndsInATimeoutNotAHang(@TempDir Path shared) throws Exception {
        HelperProcess h = Virtiofsd.start(virtiofsd, shared, false, TIMEOUT);
        List<ProcessHandle> all = List.of();
        try (VhostUserFrontend fe = VhostUserFrontend.connect(Virtiofsd.socket(h), Duration.ofMillis(1000))) {
            fe.getFeatures();
            all = new java.util.ArrayList<>(ProcessHandle.of(h.pid()).orElseThrow().descendants().toList());
            all.add(ProcessHandle.of(h.pid()).orElseThrow());
            signalAll(all, "STOP");
            long t0 = System.nanoTime();
            VhostUserException e = assertThrows(VhostUserException.class, fe::getFeatures);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(VhostUserException.Kind.TIMEOUT, e.kind());
            assertEquals("vhost-user back end " + Virtiofsd.socket(h) + ": no reply to GET_FEATURES within 1 s", e.getMessage());
            assertTrue(ms >= 990 && ms < 3000, ms + " ms");
        } finally {
            if (!all.isEmpty()) signalAll(all, "CONT");
            h.close();
        }
    }

    @Test
    void theQemuVirtiofsdCannotShareReadOnlyAndSaysSo(@TempDir Path shared) {
        Assumptions.assumeTrue(virtiofsd.flavor() == Virtiofsd.Flavor.QEMU_C, "only the C virtiofsd lacks a read-only option");
        HelperProcess.HelperException e = assertThrows(HelperProcess.HelperException.class,
                () -> Virtiofsd.start(virtiofsd, shared, true, TIMEOUT));
        assertTrue(e.getMessage().contains("cannot share a directory read-only"), e.getMessage());
    }

    @Test
    void aVirtiofsdThatCannotStartReportsItsOwnError(@TempDir Path shared) throws Exception {
        // a shared directory that vanishes after the check: virtiofsd itself must complain
        Path gone = shared.resolve("gone");
        Files.createDirectory(gone);
        List<String> cmd = Virtiofsd.command(virtiofsd, gone, false, Path.of("unused.sock"));
        Files.delete(gone);
        try (HelperProcess h = HelperProcess.start("virtiofsd", d -> {
            try {
                return Virtiofsd.command(virtiofsd, gone, false, d.resolve("v.sock"));
            } catch (HelperProcess.HelperException e) {
                throw new IllegalStateException(e);
            }
        })) {
            HelperProcess.HelperException e = assertThrows(HelperProcess.HelperException.class,
                    () -> h.awaitSocket(h.directory().resolve("v.sock"), TIMEOUT));
            System.out.println("virtiofsd on a missing directory: " + e.getMessage() + " (command " + cmd + ")");
            assertTrue(e.getMessage().startsWith("virtiofsd exited with status"), e.getMessage());
            assertTrue(e.getMessage().contains("its last output: "), e.getMessage());
        }
    }
}
