package dev.jvmm.host.vsock;

import dev.jvmm.device.virtio.VsockPacket;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SocketIo;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.List;

import static dev.jvmm.device.virtio.VsockPacket.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The connection state machine against a scripted guest (the test hands it packets and takes the
 * packets it makes) and a scripted host stream (bytes in, room for bytes out, end of stream, errors).
 */
class VsockConnectionTest {
    static final long CID = 3;
    static final int GUEST_PORT = 1234, HOST_PORT = 5000, BUF = 64 * 1024;

    /** A host peer: what it will send us, how much more it will take, how it ends. */
    static final class FakeHost implements HostStream {
        final ArrayDeque<Byte> toUs = new ArrayDeque<>();
        final ByteArrayOutputStream got = new ByteArrayOutputStream();
        long room = Long.MAX_VALUE;
        boolean eof, hup, shutWr, closed;
        int writeErrno, readErrno;

        void say(byte[] b) {
            for (byte x : b) toUs.add(x);
        }

        @Override
        public int fd() {
            return -1;
        }

        @Override
        public long read(MemorySegment dst, long len) {
            if (readErrno != 0) return -readErrno;
            if (toUs.isEmpty()) return eof ? 0 : SocketIo.WOULD_BLOCK;
            long n = Math.min(len, toUs.size());
            for (long i = 0; i < n; i++) dst.set(JAVA_BYTE, i, toUs.poll());
            return n;
        }

        @Override
        public long write(MemorySegment src, long len) {
            if (writeErrno != 0) return -writeErrno;
            long n = Math.min(len, room);
            if (n == 0) return SocketIo.WOULD_BLOCK;
            got.write(src.asSlice(0, n).toArray(JAVA_BYTE), 0, (int) n);
            room -= n;
            return n;
        }

        @Override
        public void shutdownWrite() {
            shutWr = true;
        }

        @Override
        public void close() {
            closed = true;
        }

        @Override
        public boolean hungUp() {
            return hup;
        }
    }

    final Arena arena = Arena.ofAuto();
    final MemorySegment rxRoom = arena.allocate(4096);

    static VsockPacket fromGuest(int op, int len, int flags, int bufAlloc, int fwdCnt) {
        return new VsockPacket(CID, HOST_CID, GUEST_PORT, HOST_PORT, len, TYPE_STREAM, op, flags, bufAlloc, fwdCnt);
    }

    List<MemorySegment> payload(byte[] data) {
        MemorySegment s = arena.allocate(Math.max(1, data.length));
        MemorySegment.copy(data, 0, s, JAVA_BYTE, 0, data.length);
        return List.of(s.asSlice(0, data.length));
    }

    void send(VsockConnection c, int op, byte[] data, int flags, int bufAlloc, int fwdCnt) {
        c.fromGuest(fromGuest(op, data.length, flags, bufAlloc, fwdCnt), payload(data));
    }

    VsockPacket next(VsockConnection c) {
        return c.nextPacket(List.of(rxRoom));
    }

    byte[] rxData(VsockPacket p) {
        return rxRoom.asSlice(0, p.len()).toArray(JAVA_BYTE);
    }

