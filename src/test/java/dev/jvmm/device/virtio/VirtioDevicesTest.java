package dev.jvmm.device.virtio;

import dev.jvmm.device.CollectingSink;
import dev.jvmm.device.virtio.TestDriver.Buf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static dev.jvmm.device.virtio.VirtioBlock.*;
import static dev.jvmm.device.virtio.VirtioMmioTransport.*;
import static org.junit.jupiter.api.Assertions.*;

class VirtioDevicesTest {
    @TempDir
    Path dir;

    Path image(int sectors) throws IOException {
        byte[] b = new byte[sectors * SECTOR];
        new Random(1).nextBytes(b);
        Path p = dir.resolve("disk.img");
        Files.write(p, b);
        return p;
    }

    static byte[] header(int type, long sector) {
        return ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(type).putInt(0).putLong(sector).array();
    }

    /** Submits a block request and returns {status, usedLen}. */
    static int[] blk(TestDriver d, byte[] hdr, byte[] out, int inLen, boolean indirect, long[] inAddr) {
        long h = d.put(hdr);
        long status = d.alloc(1);
        d.mem.write(status, new byte[] {(byte) 0xee});
        java.util.List<Buf> bufs = new java.util.ArrayList<>();
        bufs.add(Buf.r(h, hdr.length));
        if (out != null) bufs.add(Buf.r(d.put(out), out.length));
        if (inLen > 0) {
            inAddr[0] = d.alloc(inLen);
            bufs.add(Buf.w(inAddr[0], inLen));
        }
        bufs.add(Buf.w(status, 1));
        int head = indirect ? d.indirectChain(0, bufs.toArray(Buf[]::new)) : d.chain(0, bufs.toArray(Buf[]::new));
        d.publish(0, head);
        int before = d.usedIdx(0);
        d.kick(0);
        assertEquals(before + 1, d.usedIdx(0));
        assertEquals(head, d.usedId(0, before));
        return new int[] {d.mem.read(status, 1)[0], d.usedLen(0, before)};
    }

    static int[] blk(TestDriver d, byte[] hdr, byte[] out, int inLen) {
        return blk(d, hdr, out, inLen, false, new long[1]);
    }

    @Test
    void blockConfigAndFeatures() throws Exception {
        try (VirtioBlock b = new VirtioBlock(image(64), false, "disk0")) {
            TestDriver d = new TestDriver(b);
            assertEquals(2, d.r(VirtioMmioTransport.DEVICE_ID));
            assertEquals(64, d.t.read(CONFIG, 8));
            assertEquals(QUEUE_SIZE - 2, d.t.read(CONFIG + 12, 4));
            assertEquals(512, d.t.read(CONFIG + 20, 4));
            d.w(DEVICE_FEATURES_SEL, 0);
            int f = d.r(DEVICE_FEATURES);
            assertNotEquals(0, f & (1 << F_FLUSH));
            assertNotEquals(0, f & (1 << F_WRITE_ZEROES));
            assertEquals(0, f & (1 << F_RO));
        }
    }

    @Test
    void blockReadWriteFlushGetId() throws Exception {
        Path img = image(64);
        byte[] original = Files.readAllBytes(img);
        try (VirtioBlock b = new VirtioBlock(img, false, "serial-123")) {
            TestDriver d = new TestDriver(b).init((1L << F_VERSION_1) | (1L << SplitVirtqueue.F_INDIRECT_DESC), 64);
            long[] at = new long[1];
            int[] r = blk(d, header(T_IN, 3), null, 1024, false, at);
            assertArrayEquals(new int[] {S_OK, 1025}, r);
            assertArrayEquals(Arrays.copyOfRange(original, 3 * 512, 5 * 512), d.mem.read(at[0], 1024));

            byte[] data = new byte[1536];
            new Random(7).nextBytes(data);
            assertArrayEquals(new int[] {S_OK, 1}, blk(d, header(T_OUT, 10), data, 0));
            r = blk(d, header(T_IN, 10), null, 1536, true, at);
            assertEquals(S_OK, r[0]);
            assertArrayEquals(data, d.mem.read(at[0], 1536));
            assertArrayEquals(new int[] {S_OK, 1}, blk(d, header(T_FLUSH, 0), null, 0));
            assertArrayEquals(data, Arrays.copyOfRange(Files.readAllBytes(img), 10 * 512, 10 * 512 + 1536));

            r = blk(d, header(T_GET_ID, 0), null, 20, false, at);
            assertArrayEquals(new int[] {S_OK, 21}, r);
            assertEquals("serial-123", new String(d.mem.read(at[0], 10)));
            assertEquals(0, d.mem.read(at[0] + 10, 1)[0]);

            assertEquals(S_UNSUPP, blk(d, header(99, 0), null, 0)[0]);
            assertEquals(6L, b.counters().get("requests"));
            assertEquals(1024L + 1536 + 1536, b.counters().get("bytes"));
            assertEquals(1L, b.counters().get("errors"));
            assertEquals(6L, b.counters().get("notifications"));
        }
    }

