package dev.jvmm.host.vhost;

import dev.jvmm.device.virtio.TestDriver;
import dev.jvmm.device.virtio.VirtioAttachment;
import dev.jvmm.device.virtio.VirtioFs;
import dev.jvmm.host.HelperProcess;
import dev.jvmm.host.ProcessAssertions;
import dev.jvmm.host.Virtiofsd;
import dev.jvmm.host.VirtiofsdSupport;
import dev.jvmm.host.VirtiofsdShare;
import dev.jvmm.sys.LibC;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.jvmm.device.virtio.TestDriver.Buf;
import static dev.jvmm.device.virtio.VirtioMmioTransport.*;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The virtio-fs device wired to a real virtiofsd over memfd guest memory, with the test driver as the
 * guest's driver: FUSE requests go through the request queue's ring and come back on the irqfd, as a
 * guest's would. Under CI=true a missing virtiofsd (or not being root) fails instead of skipping.
 */
class VirtiofsDeviceTest extends AttachedDeviceTest {
    private static final long VERSION_1 = 1L << VhostUserProtocol.VIRTIO_F_VERSION_1;
    private static final int REQUEST_QUEUE = 1;
    private static final byte[] CONTENT = "bytes from the host, shared through virtiofsd\n".getBytes(StandardCharsets.UTF_8);

    // FUSE opcodes and sizes (include/uapi/linux/fuse.h, protocol 7.31)
    private static final int FUSE_LOOKUP = 1, FUSE_OPEN = 14, FUSE_READ = 15, FUSE_WRITE = 16, FUSE_INIT = 26, FUSE_CREATE = 35;
    private static final int IN_HEADER = 40, OUT_HEADER = 16, ENTRY_OUT = 128, ROOT = 1;
    private static final int O_WRONLY = 1, O_CREAT = 0100, EROFS = 30;

    private static Virtiofsd.Binary virtiofsd;

    @BeforeAll
    static void findVirtiofsd() {
        virtiofsd = VirtiofsdSupport.requireVirtiofsd();
    }

    private HelperProcess helper;
    private VhostUserDevice device;
    private int irqfd;
    private long unique = 1;

    @AfterEach
    void tearDown() {
        if (device != null) device.close();
        if (helper != null) helper.close();
    }