    static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (i * 31 + seed);
        return b;
    }

    /** {@link #established} with a guest of 256 KiB credit, a host end with {@code room} bytes of room, then the guest's {@code data}. */
    VsockConnection establishedAndWritten(FakeHost host, int room, byte[] data) {
        VsockConnection c = established(host, 256 * 1024);
        host.room = room;
        send(c, OP_RW, data, 0, 256 * 1024, 0);
        return c;
    }

    /** {@link #established} with a guest of {@code guestBufAlloc}, then the guest's {@code op} (no data, no flags) with {@code fwdCnt}. */
    VsockConnection establishedThen(int op, int guestBufAlloc, int fwdCnt) {
        VsockConnection c = established(new FakeHost(), guestBufAlloc);
        send(c, op, new byte[0], 0, guestBufAlloc, fwdCnt);
        return c;
    }

    /** A guest-initiated connection, established: the REQUEST came with the guest's credit, the RESPONSE went back. */
    VsockConnection established(FakeHost host, int guestBufAlloc) {
        VsockPacket req = fromGuest(OP_REQUEST, 0, 0, guestBufAlloc, 0);
        VsockConnection c = VsockConnection.guestInitiated(req, BUF, host);
        assertEquals(VsockConnection.State.PEER_INIT, c.state());
        assertTrue(c.hasPendingRx());
        VsockPacket resp = next(c);
        assertEquals(OP_RESPONSE, resp.op());
        assertEquals(HOST_CID, resp.srcCid());
        assertEquals(CID, resp.dstCid());
        assertEquals(HOST_PORT, resp.srcPort());
        assertEquals(GUEST_PORT, resp.dstPort());
        assertEquals(BUF, resp.bufAlloc());
        assertEquals(VsockConnection.State.ESTABLISHED, c.state());
        assertNull(next(c));
        return c;
    }

    @Test
    void guestInitiatedRequestResponseAndDataBothWays() {
        FakeHost host = new FakeHost();
        VsockConnection c = established(host, 256 * 1024);
        byte[] up = bytes(3000, 1);
        send(c, OP_RW, up, 0, 256 * 1024, 0);
        assertArrayEquals(up, host.got.toByteArray());
        assertEquals(LibC.POLLIN, c.interest(), "read the host while the guest has credit");
        byte[] down = bytes(5000, 2);
        host.say(down);
        c.hostEvent(LibC.POLLIN);
        assertEquals(0, c.interest(), "readable: not watched until read empty");
        assertTrue(c.hasPendingRx());
        VsockPacket p1 = next(c);
        assertEquals(OP_RW, p1.op());
        assertEquals(4096, p1.len(), "as much as the receive buffer holds");
        assertEquals(3000, p1.fwdCnt(), "the packet tells the guest what the host took");
        byte[] first = rxData(p1);
        VsockPacket p2 = next(c);
        assertEquals(904, p2.len());
        byte[] all = new byte[5000];
        System.arraycopy(first, 0, all, 0, 4096);
        System.arraycopy(rxData(p2), 0, all, 4096, 904);
        assertArrayEquals(down, all);
        assertNull(next(c));
        assertEquals(LibC.POLLIN, c.interest());
    }

    @Test
    void hostBytesStopAtTheGuestsCreditUntilItUpdates() {
        FakeHost host = new FakeHost();
        VsockConnection c = established(host, 6000);
        host.say(bytes(10000, 3));
        c.hostEvent(LibC.POLLIN);
        assertEquals(4096, next(c).len());
        assertEquals(1904, next(c).len(), "only up to buf_alloc");
        assertEquals(0, c.peerCredit());
        VsockPacket ask = next(c);
        assertEquals(OP_CREDIT_REQUEST, ask.op(), "out of credit: ask once");
        assertNull(next(c));
        assertFalse(c.hasPendingRx(), "nothing until the guest's credit comes");
        assertEquals(0, c.interest(), "and the host socket is not even polled: its peer's writes back up");
        send(c, OP_CREDIT_UPDATE, new byte[0], 0, 6000, 4096);
        assertTrue(c.hasPendingRx());
        assertEquals(4000, next(c).len(), "the rest, within the new credit of 4096");
        assertNull(next(c));
        assertEquals(LibC.POLLIN, c.interest(), "read empty: polled again");
    }

    @Test
    void aFwdCntBeyondWhatWasSentIsAReset() {
        VsockConnection c = establishedThen(OP_CREDIT_UPDATE, 6000, 1);
        VsockPacket rst = next(c);
        assertEquals(OP_RST, rst.op());
        assertTrue(c.resetReason().contains("fwd_cnt"), c.resetReason());
        assertEquals(VsockConnection.State.CLOSED, c.state());
        assertTrue(c.hostDone());
    }

    @Test
    void aHostPeerThatStopsReadingFillsTheBufferThenTheGuestsCreditEnds() {
        FakeHost host = new FakeHost();
        byte[] a = bytes(20_000, 4);
        VsockConnection c = establishedAndWritten(host, 1000, a);
        assertEquals(1000, host.got.size());
        assertEquals(19_000, c.buffered());
        assertTrue((c.interest() & LibC.POLLOUT) != 0, "POLLOUT while bytes wait");
        // the guest may send up to its credit of BUF; more is a protocol error
        send(c, OP_RW, bytes(BUF - 20_000, 5), 0, 256 * 1024, 0);
        assertEquals(BUF - 1000, c.buffered());
        assertNull(next(c), "no credit update: the host took almost nothing");
        host.room = Long.MAX_VALUE;
        c.hostEvent(LibC.POLLOUT);
        assertEquals(0, c.buffered());
        assertEquals(BUF, host.got.size());
        VsockPacket update = next(c);
        assertEquals(OP_CREDIT_UPDATE, update.op(), "the guest thought its credit was used up");
        assertEquals(BUF, update.fwdCnt());
        assertEquals(0, c.interest() & LibC.POLLOUT);
        // and beyond the credit
        host.room = 0;
        send(c, OP_RW, bytes(BUF, 6), 0, 256 * 1024, 0);
        assertEquals(BUF, c.buffered());
        send(c, OP_RW, bytes(1, 7), 0, 256 * 1024, 0);
        assertEquals(OP_RST, next(c).op());
        assertTrue(c.resetReason().contains("credit"), c.resetReason());
    }

    @Test
    void guestShutdownHalfClosesTheHostAndBothWaysEndWithRst() {
        FakeHost host = new FakeHost();
        VsockConnection c = establishedAndWritten(host, 10, bytes(100, 8));
        send(c, OP_SHUTDOWN, new byte[0], SHUTDOWN_SEND, 256 * 1024, 0);
        assertFalse(host.shutWr, "not before the buffered bytes are written");
        host.room = Long.MAX_VALUE;
        c.hostEvent(LibC.POLLOUT);
        assertTrue(host.shutWr, "the host peer reads end-of-stream");
        assertEquals(100, host.got.size());
        // the host can still talk
        host.say(bytes(10, 9));
        c.hostEvent(LibC.POLLIN);
        assertEquals(10, next(c).len());
        send(c, OP_SHUTDOWN, new byte[0], SHUTDOWN_RCV, 256 * 1024, 10);
        assertTrue(c.hostDone(), "both ways done: the host socket goes");
        VsockPacket rst = next(c);
        assertEquals(OP_RST, rst.op());
        assertEquals(VsockConnection.State.CLOSED, c.state());
        assertNull(c.resetReason(), "an orderly end");
    }

    @Test
    void hostEndOfStreamIsShutdownSendOrBothWhenItHungUp() {
        FakeHost host = new FakeHost();
        VsockConnection c = established(host, 256 * 1024);
        host.say(bytes(7, 1));
        host.eof = true;
        c.hostEvent(LibC.POLLIN);
        assertEquals(7, next(c).len());
        assertNull(next(c), "a short read: the end shows at the next poll");
        assertEquals(LibC.POLLIN, c.interest());
        c.hostEvent(LibC.POLLIN);
        VsockPacket sd = next(c);
        assertEquals(OP_SHUTDOWN, sd.op());
        assertEquals(SHUTDOWN_SEND, sd.flags(), "half-closed: the guest may still send");
        assertFalse(c.hostDone());
        send(c, OP_RW, bytes(5, 2), 0, 256 * 1024, 7);
        assertEquals(5, host.got.size());

        FakeHost gone = new FakeHost();
        VsockConnection d = established(gone, 256 * 1024);
        gone.eof = true;
        gone.hup = true;
        d.hostEvent((short) (LibC.POLLIN | LibC.POLLHUP));
        VsockPacket both = next(d);
        assertEquals(OP_SHUTDOWN, both.op());
        assertEquals(SHUTDOWN_SEND | SHUTDOWN_RCV, both.flags());
        assertTrue(d.hostDone(), "nothing more to do with the host socket");
        send(d, OP_RST, new byte[0], 0, 0, 0);
        assertEquals(VsockConnection.State.CLOSED, d.state());
        assertNull(next(d));
    }

    @Test
    void aGuestResetStillWritesWhatItSent() {
        FakeHost host = new FakeHost();
        VsockConnection c = establishedAndWritten(host, 0, bytes(50, 3));
        send(c, OP_RST, new byte[0], 0, 256 * 1024, 0);
        assertNotEquals(VsockConnection.State.CLOSED, c.state());
        assertTrue(c.guestGone());
        assertNotEquals(0, c.expiry(), "for a while");
        assertNull(next(c), "no RST back to an RST");
        host.room = Long.MAX_VALUE;
        c.hostEvent(LibC.POLLOUT);
        assertEquals(50, host.got.size());
        assertEquals(VsockConnection.State.CLOSED, c.state());

        // an immediate close when nothing waits
        VsockConnection d = established(new FakeHost(), 256 * 1024);
        send(d, OP_RST, new byte[0], 0, 256 * 1024, 0);
        assertEquals(VsockConnection.State.CLOSED, d.state());
    }

    @Test
    void hostInitiatedRequestThenOkOrRefused() {
        FakeHost host = new FakeHost();
        VsockConnection c = VsockConnection.hostInitiated(1 << 30, 52, CID, BUF, host);
        assertEquals(VsockConnection.State.LOCAL_INIT, c.state());
        VsockPacket req = next(c);
        assertEquals(OP_REQUEST, req.op());
        assertEquals(1 << 30, req.srcPort());
        assertEquals(52, req.dstPort());
        assertNotEquals(0, c.expiry(), "the guest has a while to answer");
        assertEquals(0, c.interest(), "the host program's bytes wait until the guest answers");
        c.fromGuest(new VsockPacket(CID, HOST_CID, 52, 1 << 30, 0, TYPE_STREAM, OP_RESPONSE, 0, 4096, 0), List.of());
        assertEquals(VsockConnection.State.ESTABLISHED, c.state());
        assertEquals("OK 1073741824\n", host.got.toString(StandardCharsets.US_ASCII));
        assertEquals(0, c.expiry());

        FakeHost refused = new FakeHost();
        VsockConnection d = VsockConnection.hostInitiated((1 << 30) + 1, 53, CID, BUF, refused);
        assertEquals(OP_REQUEST, next(d).op());
        d.fromGuest(new VsockPacket(CID, HOST_CID, 53, (1 << 30) + 1, 0, TYPE_STREAM, OP_RST, 0, 0, 0), List.of());
        assertEquals(VsockConnection.State.CLOSED, d.state());
        assertTrue(d.hostDone(), "the host program's socket is closed");
        assertEquals(0, refused.got.size());

        VsockConnection e = VsockConnection.hostInitiated((1 << 30) + 2, 54, CID, BUF, new FakeHost());
        assertEquals(OP_REQUEST, next(e).op());
        e.expire();
        assertEquals(OP_RST, next(e).op(), "no answer in time: reset");
        assertTrue(e.resetReason().contains("did not answer"));
    }

    @Test
    void packetsOutOfTurnAreResets() {
        VsockConnection c = VsockConnection.hostInitiated(1 << 30, 52, CID, BUF, new FakeHost());
        next(c);
        c.fromGuest(new VsockPacket(CID, HOST_CID, 52, 1 << 30, 3, TYPE_STREAM, OP_RW, 0, 4096, 0), payload(new byte[3]));
        assertEquals(OP_RST, next(c).op(), "data before the RESPONSE");

        VsockConnection d = establishedThen(OP_RESPONSE, 4096, 0);
        assertEquals(OP_RST, next(d).op(), "a RESPONSE on an established connection");

        VsockConnection e = established(new FakeHost(), 4096);
        send(e, OP_SHUTDOWN, new byte[0], SHUTDOWN_SEND, 4096, 0);
        send(e, OP_RW, new byte[1], 0, 4096, 0);
        assertEquals(OP_RST, next(e).op(), "data after SHUTDOWN(SEND)");
        assertTrue(e.resetReason().contains("SHUTDOWN"), e.resetReason());

        FakeHost broken = new FakeHost();
        VsockConnection f = established(broken, 4096);
        broken.writeErrno = 32; // EPIPE
        send(f, OP_RW, new byte[1], 0, 4096, 0);
        assertEquals(OP_RST, next(f).op(), "the host peer is gone");

        FakeHost aborted = new FakeHost();
        VsockConnection g = established(aborted, 4096);
        aborted.readErrno = 104; // ECONNRESET
        g.hostEvent(LibC.POLLIN);
        assertEquals(OP_RST, next(g).op());
    }

    @Test
    void creditRequestGetsAnUpdate() {
        VsockConnection c = establishedThen(OP_CREDIT_REQUEST, 4096, 0);
        VsockPacket u = next(c);
        assertEquals(OP_CREDIT_UPDATE, u.op());
        assertEquals(BUF, u.bufAlloc());
        assertEquals(0, u.fwdCnt());
    }
}