    @Test
    void blockRangeAndLengthChecks() throws Exception {
        try (VirtioBlock b = new VirtioBlock(image(16), false, "x")) {
            TestDriver d = new TestDriver(b).init();
            assertEquals(S_OK, blk(d, header(T_IN, 15), null, 512)[0]);
            assertEquals(S_IOERR, blk(d, header(T_IN, 15), null, 1024)[0]);
            assertEquals(S_IOERR, blk(d, header(T_IN, 16), null, 512)[0]);
            assertEquals(S_IOERR, blk(d, header(T_IN, -1L), null, 512)[0]);
            assertEquals(S_IOERR, blk(d, header(T_IN, Long.MAX_VALUE / 256), null, 512)[0]);
            assertEquals(S_IOERR, blk(d, header(T_IN, 0), null, 100)[0], "not a multiple of 512");
            assertEquals(S_IOERR, blk(d, header(T_OUT, 16), new byte[512], 0)[0]);
            assertEquals(S_IOERR, blk(d, header(T_OUT, 0), new byte[513], 0)[0]);
            assertEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET);
            // no status byte: completed with 0 bytes, counted as an error, queue still fine
            d.publish(0, d.chain(0, Buf.r(d.put(header(T_IN, 0)), 16)));
            d.kick(0);
            assertEquals(0, d.usedLen(0, d.usedIdx(0) - 1));
            assertEquals(S_OK, blk(d, header(T_FLUSH, 0), null, 0)[0]);
        }
    }

    @Test
    void blockWriteZeroesAndDiscard() throws Exception {
        Path img = image(32);
        try (VirtioBlock b = new VirtioBlock(img, false, "x")) {
            TestDriver d = new TestDriver(b).init();
            byte[] seg = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(4).putInt(3).putInt(0).array();
            byte[] before = Files.readAllBytes(img);
            assertEquals(S_OK, blk(d, header(T_DISCARD, 0), seg, 0)[0]);
            assertArrayEquals(before, Files.readAllBytes(img), "discard leaves data alone");
            assertEquals(S_OK, blk(d, header(T_WRITE_ZEROES, 0), seg, 0)[0]);
            byte[] after = Files.readAllBytes(img);
            assertArrayEquals(new byte[3 * 512], Arrays.copyOfRange(after, 4 * 512, 7 * 512));
            assertArrayEquals(Arrays.copyOfRange(before, 0, 4 * 512), Arrays.copyOfRange(after, 0, 4 * 512));
            assertArrayEquals(Arrays.copyOfRange(before, 7 * 512, 32 * 512), Arrays.copyOfRange(after, 7 * 512, 32 * 512));
            byte[] unmap = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(0).putInt(1).putInt(1).array();
            assertEquals(S_OK, blk(d, header(T_WRITE_ZEROES, 0), unmap, 0)[0]);
            assertEquals(S_UNSUPP, blk(d, header(T_DISCARD, 0), unmap, 0)[0]);
            byte[] past = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(30).putInt(3).putInt(0).array();
            assertEquals(S_IOERR, blk(d, header(T_WRITE_ZEROES, 0), past, 0)[0]);
        }
    }

    @Test
    void blockReadOnly() throws Exception {
        Path img = image(8);
        byte[] before = Files.readAllBytes(img);
        try (VirtioBlock b = new VirtioBlock(img, true, "ro")) {
            TestDriver d = new TestDriver(b).init();
            d.w(DEVICE_FEATURES_SEL, 0);
            assertNotEquals(0, d.r(DEVICE_FEATURES) & (1 << F_RO));
            assertEquals(S_IOERR, blk(d, header(T_OUT, 0), new byte[512], 0)[0]);
            byte[] seg = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(0).putInt(1).putInt(0).array();
            assertEquals(S_IOERR, blk(d, header(T_WRITE_ZEROES, 0), seg, 0)[0]);
            assertEquals(S_OK, blk(d, header(T_IN, 0), null, 512)[0]);
            assertEquals(S_OK, blk(d, header(T_FLUSH, 0), null, 0)[0]);
        }
        assertArrayEquals(before, Files.readAllBytes(img));
    }

    @Test
    void blockRefusesMissingImage() {
        IOException e = assertThrows(IOException.class, () -> new VirtioBlock(dir.resolve("nope.img"), false, "x"));
        assertEquals("disk image " + dir.resolve("nope.img") + ": no such file", e.getMessage());
        e = assertThrows(IOException.class, () -> new VirtioBlock(dir, false, "x"));
        assertFalse(e.getMessage().contains("\n"));
        assertTrue(e.getMessage().contains("not a regular file"));
    }

    @Test
    void rngFillsBuffers() {
        VirtioRng rng = new VirtioRng();
        TestDriver d = new TestDriver(rng).init();
        long a = d.alloc(4096);
        d.submit(0, Buf.w(a, 1000), Buf.w(a + 2048, 24));
        d.kick(0);
        assertEquals(1, d.usedIdx(0));
        assertEquals(1024, d.usedLen(0, 0));
        assertFalse(Arrays.equals(new byte[1000], d.mem.read(a, 1000)));
        assertEquals(1, d.r(INTERRUPT_STATUS));
        assertEquals(1024L, rng.counters().get("bytes"));

        long big = d.alloc(100_000);
        d.submit(0, Buf.w(big, 100_000));
        d.kick(0);
        assertEquals(VirtioRng.MAX_PER_REQUEST, d.usedLen(0, 1));
    }

    @Test
    void consoleTransmit() {
        CollectingSink out = new CollectingSink();
        VirtioConsole con = new VirtioConsole(out);
        TestDriver d = new TestDriver(con).init();
        assertEquals(3, d.r(VirtioMmioTransport.DEVICE_ID));
        d.submit(VirtioConsole.TRANSMITQ, Buf.r(d.put("hello ".getBytes()), 6), Buf.r(d.put("world".getBytes()), 5));
        d.submit(VirtioConsole.TRANSMITQ, Buf.r(d.put("!\n".getBytes()), 2));
        d.kick(VirtioConsole.TRANSMITQ);
        assertEquals("hello world!\n", out.toString());
        assertEquals(2, d.usedIdx(VirtioConsole.TRANSMITQ));
        assertEquals(0, d.usedLen(VirtioConsole.TRANSMITQ, 0));
    }

    /** A stalled host reader stops the transmit queue mid-chain; room again resumes it where it was, nothing lost. */
    @Test
    void consoleTransmitWaitsForTheHostSide() {
        CollectingSink out = new CollectingSink(4);
        VirtioConsole con = new VirtioConsole(out);
        TestDriver d = new TestDriver(con).init();
        d.submit(VirtioConsole.TRANSMITQ, Buf.r(d.put("abc".getBytes()), 3));
        d.submit(VirtioConsole.TRANSMITQ, Buf.r(d.put("defg".getBytes()), 4));
        d.kick(VirtioConsole.TRANSMITQ);
        assertEquals("abc", out.toString(), "the second chain does not fit: it waits");
        assertEquals(1, d.usedIdx(VirtioConsole.TRANSMITQ));
        out.drain();
        assertEquals("abcdefg", out.toString());
        assertEquals(2, d.usedIdx(VirtioConsole.TRANSMITQ));
    }

    @Test
    void consoleReceive() {
        VirtioConsole con = new VirtioConsole(new CollectingSink());
        int[] listened = new int[1];
        con.onReceiveBuffers(() -> listened[0]++);
        assertEquals(0, con.offer(new byte[4], 0, 4), "not active yet");
        TestDriver d = new TestDriver(con).init();
        assertEquals(0, con.offer("abc".getBytes(), 0, 3), "no receive buffers");
        long b1 = d.alloc(4), b2 = d.alloc(4);
        d.submit(VirtioConsole.RECEIVEQ, Buf.w(b1, 4));
        d.submit(VirtioConsole.RECEIVEQ, Buf.w(b2, 4));
        d.kick(VirtioConsole.RECEIVEQ);
        assertEquals(1, listened[0]);
        byte[] input = "0123456789".getBytes();
        assertEquals(3, con.offer(input, 0, 3));
        assertEquals("012", new String(d.mem.read(b1, 3)));
        assertEquals(3, d.usedLen(VirtioConsole.RECEIVEQ, 0));
        assertEquals(4, con.offer(input, 3, 7), "only the second buffer is left");
        assertEquals("3456", new String(d.mem.read(b2, 4)));
        assertEquals(0, con.offer(input, 7, 3));
        assertEquals(INT_USED_BUFFER, d.r(INTERRUPT_STATUS));
        assertEquals(2, d.usedIdx(VirtioConsole.RECEIVEQ));
    }

    /**
     * One guest buffer larger than 2 GiB (the spec allows up to 4 GiB): read in pieces, not refused
     * because a Java ByteBuffer stops at 2 GiB. The guest memory is reserved, not committed, until
     * the read fills it.
     */
    @Test
    void aReadIntoABufferLargerThan2GiB(@TempDir Path tmp) throws Exception {
        long big = (2L << 30) + (1 << 20);
        Path img = tmp.resolve("big.img");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(big);
            f.seek(big - 16);
            f.write("END-OF-THE-DISK!".getBytes());
        }
        try (dev.jvmm.memory.GuestMemory mem = dev.jvmm.memory.GuestMemory.allocate(
                java.util.List.of(new dev.jvmm.memory.RamRange(0, big + (16 << 20))));
             VirtioBlock blk = new VirtioBlock(img, true, "big")) {
            TestDriver d = new TestDriver(blk, mem).init();
            long hdr = d.alloc(16), status = d.alloc(1);
            long data = 8 << 20;
            ByteBuffer h = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(0, T_IN).putLong(8, 0);
            d.mem.write(hdr, h.array());
            d.submit(0, Buf.r(hdr, 16), Buf.w(data, big), Buf.w(status, 1));
            d.kick(0);
            assertEquals(S_OK, d.mem.read(status, 1)[0], "status");
            assertEquals("END-OF-THE-DISK!", new String(d.mem.read(data + big - 16, 16)));
            assertEquals(0, blk.stats().errors.get());
        }
    }

    /**
     * A read that runs past the end of an image that shrank after it was opened: the part still in
     * the file arrives (one preadv stops short at the end), the rest reads as zeros, across two
     * guest buffers, and the request succeeds (the capacity the guest saw is what it checks).
     */
    @Test
    void aReadPastTheEndOfAShrunkImageReadsZeros() throws Exception {
        Path img = image(64);
        byte[] original = Files.readAllBytes(img);
        try (VirtioBlock b = new VirtioBlock(img, true, "x")) {
            try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
                f.setLength(31 * SECTOR + 100);
            }
            TestDriver d = new TestDriver(b).init();
            long hdr = d.put(header(T_IN, 30)), first = d.alloc(3 * SECTOR), second = d.alloc(SECTOR), status = d.alloc(1);
            d.mem.write(first, new byte[3 * SECTOR]);
            d.mem.write(second, new byte[] {1, 2, 3});
            d.submit(0, Buf.r(hdr, 16), Buf.w(first, 3 * SECTOR), Buf.w(second, SECTOR), Buf.w(status, 1));
            d.kick(0);
            assertEquals(S_OK, d.mem.read(status, 1)[0]);
            byte[] expect = new byte[4 * SECTOR];
            System.arraycopy(original, 30 * SECTOR, expect, 0, SECTOR + 100);
            byte[] got = new byte[4 * SECTOR];
            System.arraycopy(d.mem.read(first, 3 * SECTOR), 0, got, 0, 3 * SECTOR);
            System.arraycopy(d.mem.read(second, SECTOR), 0, got, 3 * SECTOR, SECTOR);
            assertArrayEquals(expect, got);
        }
    }

    /**
     * On its own I/O thread a disk takes every request the guest made available in one turn, serves
     * them side by side (worker threads) and returns them with one interrupt; a FLUSH in the middle
     * waits for the writes before it, so reads after it see what they wrote, and the image holds it.
     * The code that served one request a turn gave 33 interrupts here and had no worker threads.
     */
    @Test
    void onItsIoThreadADiskServesATurnsRequestsSideBySideWithOneInterrupt() throws Exception {
        Path img = image(256);
        int efd = dev.jvmm.sys.LibC.eventfd(0, dev.jvmm.sys.LibC.EFD_CLOEXEC | dev.jvmm.sys.LibC.EFD_NONBLOCK);
        assertTrue(efd >= 0);
        java.util.List<String> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (VirtioBlock b = new VirtioBlock(img, false, "x")) {
            TestDriver d = new TestDriver(b).init(1L << F_VERSION_1, 256);
            b.attach(new VirtioAttachment(null, new int[] {efd}, d.t::notify, d.t::resume, failures::add));
            int n = 16;
            byte[][] data = new byte[n][];
            long[] status = new long[2 * n + 1];
            long[] readAt = new long[n];
            for (int i = 0; i < n; i++) {
                data[i] = new byte[4096];
                new Random(100 + i).nextBytes(data[i]);
                status[i] = d.alloc(1);
                d.submit(0, Buf.r(d.put(header(T_OUT, 8L * i)), 16), Buf.r(d.put(data[i]), 4096), Buf.w(status[i], 1));
            }
            status[n] = d.alloc(1);
            d.submit(0, Buf.r(d.put(header(T_FLUSH, 0)), 16), Buf.w(status[n], 1));
            for (int i = 0; i < n; i++) {
                readAt[i] = d.alloc(4096);
                status[n + 1 + i] = d.alloc(1);
                d.submit(0, Buf.r(d.put(header(T_IN, 8L * i)), 16), Buf.w(readAt[i], 4096), Buf.w(status[n + 1 + i], 1));
            }
            for (long s : status) d.mem.write(s, new byte[] {(byte) 0xee});
            try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                dev.jvmm.sys.LibC.write(efd, a.allocateFrom(java.lang.foreign.ValueLayout.JAVA_LONG, 1L), 8);
            }
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (d.usedIdx(0) < 2 * n + 1 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(2 * n + 1, d.usedIdx(0), "every request returned");
            for (int i = 0; i < status.length; i++) assertEquals(S_OK, d.mem.read(status[i], 1)[0], "status of request " + i);
            byte[] file = Files.readAllBytes(img);
            for (int i = 0; i < n; i++) {
                assertArrayEquals(data[i], d.mem.read(readAt[i], 4096), "read " + i + " after the flush");
                assertArrayEquals(data[i], Arrays.copyOfRange(file, i * 4096, (i + 1) * 4096), "image block " + i);
            }
            assertEquals(1L, b.stats().interrupts.get(), "one interrupt for the turn");
            assertTrue(Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().startsWith("virtio-blk disk.img worker")),
                    "worker threads served requests");
            assertEquals(java.util.List.of(), failures);
        } finally {
            dev.jvmm.sys.LibC.close(efd);
        }
    }
}