    /** virtiofsd sharing {@code dir}, a device on it attached as VirtioMmioDevices would, and a driver that set it up. */
    private TestDriver share(Path dir, boolean readOnly) throws IOException {
        helper = VirtiofsdShare.start(virtiofsd, dir, readOnly, VirtiofsdShare.START_TIMEOUT);
        HelperProcess h = helper;
        device = VhostUserDevice.virtioFs("shared", VhostUserFrontend.connect(Virtiofsd.socket(h), Duration.ofSeconds(5)),
                VhostUserDevice.BackEndProcess.of(h));
        System.out.printf("virtiofsd %s offers 0x%x; the guest is offered 0x%x%n", virtiofsd.version(), device.backEndFeatures(),
                device.deviceFeatures());
        irqfd = eventfd();
        device.attach(new VirtioAttachment(loop, new int[] {eventfd(), eventfd()}, q -> { }, q -> { }, failures::add, irqfd, mem));
        TestDriver d = new TestDriver(device, mem).init(VERSION_1, VirtioFs.QUEUE_SIZE);
        assertEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET, d.t.lastError());
        assertEquals(List.of(), failures);
        return d;
    }

    private static String said(HelperProcess h) {
        return " (virtiofsd said: " + String.join(" | ", h.recentOutput(5)) + ")";
    }

    /** One FUSE request on the request queue; returns the reply (out header first), after checking its header. */
    private ByteBuffer fuse(TestDriver d, int opcode, long nodeid, byte[] body) {
        long id = unique++;
        ByteBuffer req = ByteBuffer.allocate(IN_HEADER + body.length).order(ByteOrder.LITTLE_ENDIAN);
        req.putInt(IN_HEADER + body.length).putInt(opcode).putLong(id).putLong(nodeid);
        req.putInt(0).putInt(0).putInt(1).putInt(0); // uid, gid, pid, padding
        req.put(body);
        long in = d.put(req.array());
        int replyBytes = 64 * 1024;
        long out = d.alloc(replyBytes);
        int before = d.usedIdx(REQUEST_QUEUE);
        d.submit(REQUEST_QUEUE, Buf.r(in, req.capacity()), Buf.w(out, replyBytes));
        d.kick(REQUEST_QUEUE); // a QueueNotify write: the device passes it to virtiofsd's kick eventfd
        long deadline = System.nanoTime() + 5_000_000_000L;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pfd = arena.allocate(LibC.POLLFD);
            pfd.set(JAVA_INT, 0, irqfd);
            pfd.set(JAVA_SHORT, 4, LibC.POLLIN);
            while (d.usedIdx(REQUEST_QUEUE) == before && System.nanoTime() < deadline) {
                if (LibC.poll(pfd, 1, 100) == 1) LibC.read(irqfd, arena.allocate(JAVA_LONG), 8);
            }
        }
        assertEquals(before + 1, d.usedIdx(REQUEST_QUEUE), "virtiofsd completed the request" + said(helper));
        assertEquals(INT_USED_BUFFER, d.r(INTERRUPT_STATUS) & INT_USED_BUFFER);
        int written = d.usedLen(REQUEST_QUEUE, before);
        ByteBuffer reply = ByteBuffer.wrap(d.mem.read(out, written)).order(ByteOrder.LITTLE_ENDIAN);
        assertTrue(written >= OUT_HEADER, "reply of " + written + " bytes");
        assertEquals(written, reply.getInt(0), "out header length");
        assertEquals(id, reply.getLong(8), "unique");
        return reply;
    }

    private static int error(ByteBuffer reply) {
        return reply.getInt(4);
    }

    private void init(TestDriver d) {
        byte[] body = new byte[64];
        ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN).putInt(7).putInt(31);
        ByteBuffer r = fuse(d, FUSE_INIT, 0, body);
        assertEquals(0, error(r), "FUSE_INIT");
        assertEquals(7, r.getInt(OUT_HEADER), "major");
    }

    private static byte[] name(String n) {
        return (n + "\0").getBytes(StandardCharsets.UTF_8);
    }

    /** FUSE_LOOKUP in the root: node id and size. */
    private long[] lookup(TestDriver d, String file) {
        ByteBuffer r = fuse(d, FUSE_LOOKUP, ROOT, name(file));
        assertEquals(0, error(r), "FUSE_LOOKUP " + file);
        return new long[] {r.getLong(OUT_HEADER), r.getLong(OUT_HEADER + 40 + 8)};
    }

    /** FUSE_OPEN: the file handle, or the negative errno. */
    private long open(TestDriver d, long node, int flags) {
        byte[] body = new byte[8];
        ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN).putInt(flags);
        ByteBuffer r = fuse(d, FUSE_OPEN, node, body);
        return error(r) != 0 ? error(r) : r.getLong(OUT_HEADER);
    }

    private byte[] read(TestDriver d, long node, long fh, int size) {
        byte[] body = new byte[40];
        ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN).putLong(fh).putLong(0).putInt(size);
        ByteBuffer r = fuse(d, FUSE_READ, node, body);
        assertEquals(0, error(r), "FUSE_READ");
        return Arrays.copyOfRange(r.array(), OUT_HEADER, r.getInt(0));
    }

    /** FUSE_CREATE in the root: {node, fh}, or {negative errno}. */
    private long[] create(TestDriver d, String file) {
        byte[] n = name(file);
        ByteBuffer body = ByteBuffer.allocate(16 + n.length).order(ByteOrder.LITTLE_ENDIAN);
        body.putInt(O_WRONLY | O_CREAT).putInt(0100644).putInt(0).putInt(0).put(n);
        ByteBuffer r = fuse(d, FUSE_CREATE, ROOT, body.array());
        if (error(r) != 0) return new long[] {error(r)};
        return new long[] {r.getLong(OUT_HEADER), r.getLong(OUT_HEADER + ENTRY_OUT)};
    }

    private int write(TestDriver d, long node, long fh, byte[] data) {
        ByteBuffer body = ByteBuffer.allocate(40 + data.length).order(ByteOrder.LITTLE_ENDIAN);
        body.putLong(fh).putLong(0).putInt(data.length).putInt(0).putLong(0).putInt(0).putInt(0).put(data);
        ByteBuffer r = fuse(d, FUSE_WRITE, node, body.array());
        return error(r) != 0 ? error(r) : r.getInt(OUT_HEADER);
    }

    @Test
    void theGuestDriverReadsAFileThroughTheRingsAndGetsInterruptsOnTheIrqfd(@TempDir Path shared) throws Exception {
        Files.write(shared.resolve("hello.txt"), CONTENT);
        TestDriver d = share(shared, false);
        init(d);
        long[] entry = lookup(d, "hello.txt");
        assertEquals(CONTENT.length, entry[1], "size in the attributes");
        long fh = open(d, entry[0], 0);
        assertTrue(fh >= 0, "FUSE_OPEN: " + fh);
        assertArrayEquals(CONTENT, read(d, entry[0], fh, 4096));
        assertEquals(-2, error(fuse(d, FUSE_LOOKUP, ROOT, name("missing"))), "ENOENT for a file that is not there");

        // writable: the positive control for the read-only test
        long[] created = create(d, "from-guest.txt");
        assertEquals(2, created.length, "FUSE_CREATE: " + created[0]);
        assertEquals(5, write(d, created[0], created[1], "hello".getBytes(StandardCharsets.UTF_8)));
        assertEquals("hello", Files.readString(shared.resolve("from-guest.txt")));

        // a driver that resets the device and starts over (a new FUSE session) is served again
        d.w(STATUS, 0);
        d.init(VERSION_1, 256);
        unique = 1000;
        init(d);
        assertEquals(CONTENT.length, lookup(d, "hello.txt")[1]);
        assertEquals(List.of(), failures);
        Path dir = helper.directory();
        long pid = helper.pid();
        System.out.println("stats: " + device.counters());
        device.close();
        device = null;
        assertTrue(ProcessAssertions.dead(pid), "virtiofsd is gone");
        assertFalse(Files.exists(dir), "its private directory is removed");
    }

    @Test
    void aReadOnlyShareRefusesWritesWithErofs(@TempDir Path shared) throws Exception {
        Files.write(shared.resolve("hello.txt"), CONTENT);
        TestDriver d = share(shared, true);
        System.out.println("read-only virtiofsd: " + helper.command());
        init(d);
        long[] entry = lookup(d, "hello.txt");
        assertEquals(-EROFS, open(d, entry[0], O_WRONLY), "opening for writing");
        assertArrayEquals(new long[] {-EROFS}, create(d, "new.txt"), "creating a file");
        long fh = open(d, entry[0], 0);
        assertTrue(fh >= 0, "reading still works: " + fh);
        assertArrayEquals(CONTENT, read(d, entry[0], fh, 4096));
        assertArrayEquals(CONTENT, Files.readAllBytes(shared.resolve("hello.txt")));
        assertFalse(Files.exists(shared.resolve("new.txt")));
        // the read-only mount lived in virtiofsd's own mount namespace only
        assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(shared.toRealPath().toString()),
                "no trace of the bind mount in jvmm's namespace");
        Files.writeString(shared.resolve("host-can-write.txt"), "yes");
    }

    @Test
    void aVirtiofsdKilledMidRunEndsTheRunWithItsOwnStory(@TempDir Path shared) throws Exception {
        TestDriver d = share(shared, false);
        init(d);
        long pid = helper.pid();
        List<ProcessHandle> all = new ArrayList<>(ProcessHandle.of(pid).orElseThrow().descendants().toList());
        all.add(ProcessHandle.of(pid).orElseThrow());
        ProcessHandle.of(pid).orElseThrow().destroyForcibly();
        for (ProcessHandle p : all) ProcessAssertions.awaitDead(p.pid(), 2000);
        long deadline = System.nanoTime() + 2_000_000_000L;
        while (failures.isEmpty() && System.nanoTime() < deadline) loop.runOnce(100);
        assertEquals(1, failures.size(), "the event loop saw the hang-up");
        String line = failures.get(0);
        System.out.println("after kill -9: " + line);
        assertTrue(line.startsWith("vhost-user back end " + Virtiofsd.socket(helper) + ": hung up (virtiofsd was killed by signal 9; "), line);
        assertFalse(line.contains("\n"));
        long t0 = System.nanoTime();
        d.w(STATUS, 0); // the guest resets: nothing to stop any more, and no wait for it
        device.close();
        device = null;
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 1000);
        assertEquals(1, failures.size(), "one line, not one per queue");
    }
}
