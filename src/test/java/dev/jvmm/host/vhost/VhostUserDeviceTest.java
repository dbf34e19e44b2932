package dev.jvmm.host.vhost;

import dev.jvmm.device.virtio.SplitVirtqueue;
import dev.jvmm.device.virtio.TestDriver;
import dev.jvmm.device.virtio.VirtioAttachment;
import dev.jvmm.device.virtio.VirtioFs;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.LibC;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

import static dev.jvmm.device.virtio.VirtioMmioTransport.*;
import static dev.jvmm.host.vhost.FakeBackend.reply;
import static dev.jvmm.host.vhost.FakeBackend.send;
import static dev.jvmm.host.vhost.FakeBackend.silence;
import static dev.jvmm.host.vhost.FakeBackend.u64;
import static dev.jvmm.host.vhost.VhostUserRequest.*;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The vhost-user device model against the scripted fake back end on a socketpair, with the transport
 * driven by the test driver as a guest driver would: creation, config space, what DRIVER_OK and a reset
 * send, the interrupt path, and failures (hang-up, timeout) ending the run.
 */
class VhostUserDeviceTest extends AttachedDeviceTest {
    private static final long VERSION_1 = 1L << VhostUserProtocol.VIRTIO_F_VERSION_1;
    private static final long PROTOCOL_FEATURES = 1L << VhostUserProtocol.VHOST_USER_F_PROTOCOL_FEATURES;
    private static final long EVENT_IDX = 1L << SplitVirtqueue.F_EVENT_IDX;
    private static final long INDIRECT = 1L << SplitVirtqueue.F_INDIRECT_DESC;
    private static final long PACKED = 1L << 34, NOTIFICATION = 1L;
    private static final long REPLY_ACK = 1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK;
    private static final long MQ = 1L << VhostUserProtocol.PROTOCOL_F_MQ;
    /** What the fake offers: no INDIRECT_DESC, and bits the model must withhold (packed rings, notifications). */
    private static final long BACK_END_FEATURES = VERSION_1 | EVENT_IDX | PROTOCOL_FEATURES | PACKED | NOTIFICATION;

    private FakeBackend fake;
    private int irqfd;
    private int[] kicks;

    @BeforeEach
    void setUp() {
        fake = new FakeBackend();
        irqfd = eventfd();
        kicks = new int[] {eventfd(), eventfd()};
    }

    @AfterEach
    void tearDown() {
        fake.close();
    }

    private FakeBackend handshake(long features) {
        return fake.expect(GET_FEATURES, u64(features))
                .expect(SET_OWNER)
                .expect(GET_PROTOCOL_FEATURES, u64(REPLY_ACK | MQ))
                .expect(SET_PROTOCOL_FEATURES)
                .expect(GET_QUEUE_NUM, u64(2));
    }

    private FakeBackend activation() {
        fake.expect(SET_FEATURES).expect(SET_MEM_TABLE);
        for (int q = 0; q < 2; q++) {
            fake.expect(SET_VRING_NUM).expect(SET_VRING_BASE).expect(SET_VRING_ADDR)
                    .expect(SET_VRING_CALL).expect(SET_VRING_KICK).expect(SET_VRING_ENABLE);
        }
        return fake;
    }

    /** Stopping both queues; the back end says it got to avail index 3 + queue. */
    private FakeBackend stop() {
        for (int q = 0; q < 2; q++) {
            fake.expect(SET_VRING_ENABLE).expect(GET_VRING_BASE, (r, s) -> {
                VhostUserMessage.VringState asked = VhostUserMessage.vringState(r.payload());
                send(s, reply(r.header().request(), VhostUserMessage.vringState(asked.index(), 3 + asked.index())));
            });
        }
        return fake;
    }

    private VhostUserDevice device(Duration timeout) throws VhostUserException {
        return VhostUserDevice.virtioFs("hostshare", VhostUserFrontend.over(fake.frontEndSide, "fake.sock", timeout), null);
    }

    private VirtioAttachment attachment(GuestMemory memory) {
        return new VirtioAttachment(loop, kicks, q -> { }, q -> { }, failures::add, irqfd, memory);
    }

