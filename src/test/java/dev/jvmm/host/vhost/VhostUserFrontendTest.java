package dev.jvmm.host.vhost;

import dev.jvmm.memory.GuestMemory;
import dev.jvmm.memory.RamRange;
import dev.jvmm.sys.LibC;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;

import static dev.jvmm.host.vhost.FakeBackend.reply;
import static dev.jvmm.host.vhost.FakeBackend.send;
import static dev.jvmm.host.vhost.FakeBackend.silence;
import static dev.jvmm.host.vhost.FakeBackend.u64;
import static dev.jvmm.host.vhost.VhostUserRequest.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VhostUserFrontendTest {
    private static final long VERSION_1 = 1L << VhostUserProtocol.VIRTIO_F_VERSION_1;
    private static final long PROTOCOL_FEATURES = 1L << VhostUserProtocol.VHOST_USER_F_PROTOCOL_FEATURES;
    private static final long REPLY_ACK = 1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK;
    private static final long MQ = 1L << VhostUserProtocol.PROTOCOL_F_MQ;
    private static final long CONFIG = 1L << VhostUserProtocol.PROTOCOL_F_CONFIG;
    private static final long BACKEND_REQ = 1L << VhostUserProtocol.PROTOCOL_F_BACKEND_REQ;

    private static VhostUserFrontend frontEnd(FakeBackend fake, Duration timeout) {
        return VhostUserFrontend.over(fake.frontEndSide, "fake.sock", timeout);
    }

    private static int eventfd() {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        assertTrue(fd >= 0);
        return fd;
    }

    /** Writes 1 to {@code writeFd} and reads it back through {@code readFd}: the two name one eventfd. */
    private static void assertSameEventfd(int writeFd, int readFd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(JAVA_LONG);
            v.set(JAVA_LONG, 0, 1);
            assertEquals(8, LibC.write(writeFd, v, 8));
            v.set(JAVA_LONG, 0, 0);
            assertEquals(8, LibC.read(readFd, v, 8));
            assertEquals(1, v.get(JAVA_LONG, 0));
        }
    }

    @Test
    void aWholeSessionWithReplyAckEncodesEveryMessage() throws Throwable {
        int kick = eventfd(), call = eventfd(), err = eventfd();
        byte[] config = {1, 2, 3, 4, 5, 6};
        try (FakeBackend fake = new FakeBackend();
             GuestMemory mem = GuestMemory.allocateShared(List.of(new RamRange(0, 1 << 20), new RamRange(1L << 32, 1 << 20)))) {
            fake.expect(GET_FEATURES, u64(VERSION_1 | PROTOCOL_FEATURES | 1))
                    .expect(SET_OWNER)
                    .expect(GET_PROTOCOL_FEATURES, u64(REPLY_ACK | MQ | CONFIG | BACKEND_REQ))
                    .expect(SET_PROTOCOL_FEATURES)
                    .expect(SET_FEATURES)
                    .expect(SET_MEM_TABLE)
                    .expect(SET_VRING_NUM).expect(SET_VRING_BASE).expect(SET_VRING_ADDR)
                    .expect(SET_VRING_ERR).expect(SET_VRING_CALL).expect(SET_VRING_KICK).expect(SET_VRING_ENABLE)
                    .expect(GET_QUEUE_NUM, u64(2))
                    .expect(GET_CONFIG, (r, s) -> {
                        VhostUserMessage.Config asked = VhostUserMessage.config(r.payload());
                        byte[] data = java.util.Arrays.copyOfRange(config, asked.offset(), asked.offset() + asked.data().length);
                        send(s, reply(r.header().request(), VhostUserMessage.config(asked.offset(), 0, data)));
                    })
                    .expect(SET_VRING_CALL)
                    .expect(SET_VRING_ENABLE)
                    .expect(GET_VRING_BASE, (r, s) -> send(s, reply(r.header().request(), VhostUserMessage.vringState(0, 7))))
                    .expect(RESET_OWNER)
                    .start();
            VhostUserFrontend fe = frontEnd(fake, Duration.ofSeconds(5));

            assertEquals(VERSION_1, fe.negotiate(VERSION_1 | (1L << 40)), "offered and wanted, without the transport bit");
            assertEquals(REPLY_ACK | MQ | CONFIG, fe.protocolFeatures(), "BACKEND_REQ is not implemented here, so not accepted");
            mem.write(4096, new byte[] {42});
            fe.setMemTable(mem);
            long desc = mem.slice(0x1000, 256).address(), avail = mem.slice(0x2000, 36).address(), used = mem.slice(0x3000, 132).address();
            fe.startQueue(0, 16, desc, avail, used, kick, call, err);
            assertEquals(2, fe.getQueueNum());
            assertArrayEquals(new byte[] {3, 4, 5}, fe.getConfig(2, 3));
            fe.setVringCall(0, -1);
            assertEquals(7, fe.stopQueue(0));
            fe.resetOwner();
            fake.finish();

            // the handshake: REPLY_ACK takes effect after SET_PROTOCOL_FEATURES, not with it
            assertFalse(fake.received(0).needsReply());
            assertFalse(fake.received(1).needsReply(), "SET_OWNER precedes protocol negotiation");
            assertEquals(REPLY_ACK | MQ | CONFIG, fake.received(3).u64());
            assertFalse(fake.received(3).needsReply());
            assertEquals(VERSION_1 | PROTOCOL_FEATURES, fake.received(4).u64(), "SET_FEATURES keeps the transport bit");
            for (int i = 4; i < fake.received.size(); i++) {
                FakeBackend.Request r = fake.received(i);
                boolean ownReply = r.request().reply() != VhostUserRequest.Reply.NONE;
                assertEquals(!ownReply, r.needsReply(), r.request() + ": NEED_REPLY exactly on requests without a reply");
            }

            // SET_MEM_TABLE: both regions, each with a descriptor that maps the same memory
            FakeBackend.Request table = fake.received(5);
            List<MemRegion> regions = VhostUserMessage.memTable(table.payload(), table.fds());
            assertEquals(2, regions.size());
            assertEquals(0, regions.get(0).guestAddress());
            assertEquals(1 << 20, regions.get(0).size());
            assertEquals(mem.regions().get(0).host().address(), regions.get(0).userAddress());
            assertEquals(1L << 32, regions.get(1).guestAddress());
            assertEquals(mem.regions().get(1).fdOffset(), regions.get(1).mmapOffset());
            MemorySegment theirs = LibC.mmap(MemorySegment.NULL, 1 << 20, LibC.PROT_READ, LibC.MAP_SHARED,
                    regions.get(0).fd(), regions.get(0).mmapOffset());
            assertNotEquals(LibC.MAP_FAILED.address(), theirs.address());
            assertEquals(42, theirs.reinterpret(1 << 20).get(JAVA_BYTE, 4096));
            LibC.munmap(theirs, 1 << 20);

            // the queue
            assertEquals(new VhostUserMessage.VringState(0, 16), VhostUserMessage.vringState(fake.received(6).payload()));
            assertEquals(new VhostUserMessage.VringState(0, 0), VhostUserMessage.vringState(fake.received(7).payload()));
            assertEquals(new VringAddress(0, 0, desc, used, avail, 0), VhostUserMessage.vringAddress(fake.received(8).payload()));
            int[] files = {err, call, kick};
            for (int i = 0; i < 3; i++) {
                FakeBackend.Request r = fake.received(9 + i);
                assertEquals(0, r.u64(), r.request() + ": index 0, no NOFD bit");
                assertEquals(1, r.fds().length, r.request() + " carries its eventfd");
                assertSameEventfd(files[i], r.fds()[0]);
            }
            assertEquals(new VhostUserMessage.VringState(0, 1), VhostUserMessage.vringState(fake.received(12).payload()));
            FakeBackend.Request noCall = fake.received(15);
            assertEquals(VhostUserProtocol.VRING_NOFD, noCall.u64(), "no descriptor: the NOFD bit");
            assertEquals(0, noCall.fds().length);
            assertEquals(new VhostUserMessage.VringState(0, 0), VhostUserMessage.vringState(fake.received(16).payload()), "disable before stop");
            assertEquals(new VhostUserMessage.VringState(0, 0), VhostUserMessage.vringState(fake.received(17).payload()));
        } finally {
            LibC.close(kick);
            LibC.close(call);
            LibC.close(err);
        }
    }

    @Test
    void withoutProtocolFeaturesNothingAsksForAcksAndRingsAreNotEnabled() throws Throwable {
        try (FakeBackend fake = new FakeBackend()) {
            fake.expect(GET_FEATURES, u64(VERSION_1)).expect(SET_OWNER).expect(SET_FEATURES)
                    .expect(SET_VRING_NUM).expect(SET_VRING_BASE).expect(SET_VRING_ADDR).expect(SET_VRING_CALL).expect(SET_VRING_KICK)
                    .expect(GET_VRING_BASE, (r, s) -> send(s, reply(r.header().request(), VhostUserMessage.vringState(0, 3))))
                    .start();
            VhostUserFrontend fe = frontEnd(fake, Duration.ofSeconds(5));
            assertEquals(VERSION_1, fe.negotiate(VERSION_1));
            fe.startQueue(0, 8, 0x1000, 0x2000, 0x3000, -1, -1, -1);
            assertEquals(3, fe.stopQueue(0));
            fake.finish();
            assertEquals(VERSION_1, fake.received(2).u64());
            for (FakeBackend.Request r : fake.received) assertFalse(r.needsReply(), r.request().toString());
            assertEquals(VhostUserProtocol.VRING_NOFD, fake.received(6).u64());
            assertEquals(VhostUserProtocol.VRING_NOFD, fake.received(7).u64());
            assertThrows(IllegalStateException.class, () -> fe.setVringEnable(0, true));
        }
    }

    private static VhostUserException failingGetFeatures(FakeBackend.Answer answer, Duration timeout) throws Throwable {
        try (FakeBackend fake = new FakeBackend()) {
            fake.expect(GET_FEATURES, answer).start();
            VhostUserFrontend fe = frontEnd(fake, timeout);
            long t0 = System.nanoTime();
            VhostUserException e = assertThrows(VhostUserException.class, fe::getFeatures);
            assertTrue(System.nanoTime() - t0 < timeout.toNanos() + 2_000_000_000L, "failed in bounded time");
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
            assertTrue(e.getMessage().startsWith("vhost-user back end fake.sock: "), e.getMessage());
            fake.finish();
            // the stream may be out of step now: nothing more is sent
            VhostUserException again = assertThrows(VhostUserException.class, fe::getFeatures);
            assertEquals(VhostUserException.Kind.CLOSED, again.kind());
            assertTrue(again.getMessage().contains("failed earlier"), again.getMessage());
            return e;
        }
    }

    @Test
    void aReplyToAnotherRequestIsAProtocolError() throws Throwable {
        VhostUserException e = failingGetFeatures((r, s) -> send(s, reply(GET_PROTOCOL_FEATURES.code(), VhostUserMessage.u64(1))),
                Duration.ofSeconds(5));
        assertEquals(VhostUserException.Kind.PROTOCOL, e.kind());
        assertTrue(e.getMessage().contains("answered GET_FEATURES with a reply to GET_PROTOCOL_FEATURES"), e.getMessage());
    }

    @Test
    void aReplyOfTheWrongSizeIsAProtocolError() throws Throwable {
        VhostUserException e = failingGetFeatures((r, s) -> send(s, reply(r.header().request(), new byte[4])), Duration.ofSeconds(5));
        assertEquals(VhostUserException.Kind.PROTOCOL, e.kind());
        assertTrue(e.getMessage().contains("reply to GET_FEATURES has a 4-byte payload; it must be 8"), e.getMessage());
    }

    @Test
    void aHugeClaimedSizeIsRefusedBeforeAnythingIsRead() throws Throwable {
        VhostUserException e = failingGetFeatures((r, s) -> {
            byte[] h = reply(r.header().request(), new byte[0]);
            java.nio.ByteBuffer.wrap(h).order(java.nio.ByteOrder.nativeOrder()).putInt(8, 0xFFFF_FFF0);
            send(s, h);
        }, Duration.ofSeconds(5));
        assertEquals(VhostUserException.Kind.PROTOCOL, e.kind());
        assertTrue(e.getMessage().contains("4294967280-byte payload"), e.getMessage());
    }

    @Test
    void aReplyWithoutTheReplyFlagIsAProtocolError() throws Throwable {
        VhostUserException e = failingGetFeatures((r, s) -> send(s,
                VhostUserMessage.encode(r.header().request(), VhostUserProtocol.VERSION, VhostUserMessage.u64(1))), Duration.ofSeconds(5));
        assertEquals(VhostUserException.Kind.PROTOCOL, e.kind());
        assertTrue(e.getMessage().contains("flags 0x1"), e.getMessage());
    }

    @Test
    void aReplyCarryingDescriptorsIsAProtocolErrorAndTheyAreClosed() throws Throwable {
        int efd = eventfd();
        try {
            VhostUserException e = failingGetFeatures((r, s) ->
                    s.sendAll(reply(r.header().request(), VhostUserMessage.u64(1)), new int[] {efd}, FakeBackend.deadline()), Duration.ofSeconds(5));
            assertEquals(VhostUserException.Kind.PROTOCOL, e.kind());
            assertTrue(e.getMessage().contains("sent 1 file descriptors with its reply to GET_FEATURES"), e.getMessage());
        } finally {
            LibC.close(efd);
        }
    }

    @Test
    void noReplyEndsInATimeoutNamingTheRequest() throws Throwable {
        long t0 = System.nanoTime();
        VhostUserException e = failingGetFeatures(silence(), Duration.ofMillis(300));
        assertEquals(VhostUserException.Kind.TIMEOUT, e.kind());
        assertEquals("vhost-user back end fake.sock: no reply to GET_FEATURES within 300 ms", e.getMessage());
        assertTrue(System.nanoTime() - t0 >= 290_000_000L, "waited for the timeout");
    }

    @Test
    void aBackEndThatClosesMidReplyIsReportedAsClosed() throws Throwable {
        VhostUserException e = failingGetFeatures((r, s) -> {
            byte[] whole = reply(r.header().request(), VhostUserMessage.u64(1));
            send(s, java.util.Arrays.copyOf(whole, 6));
            s.close();
        }, Duration.ofSeconds(5));
        assertEquals(VhostUserException.Kind.CLOSED, e.kind());
        assertTrue(e.getMessage().contains("closed the connection instead of replying to GET_FEATURES"), e.getMessage());
    }

    @Test
    void aBackEndThatIsGoneFailsTheSendAtOnce() throws Throwable {
        try (FakeBackend fake = new FakeBackend()) {
            fake.expect(GET_FEATURES, (r, s) -> s.close()).start();
            VhostUserFrontend fe = frontEnd(fake, Duration.ofSeconds(5));
            assertThrows(VhostUserException.class, fe::getFeatures);
            fake.finish();
        }
        try (FakeBackend fake = new FakeBackend()) {
            fake.start(); // no steps: its thread ends, then close() closes its end
            fake.finish();
            VhostUserFrontend fe = frontEnd(fake, Duration.ofSeconds(5));
            java.lang.reflect.Field f = FakeBackend.class.getDeclaredField("socket");
            f.setAccessible(true);
            ((dev.jvmm.sys.UnixSocket) f.get(fake)).close();
            VhostUserException e = assertThrows(VhostUserException.class, fe::setOwner);
            assertEquals(VhostUserException.Kind.CLOSED, e.kind());
            assertEquals("vhost-user back end fake.sock: closed the connection (sending SET_OWNER)", e.getMessage());
        }
    }

    @Test
    void aNonZeroAckIsARefusalAndTheConnectionStaysUsable() throws Throwable {
        try (FakeBackend fake = new FakeBackend();
             GuestMemory mem = GuestMemory.allocateShared(List.of(new RamRange(0, 1 << 20)))) {
            fake.expect(GET_FEATURES, u64(VERSION_1 | PROTOCOL_FEATURES)).expect(SET_OWNER)
                    .expect(GET_PROTOCOL_FEATURES, u64(REPLY_ACK)).expect(SET_PROTOCOL_FEATURES)
                    .expect(SET_MEM_TABLE, (r, s) -> send(s, reply(r.header().request(), VhostUserMessage.u64(1))))
                    .expect(SET_MEM_TABLE)
                    .start();
            VhostUserFrontend fe = frontEnd(fake, Duration.ofSeconds(5));
            fe.handshake();
            VhostUserException e = assertThrows(VhostUserException.class, () -> fe.setMemTable(mem));
            assertEquals(VhostUserException.Kind.REFUSED, e.kind());
            assertEquals("vhost-user back end fake.sock: refused SET_MEM_TABLE (REPLY_ACK status 1)", e.getMessage());
            fe.setMemTable(mem);
            fake.finish();
        }
    }

    @Test
    void aVringBaseForAnotherQueueIsAProtocolError() throws Throwable {
        try (FakeBackend fake = new FakeBackend()) {
            fake.expect(GET_VRING_BASE, (r, s) -> send(s, reply(r.header().request(), VhostUserMessage.vringState(1, 0)))).start();
            VhostUserFrontend fe = frontEnd(fake, Duration.ofSeconds(5));
            VhostUserException e = assertThrows(VhostUserException.class, () -> fe.getVringBase(0));
            assertEquals(VhostUserException.Kind.PROTOCOL, e.kind());
            assertTrue(e.getMessage().contains("answered GET_VRING_BASE for queue 0 with queue 1"), e.getMessage());
            fake.finish();
        }
    }

    @Test
    void anonymousMemoryCannotBeHandedToABackEnd() {
        try (GuestMemory mem = GuestMemory.allocate(List.of(new RamRange(0, 1 << 20)))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VhostUserFrontend.memTable(mem));
            assertTrue(e.getMessage().contains("allocateShared"), e.getMessage());
        }
    }

    @Test
    void requestsAreCheckedBeforeTheyAreSent() throws Throwable {
        try (FakeBackend fake = new FakeBackend()) {
            VhostUserFrontend fe = frontEnd(fake, Duration.ofSeconds(5));
            assertThrows(IllegalArgumentException.class, () -> fe.setVringNum(256, 8), "index beyond 8 bits");
            assertThrows(IllegalArgumentException.class, () -> fe.setVringNum(0, 65536));
            assertThrows(IllegalArgumentException.class, () -> fe.setVringBase(0, 65536));
            assertThrows(IllegalStateException.class, fe::getQueueNum, "MQ not negotiated");
            assertThrows(IllegalArgumentException.class, () -> fe.setMemTable(List.of()));
        }
    }
}
