package dev.jvmm.device.virtio;

import dev.jvmm.device.CollectingSink;
import dev.jvmm.device.virtio.TestDriver.Buf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Consumer;
import java.util.function.Supplier;

import static dev.jvmm.device.virtio.VirtioMmioTransport.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The virtio-mmio transport's snapshot state with its queues and each device's own: saved, loaded
 * into a fresh transport and device over the same guest memory, every register reads the same, the
 * state saves to the same bytes, a pending interrupt is raised again, and the queue goes on where it
 * was (the next chain lands in the next used slot). A truncated, other-version or out-of-range state
 * is refused naming what is wrong, and leaves the transport as it was.
 */
class VirtioSnapshotStateTest {
    private static final long FEATURES = (1L << F_VERSION_1) | (1L << SplitVirtqueue.F_EVENT_IDX);

    @TempDir
    Path dir;

    /** Offsets in a one-queue state of a ready queue, no reasons (see VirtioMmioTransport.saveState). */
    private static final int STATUS_AT = 1, FEATURES_AT = 13, INTERRUPT_AT = 25, ACTIVE_AT = 33, QUEUES_AT = 36,
            NUM_AT = 40, DESC_AT = 45, RING_FLAGS_AT = 75;

    private static final int[] REGISTERS = {STATUS, QUEUE_NUM, QUEUE_READY, QUEUE_DESC_LOW, QUEUE_DRIVER_LOW, QUEUE_DEVICE_LOW,
        INTERRUPT_STATUS, CONFIG_GENERATION, DRIVER_FEATURES, QUEUE_SEL, DEVICE_FEATURES_SEL, DRIVER_FEATURES_SEL};

    private static int[] registers(TestDriver d) {
        int[] r = new int[REGISTERS.length];
        for (int i = 0; i < r.length; i++) r[i] = d.r(REGISTERS[i]);
        return r;
    }

    /** A driver of {@code device} on {@code from}'s memory, loaded with {@code state}, whose own ring positions continue {@code from}'s. */
    private static TestDriver restored(TestDriver from, VirtioDevice device, byte[] state) {
        TestDriver d = new TestDriver(device, from.mem);
        d.t.loadState(state);
        d.qsize = from.qsize;
        System.arraycopy(from.nextDesc, 0, d.nextDesc, 0, from.nextDesc.length);
        System.arraycopy(from.availIdx, 0, d.availIdx, 0, from.availIdx.length);
        d.dataNext = from.dataNext;
        return d;
    }

    /** An rng whose driver read twice and left the used-buffer interrupt unacknowledged. */
    private static TestDriver usedRng() {
        TestDriver d = new TestDriver(new VirtioRng()).init(FEATURES, 16);
        for (int i = 0; i < 2; i++) {
            d.submit(0, Buf.w(d.alloc(32), 32));
            d.kick(0);
        }
        assertEquals(2, d.usedIdx(0));
        assertEquals(INT_USED_BUFFER, d.r(INTERRUPT_STATUS));
        return d;
    }

    @Test
    void rngRoundTripsAndItsQueueGoesOn() {
        TestDriver d = usedRng();
        d.w(QUEUE_SEL, 0);
        byte[] state = d.t.saveState();

        TestDriver e = restored(d, new VirtioRng(), state);
        assertArrayEquals(state, e.t.saveState());
        assertArrayEquals(registers(d), registers(e));
        assertEquals(d.t.negotiatedFeatures(), e.t.negotiatedFeatures());
        assertEquals(1, e.interrupts, "the pending interrupt is raised again");
        e.ackAll();
        e.setUsedEvent(0, 2); // EVENT_IDX: interrupt once used entry 2 is published
        int head = e.submit(0, Buf.w(e.alloc(16), 16));
        e.kick(0);
        assertEquals(3, e.usedIdx(0), "the restored queue publishes the next used entry");
        assertEquals(head, e.usedId(0, 2));
        assertEquals(16, e.usedLen(0, 2));
        assertEquals(INT_USED_BUFFER, e.r(INTERRUPT_STATUS), "the notification decision continues from the saved used index");
    }

    @Test
    void aFreshTransportRoundTripsAndNoPendingInterruptIsRaised() {
        TestDriver d = new TestDriver(new VirtioRng());
        byte[] state = d.t.saveState();
        TestDriver e = new TestDriver(new VirtioRng(), d.mem);
        e.t.loadState(state);
        assertArrayEquals(state, e.t.saveState());
        assertEquals(0, e.interrupts);
        assertEquals(0, e.r(STATUS));
    }