    private static void assertSameEventfd(int writeFd, int readFd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocateFrom(JAVA_LONG, 1L);
            assertEquals(8, LibC.write(writeFd, v, 8));
            v.set(JAVA_LONG, 0, 0);
            assertEquals(8, LibC.read(readFd, v, 8), "the two descriptors name one eventfd");
            assertEquals(1, v.get(JAVA_LONG, 0));
        }
    }

    private static boolean signalled(int eventfd) {
        try (Arena arena = Arena.ofConfined()) {
            return LibC.read(eventfd, arena.allocate(JAVA_LONG), 8) == 8;
        }
    }

    @Test
    void theDeviceOffersWhatTheBackEndOffersAndItsTagInTheConfigSpace() throws Throwable {
        handshake(BACK_END_FEATURES).start();
        VhostUserDevice dev = device(Duration.ofSeconds(5));
        fake.finish();
        assertEquals(VirtioFs.DEVICE_ID, dev.deviceId());
        assertEquals(2, dev.queueCount());
        assertEquals(1024, dev.queueMaxSize(1));
        assertEquals(VERSION_1 | EVENT_IDX, dev.deviceFeatures(), "no INDIRECT_DESC (not offered), no packed rings, no notifications");
        assertEquals(BACK_END_FEATURES, dev.backEndFeatures());

        TestDriver d = new TestDriver(dev, mem);
        assertEquals(26, d.r(DEVICE_ID));
        d.w(DEVICE_FEATURES_SEL, 0);
        assertEquals(1 << SplitVirtqueue.F_EVENT_IDX, d.r(DEVICE_FEATURES), "the transport adds no INDIRECT_DESC of its own");
        d.w(DEVICE_FEATURES_SEL, 1);
        assertEquals(1, d.r(DEVICE_FEATURES), "VERSION_1, and not bit 34 (packed)");
        d.w(QUEUE_SEL, 0);
        assertEquals(1024, d.r(QUEUE_NUM_MAX));

        assertEquals(40, dev.configSize());
        byte[] tag = new byte[36];
        for (int i = 0; i < 36; i++) tag[i] = (byte) d.t.read(CONFIG + i, 1);
        assertEquals("hostshare", new String(tag, 0, 9, StandardCharsets.US_ASCII));
        for (int i = 9; i < 36; i++) assertEquals(0, tag[i], "NUL padding at " + i);
        assertEquals(1, d.t.read(CONFIG + 36, 4), "num_request_queues");
        assertEquals(0x7473_6f68L, d.t.read(CONFIG, 4), "little-endian 'host'");
        d.t.write(CONFIG, 4, 0);
        assertEquals(0x7473_6f68L, d.t.read(CONFIG, 4), "read-only");
        assertEquals(0, d.t.read(CONFIG + 40, 4), "past the end");

        // a driver that accepts what the back end lacks is refused
        d.negotiate(0);
        d.w(DRIVER_FEATURES_SEL, 0);
        d.w(DRIVER_FEATURES, (int) INDIRECT);
        d.w(DRIVER_FEATURES_SEL, 1);
        d.w(DRIVER_FEATURES, 1);
        d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        assertEquals(0, d.r(STATUS) & STATUS_FEATURES_OK);
        dev.close();
    }

    @Test
    void driverOkHandsTheRingsToTheBackEndAndResetStopsThem() throws Throwable {
        handshake(BACK_END_FEATURES);
        activation();
        stop();        // the driver resets the device
        activation();  // and initialises it again
        stop();        // closing
        fake.start();
        VhostUserDevice dev = device(Duration.ofSeconds(5));
        dev.attach(attachment(mem));
        TestDriver d = new TestDriver(dev, mem);
        assertEquals(0, d.r(INTERRUPT_STATUS), "nothing pending before DRIVER_OK");

        d.init(VERSION_1 | EVENT_IDX, 1024);
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK, d.r(STATUS), d.t.lastError());
        d.w(STATUS, 0);
        d.init(VERSION_1, 256);
        assertEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET, d.t.lastError());
        dev.close();
        fake.finish();
        assertEquals(List.of(), failures);

        // the handshake is done once; everything after it is the two activations and the stops
        List<FakeBackend.Request> got = fake.received.subList(5, fake.received.size());
        assertEquals(VERSION_1 | EVENT_IDX | PROTOCOL_FEATURES, got.get(0).u64(), "the guest's features, and the protocol bit");
        List<MemRegion> table = VhostUserMessage.memTable(got.get(1).payload(), got.get(1).fds());
        assertEquals(1, table.size());
        assertEquals(0, table.get(0).guestAddress());
        assertEquals(TestDriver.MEM_SIZE, table.get(0).size());
        assertEquals(mem.regions().get(0).host().address(), table.get(0).userAddress());
        for (int q = 0; q < 2; q++) {
            int at = 2 + 6 * q;
            assertEquals(new VhostUserMessage.VringState(q, 1024), VhostUserMessage.vringState(got.get(at).payload()));
            assertEquals(new VhostUserMessage.VringState(q, 0), VhostUserMessage.vringState(got.get(at + 1).payload()), "a fresh ring");
            long base = d.ram.address();
            assertEquals(new VringAddress(q, 0, base + TestDriver.descAddr(q), base + TestDriver.usedAddr(q), base + TestDriver.availAddr(q), 0),
                    VhostUserMessage.vringAddress(got.get(at + 2).payload()), "host addresses of the rings in jvmm's mapping");
            FakeBackend.Request call = got.get(at + 3), kick = got.get(at + 4);
            assertEquals(q, call.u64());
            assertSameEventfd(irqfd, call.fds()[0]);
            assertEquals(q, kick.u64());
            assertSameEventfd(kicks[q], kick.fds()[0]);
            assertEquals(new VhostUserMessage.VringState(q, 1), VhostUserMessage.vringState(got.get(at + 5).payload()));
        }
        for (int q = 0; q < 2; q++) {
            assertEquals(new VhostUserMessage.VringState(q, 0), VhostUserMessage.vringState(got.get(14 + 2 * q).payload()), "disable");
            assertEquals(q, VhostUserMessage.vringState(got.get(15 + 2 * q).payload()).index(), "GET_VRING_BASE");
        }
        assertEquals(VERSION_1 | PROTOCOL_FEATURES, got.get(18).u64(), "the second driver's features");
        assertEquals(new VhostUserMessage.VringState(1, 256), VhostUserMessage.vringState(got.get(20 + 6).payload()));
        assertEquals(1L, dev.counters().get("resets"));
        assertEquals(2L, dev.counters().get("activations"));
        assertEquals(4L, dev.counters().get("queues_started"));
        assertEquals((long) fake.received.size(), dev.counters().get("vhost_requests"));
    }

    @Test
    void onlyTheQueuesTheDriverMadeReadyAreStarted() throws Throwable {
        handshake(BACK_END_FEATURES);
        fake.expect(SET_FEATURES).expect(SET_MEM_TABLE)
                .expect(SET_VRING_NUM).expect(SET_VRING_BASE).expect(SET_VRING_ADDR)
                .expect(SET_VRING_CALL).expect(SET_VRING_KICK).expect(SET_VRING_ENABLE)
                .expect(SET_VRING_ENABLE).expect(GET_VRING_BASE, (r, s) -> send(s, reply(r.header().request(), VhostUserMessage.vringState(1, 0))))
                .start();
        VhostUserDevice dev = device(Duration.ofSeconds(5));
        dev.attach(attachment(mem));
        TestDriver d = new TestDriver(dev, mem);
        d.negotiate(VERSION_1);
        d.setupQueue(1, 64); // the request queue only
        d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
        d.w(STATUS, 0);
        fake.finish();
        assertEquals(1, VhostUserMessage.vringState(fake.received(7).payload()).index());
        dev.close();
    }

    @Test
    void theBackEndsInterruptShowsAsAUsedBufferInInterruptStatus() throws Throwable {
        handshake(BACK_END_FEATURES);
        activation();
        stop();
        fake.start();
        VhostUserDevice dev = device(Duration.ofSeconds(5));
        dev.attach(attachment(mem));
        TestDriver d = new TestDriver(dev, mem).init(VERSION_1 | EVENT_IDX, 128);
        int callFd = fake.received(5 + 2 + 3).fds()[0];

        // the back end signals its call descriptor: that is the irqfd (KVM would inject the interrupt
        // with no jvmm thread involved), and the guest's handler finds the VRING bit
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(8, LibC.write(callFd, arena.allocateFrom(JAVA_LONG, 1L), 8));
        }
        assertTrue(signalled(irqfd), "the back end's signal arrives on the device's irqfd");
        assertEquals(INT_USED_BUFFER, d.r(INTERRUPT_STATUS) & INT_USED_BUFFER);
        d.ackAll();
        assertEquals(INT_USED_BUFFER, d.r(INTERRUPT_STATUS), "jvmm cannot know whether more came: the bit stays set");
        assertEquals(0, d.interrupts, "the transport raised nothing itself");

        // a QueueNotify write that reaches the transport goes on to the back end's kick eventfd
        d.kick(1);
        assertTrue(signalled(kicks[1]));
        assertFalse(signalled(kicks[0]));

        d.w(STATUS, 0);
        assertEquals(0, d.r(INTERRUPT_STATUS), "after a reset nothing is pending");
        fake.finish();
        dev.close();
    }

    @Test
    void aBackEndThatHangsUpEndsTheRunWithOneLine() throws Throwable {
        handshake(BACK_END_FEATURES).start();
        VhostUserDevice dev = device(Duration.ofSeconds(5));
        dev.attach(attachment(mem));
        fake.finish();
        loop.runOnce(0);
        assertEquals(List.of(), failures, "no hang-up yet");
        fake.hangUp();
        loop.runOnce(1000);
        assertEquals(List.of("vhost-user back end fake.sock: hung up"), failures);
        loop.runOnce(0);
        assertEquals(1, failures.size(), "reported once: the loop stops watching");
        dev.close();
    }

    @Test
    void aBackEndThatDoesNotAnswerEndsTheRunAndTheDeviceNeedsAReset() throws Throwable {
        handshake(BACK_END_FEATURES).expect(SET_FEATURES).expect(SET_MEM_TABLE, silence()).start();
        VhostUserDevice dev = device(Duration.ofMillis(300));
        dev.attach(attachment(mem));
        TestDriver d = new TestDriver(dev, mem);
        long t0 = System.nanoTime();
        d.init(VERSION_1, 64);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 290 && ms < 3000, ms + " ms");
        assertEquals(List.of("vhost-user back end fake.sock: no reply to SET_MEM_TABLE within 300 ms"), failures);
        assertNotEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET);
        fake.finish();
        d.w(STATUS, 0);
        long t1 = System.nanoTime();
        dev.close();
        assertTrue((System.nanoTime() - t1) / 1_000_000 < 100, "closing a broken connection does not wait for it");
        assertEquals(1, failures.size());
    }

    @Test
    void aBackEndWithoutVersion1OrWithTooFewQueuesIsRefusedAtCreation() throws Throwable {
        fake.expect(GET_FEATURES, u64(EVENT_IDX)).expect(SET_OWNER).start();
        VhostUserException e = assertThrows(VhostUserException.class, () -> device(Duration.ofSeconds(5)));
        assertEquals("vhost-user back end fake.sock does not offer VIRTIO_F_VERSION_1 (features 0x20000000); jvmm's virtio-mmio devices need it",
                e.getMessage());
        fake.finish();

        FakeBackend other = new FakeBackend();
        try {
            other.expect(GET_FEATURES, u64(VERSION_1 | PROTOCOL_FEATURES)).expect(SET_OWNER)
                    .expect(GET_PROTOCOL_FEATURES, u64(MQ)).expect(SET_PROTOCOL_FEATURES).expect(GET_QUEUE_NUM, u64(1)).start();
            e = assertThrows(VhostUserException.class,
                    () -> VhostUserDevice.virtioFs("t", VhostUserFrontend.over(other.frontEndSide, "other.sock", Duration.ofSeconds(5)), null));
            assertEquals("vhost-user back end other.sock serves 1 queue(s); virtio-fs 't' needs 2", e.getMessage());
            other.finish();
        } finally {
            other.close();
        }
    }

    @Test
    void attachingToPrivateMemoryIsABug() throws Throwable {
        handshake(BACK_END_FEATURES).start();
        VhostUserDevice dev = device(Duration.ofSeconds(5));
        GuestMemory anonymous = GuestMemory.wrap(List.of(new GuestMemory.Region(0, 1 << 20, Arena.ofAuto().allocate(1 << 20))));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> dev.attach(attachment(anonymous)));
        assertTrue(e.getMessage().contains("GuestMemory.allocateShared"), e.getMessage());
        dev.close();
        fake.finish();
    }

    /** The used ring the back end writes and the transport's view agree on where the rings are. */
    @Test
    void ringSegmentsAreTheDriversAddresses() throws Exception {
        SplitVirtqueue q = new SplitVirtqueue(mem, 16, 0x1000, 0x2000, 0x3000, 0);
        assertEquals(mem.slice(0x1000, 1).address(), q.descriptorTable().address());
        assertEquals(6 + 2 * 16, q.availableRing().byteSize());
        assertEquals(6 + 8 * 16, q.usedRing().byteSize());
        mem.slice(0x3000, 8).set(JAVA_SHORT, 2, (short) 5);
        assertEquals(5, q.usedRing().get(JAVA_SHORT, 2));
        assertEquals(0, q.availableRing().get(JAVA_INT, 0));
    }
}