    @Test
    void aBrokenQueueStaysBroken() {
        TestDriver d = new TestDriver(new VirtioRng()).init(FEATURES, 16);
        d.writeDesc(TestDriver.descAddr(0), 0, 0xf000_0000L, 16, SplitVirtqueue.DESC_F_WRITE, 0); // not RAM
        d.publish(0, 0);
        d.kick(0);
        assertNotEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET);
        TestDriver e = restored(d, new VirtioRng(), d.t.saveState());
        assertEquals(d.r(STATUS), e.r(STATUS));
        assertEquals(d.t.lastError(), e.t.lastError());
        e.submit(0, Buf.w(e.alloc(16), 16));
        e.kick(0);
        assertEquals(0, e.usedIdx(0), "a device that needs a reset serves nothing");
        e.init(FEATURES, 16); // and a reset makes it work again
        e.submit(0, Buf.w(e.alloc(16), 16));
        e.kick(0);
        assertEquals(1, e.usedIdx(0));
    }

    private Path image(int sectors) throws IOException {
        Path p = dir.resolve("disk" + sectors + ".img");
        Files.write(p, new byte[sectors * VirtioBlock.SECTOR]);
        return p;
    }

    @Test
    void blockRoundTripsAndChecksTheImage() throws Exception {
        Path img = image(64);
        byte[] state;
        TestDriver d;
        try (VirtioBlock b = new VirtioBlock(img, false, "x", false)) {
            d = new TestDriver(b).init(FEATURES, 16);
            VirtioDevicesTest.blk(d, VirtioDevicesTest.header(VirtioBlock.T_IN, 3), null, 512);
            state = d.t.saveState();
        }
        try (VirtioBlock b = new VirtioBlock(img, false, "x", false)) {
            TestDriver e = restored(d, b, state);
            assertArrayEquals(state, e.t.saveState());
            assertArrayEquals(registers(d), registers(e));
            int[] r = VirtioDevicesTest.blk(e, VirtioDevicesTest.header(VirtioBlock.T_IN, 63), null, 512);
            assertEquals(VirtioBlock.S_OK, r[0], "the restored disk reads");
        }
        try (VirtioBlock other = new VirtioBlock(image(32), false, "x", false)) {
            TestDriver e = new TestDriver(other, d.mem);
            byte[] before = e.t.saveState();
            String why = assertThrows(IllegalArgumentException.class, () -> e.t.loadState(state)).getMessage();
            assertTrue(why.contains("32 sectors") && why.contains("had 64"), why);
            assertArrayEquals(before, e.t.saveState(), "unchanged after a refused load");
        }
        try (VirtioBlock ro = new VirtioBlock(img, true, "x", false)) {
            TestDriver e = new TestDriver(ro, d.mem);
            // FEATURES are offered by a read-only disk too: the device's own state is what refuses
            String why = assertThrows(IllegalArgumentException.class, () -> e.t.loadState(state)).getMessage();
            assertTrue(why.contains("read-write") && why.contains("read-only"), why);
        }
    }

    @Test
    void consoleRoundTripsAndRefusesWhileAChainIsHalfSent() {
        CollectingSink out = new CollectingSink();
        VirtioConsole con = new VirtioConsole(out);
        TestDriver d = new TestDriver(con).init(FEATURES, 16);
        d.submit(VirtioConsole.TRANSMITQ, Buf.r(d.put("hello".getBytes()), 5));
        d.kick(VirtioConsole.TRANSMITQ);
        d.submit(VirtioConsole.RECEIVEQ, Buf.w(d.alloc(64), 64));
        d.kick(VirtioConsole.RECEIVEQ);
        assertNull(d.t.snapshotRefusal());
        byte[] state = d.t.saveState();
        CollectingSink out2 = new CollectingSink();
        VirtioConsole con2 = new VirtioConsole(out2);
        TestDriver e = restored(d, con2, state);
        assertArrayEquals(state, e.t.saveState());
        assertEquals(5, con2.offer("input".getBytes(), 0, 5), "the receive buffer made available before the snapshot takes input");
        assertEquals(1, e.usedIdx(VirtioConsole.RECEIVEQ));
        e.submit(VirtioConsole.TRANSMITQ, Buf.r(e.put("again".getBytes()), 5));
        e.kick(VirtioConsole.TRANSMITQ);
        assertEquals("again", out2.toString());

        CollectingSink stalled = new CollectingSink(2);
        TestDriver s = new TestDriver(new VirtioConsole(stalled)).init(FEATURES, 16);
        s.submit(VirtioConsole.TRANSMITQ, Buf.r(s.put("stuck".getBytes()), 5));
        s.kick(VirtioConsole.TRANSMITQ);
        String why = s.t.snapshotRefusal();
        assertNotNull(why, "a chain the stalled output has not taken is in flight");
        assertTrue(why.contains("queue 1") && why.contains("in progress"), why);
        assertThrows(IllegalStateException.class, s.t::saveState);
    }

    @Test
    void aDeviceMustSayThatItsStateIsSaved() {
        VirtioDevice plain = new VirtioDevice() {
            public int deviceId() { return 9; }
            public long deviceFeatures() { return 0; }
            public int queueCount() { return 1; }
            public int queueMaxSize(int q) { return 8; }
            public int configSize() { return 0; }
            public long readConfig(int o, int s) { return 0; }
            public void writeConfig(int o, int s, long v) { }
            public void activate(Transport t, java.util.List<SplitVirtqueue> q, long f) { }
            public void notify(int q) { }
            public void reset() { }
            public VirtioCounters stats() { return new VirtioCounters(); }
        };
        assertNotNull(new TestDriver(plain).t.snapshotRefusal(), "a device must say its state is all there");
        assertNull(new TestDriver(new VirtioRng()).t.snapshotRefusal());
    }

    /** {@code good} with {@code edit} applied to a copy of its bytes. */
    private static byte[] edited(byte[] good, Consumer<ByteBuffer> edit) {
        byte[] b = good.clone();
        edit.accept(ByteBuffer.wrap(b));
        return b;
    }

    /** A fresh rng transport refuses {@code bad}, with a message containing {@code says}, and stays as it was. */
    private static void refused(byte[] bad, String says) {
        TestDriver fresh = new TestDriver(new VirtioRng());
        byte[] before = fresh.t.saveState();
        String why = assertThrows(IllegalArgumentException.class, () -> fresh.t.loadState(bad), says).getMessage();
        assertTrue(why.contains(says), "'" + why + "' should say " + says);
        assertArrayEquals(before, fresh.t.saveState(), "unchanged after refusing: " + why);
        assertEquals(0, fresh.interrupts);
    }

    @Test
    void damagedOrOutOfRangeStatesAreRefused() {
        byte[] good = usedRng().t.saveState();
        assertEquals(QUEUES_AT, 36);
        assertEquals(1, ByteBuffer.wrap(good).getInt(QUEUES_AT), "the offsets this test patches");
        assertEquals(16, ByteBuffer.wrap(good).getInt(NUM_AT));
        for (int len = 0; len < good.length; len++) {
            int n = len;
            TestDriver fresh = new TestDriver(new VirtioRng());
            assertThrows(IllegalArgumentException.class, () -> fresh.t.loadState(Arrays.copyOf(good, n)), "truncated to " + n);
        }
        refused(Arrays.copyOf(good, good.length + 1), "bytes after");
        refused(edited(good, b -> b.put(0, (byte) 2)), "version");
        refused(edited(good, b -> b.putInt(STATUS_AT, 0x10 | b.getInt(STATUS_AT))), "status");
        refused(edited(good, b -> b.putInt(STATUS_AT, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK)), "DRIVER_OK without FEATURES_OK");
        refused(edited(good, b -> b.putInt(STATUS_AT, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK)), "active without DRIVER_OK");
        refused(edited(good, b -> b.putLong(FEATURES_AT, FEATURES | 1)), "not offered");
        refused(edited(good, b -> b.putLong(FEATURES_AT, 1L << SplitVirtqueue.F_EVENT_IDX)), "VERSION_1");
        refused(edited(good, b -> b.putInt(INTERRUPT_AT, 4)), "interrupt status");
        refused(edited(good, b -> b.put(ACTIVE_AT, (byte) 2)), "active");
        refused(edited(good, b -> b.putInt(QUEUES_AT, 2)), "2 queues saved");
        refused(edited(good, b -> b.putInt(NUM_AT, 12)), "not a power of 2");
        refused(edited(good, b -> b.putInt(NUM_AT, 512)), "not a power of 2 no larger than 256");
        refused(edited(good, b -> b.putInt(NUM_AT, 0)), "size 0");
        refused(edited(good, b -> b.putLong(DESC_AT, TestDriver.MEM_SIZE - 16)), "not in guest RAM");
        refused(edited(good, b -> b.putLong(DESC_AT, TestDriver.descAddr(0) + 8)), "aligned");
        refused(edited(good, b -> b.put(RING_FLAGS_AT, (byte) 4)), "ring features");
    }

    @Test
    void anActiveTransportLoadsAnotherStateCleanly() {
        TestDriver d = usedRng();
        byte[] state = d.t.saveState();
        Supplier<TestDriver> other = () -> new TestDriver(new VirtioRng(), d.mem).init(FEATURES, 8);
        TestDriver e = other.get();
        e.t.loadState(state);
        assertArrayEquals(state, e.t.saveState());
        assertEquals(16, e.r(QUEUE_NUM));
    }
}
