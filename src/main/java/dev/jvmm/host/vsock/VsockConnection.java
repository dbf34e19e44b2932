package dev.jvmm.host.vsock;

import dev.jvmm.device.virtio.VsockPacket;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SocketIo;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static dev.jvmm.device.virtio.VsockPacket.*;

/**
 * One vsock stream between a guest port and a host stream ({@link HostStream}): the connection
 * state machine of virtio 1.2 section 5.10.6 with its credit-based flow control, and nothing else
 * (no virtqueues, no descriptors: the muxer hands packets in and asks for packets to send, so the
 * machine can be driven by a scripted peer).
 *
 * <p><b>States.</b> LOCAL_INIT: the host connected and wrote CONNECT; a REQUEST goes to the guest
 * and the machine waits for its RESPONSE (then {@code OK <port>\n} goes to the host program) or RST
 * (refused). PEER_INIT: the guest's REQUEST was taken (the host socket is connected); a RESPONSE
 * goes back. ESTABLISHED: data both ways until each side has shut down. CLOSED: forgotten.
 *
 * <p><b>Flow control.</b> Guest to host: the guest may have at most {@link #bufAlloc} bytes in
 * flight. They are written straight to the host socket; what it does not take waits in a
 * {@link TxBuffer} of that size, so a guest that keeps to its credit never overflows it and one
 * that does not is reset. {@code fwd_cnt} counts bytes the host socket took; every packet to the
 * guest carries it, and a CREDIT_UPDATE goes out on its own when the guest believes more than half
 * the buffer is in use and the host has taken a quarter of it since. A host peer that stops reading
 * fills its socket, then the buffer, then the guest's credit runs out and the guest's writes on
 * this connection block: nothing else waits. Host to guest: bytes are read from the host socket
 * only into a receive buffer the guest gave and only as far as the guest's credit
 * ({@code buf_alloc - (sent - fwd_cnt)}, both from the guest) reaches; with no credit left the
 * machine asks once (CREDIT_REQUEST) and stops reading the socket, so the host program's writes
 * back up in its own socket. Nothing is buffered on this side at all.
 *
 * <p><b>Shutdown.</b> End of stream from the host is SHUTDOWN(SEND) to the guest, with RCV as well
 * when the host peer closed both ways (poll said POLLHUP). The guest's SHUTDOWN(SEND) becomes
 * shutdown(SHUT_WR) on the host socket once the buffer is written; when the guest has shut down
 * both ways and everything is written, the host socket is closed and an RST ends the connection.
 * A guest RST ends it at once, except that bytes already taken from the guest are still written
 * (for at most {@link #DRAIN_NANOS}). Protocol errors (data beyond the credit, a fwd_cnt beyond what
 * was sent, data before the handshake or after SHUTDOWN(SEND), a RESPONSE out of turn) and host
 * socket errors reset the connection: RST to the guest, host socket closed.
 *
 * <p>Single-threaded: the muxer calls it on the event loop with the device lock held.
 */
final class VsockConnection {
    enum State { LOCAL_INIT, PEER_INIT, ESTABLISHED, CLOSED }

    /** How long the guest has to answer a REQUEST (Firecracker gives 2 s; a busy nested guest gets more). */
    static final long REQUEST_NANOS = 5_000_000_000L;
    /** How long buffered guest bytes may take to reach a host peer after the guest closed. */
    static final long DRAIN_NANOS = 10_000_000_000L;

    // pending packets to the guest
    private static final int P_REQUEST = 1, P_RESPONSE = 2, P_RST = 4, P_SHUTDOWN = 8, P_CREDIT_UPDATE = 16, P_CREDIT_REQUEST = 32;

    final int localPort;
    final int peerPort;
    final long guestCid;
    final boolean hostInitiated;
    final int bufAlloc;
    final HostStream host;
    private final TxBuffer tx;

    private State state;
    private int pending;
    private int shutdownFlags;
    private boolean guestNoRecv, guestNoSend;
    private boolean hostEof, hostHup, hostWriteShut;
    private boolean hostDone;
    private boolean guestGone;
    private boolean hostReadable;
    private boolean creditRequested;
    private String resetReason;
    private long expiry;

    // credit, all u32 arithmetic
    private int fwdCnt;          // guest bytes the host socket took
    private int lastSentFwdCnt;  // fwd_cnt in our last packet to the guest
    private int fromGuest;       // guest bytes taken (written or buffered)
    private int peerBufAlloc;
    private int peerFwdCnt;
    private int toGuest;         // bytes sent to the guest

    // totals for stats
    long bytesToHost, bytesToGuest;

    // muxer bookkeeping
    short watched;
    boolean inRxQueue;
    boolean released;

    private VsockConnection(State state, int localPort, int peerPort, long guestCid, boolean hostInitiated, int bufAlloc, HostStream host) {
        this.state = state;
        this.localPort = localPort;
        this.peerPort = peerPort;
        this.guestCid = guestCid;
        this.hostInitiated = hostInitiated;
        this.bufAlloc = bufAlloc;
        this.host = host;
        this.tx = new TxBuffer(bufAlloc);
    }

    /** A host program asked for guest port {@code guestPort}; {@code localPort} is the host end's. A REQUEST is pending. */
    static VsockConnection hostInitiated(int localPort, int guestPort, long guestCid, int bufAlloc, HostStream host) {
        VsockConnection c = new VsockConnection(State.LOCAL_INIT, localPort, guestPort, guestCid, true, bufAlloc, host);
        c.pending = P_REQUEST;
        return c;
    }

    /** The guest's {@code request} was connected to {@code host}. A RESPONSE is pending. */
    static VsockConnection guestInitiated(VsockPacket request, int bufAlloc, HostStream host) {
        VsockConnection c = new VsockConnection(State.PEER_INIT, request.dstPort(), request.srcPort(), request.srcCid(), false, bufAlloc, host);
        c.peerBufAlloc = request.bufAlloc();
        c.peerFwdCnt = request.fwdCnt();
        c.pending = P_RESPONSE;
        return c;
    }

    State state() {
        return state;
    }

    /** Why the connection was reset, or null. */
    String resetReason() {
        return resetReason;
    }

    /** System.nanoTime() by which something must have happened (0: nothing is due). */
    long expiry() {
        return expiry;
    }

    /** Whether the host socket is finished with: the muxer stops watching and closes it. */
    boolean hostDone() {
        return hostDone;
    }

    /** The guest sent RST while bytes it sent before were still being written to the host. */
    boolean guestGone() {
        return guestGone;
    }

    int buffered() {
        return tx.size();
    }

    /** The guest's credit for bytes to it: what it has room for. */
    long peerCredit() {
        long inFlight = Integer.toUnsignedLong(toGuest - peerFwdCnt);
        return Math.max(0, Integer.toUnsignedLong(peerBufAlloc) - inFlight);
    }

    // ---- from the guest ----

    /**
     * Takes a well-formed ({@link VsockPacket#check}) packet of this connection other than REQUEST
     * (the muxer decides about those); {@code payload} holds its {@code len} bytes.
     */
    void fromGuest(VsockPacket p, List<MemorySegment> payload) {
        if (state == State.CLOSED) return;
        if (guestGone) return; // the guest already forgot it
        // every packet carries the guest's credit; a fwd_cnt past what we sent is a lie
        long advance = Integer.toUnsignedLong(p.fwdCnt() - peerFwdCnt);
        if (advance > Integer.toUnsignedLong(toGuest - peerFwdCnt)) {
            reset("fwd_cnt " + Integer.toUnsignedString(p.fwdCnt()) + " is more than the " + Integer.toUnsignedString(toGuest) + " bytes sent");
            return;
        }
        peerFwdCnt = p.fwdCnt();
        peerBufAlloc = p.bufAlloc();
        if (peerCredit() > 0) creditRequested = false;
        switch (p.op()) {
            case OP_RST -> guestReset();
            case OP_RESPONSE -> {
                if (state != State.LOCAL_INIT) {
                    reset("RESPONSE in state " + state);
                    return;
                }
                state = State.ESTABLISHED;
                expiry = 0;
                byte[] ok = ("OK " + Integer.toUnsignedString(localPort) + "\n").getBytes(StandardCharsets.US_ASCII);
                try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                    MemorySegment s = a.allocateFrom(java.lang.foreign.ValueLayout.JAVA_BYTE, ok);
                    // a fresh socket has room for a dozen bytes; if not, something is badly wrong
                    if (host.write(s, ok.length) != ok.length) reset("cannot write OK to the host program");
                }
            }
            case OP_RW -> guestData(p, payload);
            case OP_SHUTDOWN -> {
                if (state != State.ESTABLISHED) {
                    reset("SHUTDOWN in state " + state);
                    return;
                }
                guestNoRecv |= (p.flags() & SHUTDOWN_RCV) != 0;
                guestNoSend |= (p.flags() & SHUTDOWN_SEND) != 0;
                if (guestNoRecv) hostReadable = false;
                afterTx();
            }
            case OP_CREDIT_UPDATE -> { } // taken above
            case OP_CREDIT_REQUEST -> {
                if (state == State.ESTABLISHED || state == State.PEER_INIT) pending |= P_CREDIT_UPDATE;
            }
            default -> reset(opName(p.op()) + " on an open connection");
        }
        maybeCreditUpdate();
    }

    private void guestData(VsockPacket p, List<MemorySegment> payload) {
        if (state != State.ESTABLISHED || guestNoSend) {
            reset("data in state " + state + (guestNoSend ? " after SHUTDOWN(SEND)" : ""));
            return;
        }
        long n = p.payloadLength();
        if (n == 0) return;
        if (n > tx.free()) {
            reset("the guest sent " + n + " bytes with " + tx.free() + " of credit");
            return;
        }
        if (hostDone || hostWriteShut) {
            reset("data for a host peer that is gone");
            return;
        }
        fromGuest += (int) n;
        for (MemorySegment s : payload) {
            long off = 0;
            if (tx.isEmpty()) {
                long w = host.write(s, s.byteSize());
                if (w < 0 && w != SocketIo.WOULD_BLOCK) {
                    reset("host socket: " + LibC.strerror((int) -w));
                    return;
                }
                if (w > 0) {
                    off = w;
                    wroteToHost(w);
                }
            }
            if (off < s.byteSize()) tx.append(s.asSlice(off));
        }
    }

    private void wroteToHost(long n) {
        fwdCnt += (int) n;
        bytesToHost += n;
    }

    /** The guest sent RST: forget it, but write what it already sent. */
    private void guestReset() {
        pending = 0;
        hostReadable = false;
        if (tx.isEmpty() || hostDone) {
            close();
        } else {
            guestGone = true;
            expiry = System.nanoTime() + DRAIN_NANOS;
        }
    }

    /** After bytes went to the host (or the guest shut down): half-close, finish, or drop the connection. */
    private void afterTx() {
        if (state == State.CLOSED) return;
        if (!tx.isEmpty()) {
            // the guest is done but the host peer has not taken everything yet: give it a while
            if (guestNoSend && guestNoRecv && expiry == 0) expiry = System.nanoTime() + DRAIN_NANOS;
            return;
        }
        if (guestGone) {
            close();
            return;
        }
        if (guestNoSend && !hostWriteShut && !hostDone) {
            hostWriteShut = true;
            host.shutdownWrite(); // the host peer reads end-of-stream after the last byte
        }
        if (guestNoSend && guestNoRecv) {
            hostDone = true;
            hostReadable = false;
            pending = P_RST; // both ways are done: our RST ends it
            expiry = 0;
        }
    }

    private void maybeCreditUpdate() {
        if (state != State.ESTABLISHED || guestNoSend || guestGone) return;
        // only when the guest believes it is running short and a worthwhile amount has been freed
        long believedUsed = Integer.toUnsignedLong(fromGuest - lastSentFwdCnt);
        long freed = Integer.toUnsignedLong(fwdCnt - lastSentFwdCnt);
        if (believedUsed > bufAlloc / 2 && freed >= bufAlloc / 4) pending |= P_CREDIT_UPDATE;
    }

    // ---- events on the host socket ----

    /** What poll(2) events the host socket should be watched for now (0: none). */
    short interest() {
        if (hostDone || state == State.CLOSED) return 0;
        short ev = 0;
        if (canSendData() && !hostReadable) ev |= LibC.POLLIN;
        if (!tx.isEmpty()) ev |= LibC.POLLOUT;
        return ev;
    }

    /** poll(2) reported {@code revents} on the host socket. */
    void hostEvent(short revents) {
        if (state == State.CLOSED || hostDone) return;
        if ((revents & (LibC.POLLIN | LibC.POLLHUP | LibC.POLLERR)) != 0 && canSendData()) {
            hostReadable = true;
            if ((revents & LibC.POLLHUP) != 0) hostHup = true;
        }
        if (!tx.isEmpty() && (revents & (LibC.POLLOUT | LibC.POLLHUP | LibC.POLLERR)) != 0) flush();
    }

    /** Writes buffered guest bytes to the host socket until it is full. */
    void flush() {
        MemorySegment s;
        while ((s = tx.readable()) != null) {
            long w = host.write(s, s.byteSize());
            if (w == SocketIo.WOULD_BLOCK) break;
            if (w < 0) {
                if (guestGone) close();
                else reset("host socket: " + LibC.strerror((int) -w));
                return;
            }
            tx.consume((int) w);
            wroteToHost(w);
        }
        afterTx();
        maybeCreditUpdate();
    }

    /** Time's up for what {@link #expiry} was waiting for. */
    void expire() {
        if (state == State.CLOSED || expiry == 0) return;
        expiry = 0;
        if (guestGone) close();
        else reset(state == State.LOCAL_INIT ? "the guest did not answer the REQUEST" : "the host peer did not take the last bytes in time");
    }

    // ---- to the guest ----

    private boolean canSendData() {
        return state == State.ESTABLISHED && !guestNoRecv && !hostEof && !guestGone && !hostDone;
    }

    /** Whether {@link #nextPacket} has something to give now. */
    boolean hasPendingRx() {
        if (state == State.CLOSED) return false;
        if (pending != 0) return true;
        return hostReadable && canSendData() && (peerCredit() > 0 || !creditRequested);
    }

    /**
     * The next packet for the guest, or null. {@code room} is a receive buffer's payload space (at
     * most {@link VsockPacket#MAX_PAYLOAD}); an RW packet's bytes are read from the host socket
     * straight into it.
     */
    VsockPacket nextPacket(List<MemorySegment> room) {
        if (state == State.CLOSED) return null;
        if ((pending & P_RST) != 0) {
            pending = 0;
            close();
            return header(OP_RST, 0, 0);
        }
        if ((pending & P_REQUEST) != 0) {
            pending &= ~P_REQUEST;
            expiry = System.nanoTime() + REQUEST_NANOS;
            return header(OP_REQUEST, 0, 0);
        }
        if ((pending & P_RESPONSE) != 0) {
            pending &= ~P_RESPONSE;
            state = State.ESTABLISHED;
            return header(OP_RESPONSE, 0, 0);
        }
        if (hostReadable && canSendData()) {
            long credit = peerCredit();
            if (credit == 0) {
                if (!creditRequested) {
                    creditRequested = true;
                    pending |= P_CREDIT_REQUEST;
                }
            } else {
                VsockPacket data = readHost(room, credit);
                if (data != null) return data;
                if ((pending & P_RST) != 0) return nextPacket(room); // the read found the socket reset
            }
        }
        if ((pending & P_SHUTDOWN) != 0) {
            pending &= ~P_SHUTDOWN;
            return header(OP_SHUTDOWN, 0, shutdownFlags);
        }
        if ((pending & P_CREDIT_REQUEST) != 0) {
            pending &= ~P_CREDIT_REQUEST;
            return header(OP_CREDIT_REQUEST, 0, 0);
        }
        if ((pending & P_CREDIT_UPDATE) != 0) {
            pending &= ~P_CREDIT_UPDATE;
            return header(OP_CREDIT_UPDATE, 0, 0);
        }
        return null;
    }

    /** Reads at most {@code credit} bytes from the host into {@code room}: an RW packet, or null (nothing there; a SHUTDOWN may be pending now). */
    private VsockPacket readHost(List<MemorySegment> room, long credit) {
        long got = 0;
        long want = 0;
        for (MemorySegment s : room) {
            long ask = Math.min(s.byteSize(), credit - got);
            if (ask <= 0) break;
            want += ask;
            long r = host.read(s, ask);
            if (r == SocketIo.WOULD_BLOCK) {
                hostReadable = false;
                break;
            }
            if (r < 0) { // ECONNRESET: the host program aborted
                if (got > 0) {
                    hostReadable = false; // the next read reports it again
                    break;
                }
                reset("host socket: " + LibC.strerror((int) -r));
                return null;
            }
            if (r == 0) {
                if (got == 0) hostEnded();
                else hostReadable = true; // the end comes with the next read
                break;
            }
            got += r;
            if (r < ask) { // the socket is probably empty: let poll say when there is more
                hostReadable = false;
                break;
            }
        }
        if (got == 0) return null;
        toGuest += (int) got;
        bytesToGuest += got;
        return header(OP_RW, (int) got, 0);
    }

    /** End of stream from the host peer: tell the guest we send no more (and receive no more if it is gone both ways). */
    private void hostEnded() {
        hostEof = true;
        hostReadable = false;
        if (!hostHup && host.hungUp()) hostHup = true;
        shutdownFlags |= SHUTDOWN_SEND;
        if (hostHup || hostWriteShut) {
            shutdownFlags |= SHUTDOWN_RCV;
            if (tx.isEmpty()) hostDone = true; // nothing more to write to it either
        }
        pending |= P_SHUTDOWN;
    }

    private VsockPacket header(int op, int len, int flags) {
        lastSentFwdCnt = fwdCnt; // every packet tells the guest what the host took
        if (op != OP_CREDIT_UPDATE) pending &= ~P_CREDIT_UPDATE;
        return new VsockPacket(HOST_CID, guestCid, localPort, peerPort, len, TYPE_STREAM, op, flags, bufAlloc, fwdCnt);
    }

    // ---- endings ----

    /** Ends the connection for a protocol or socket error: RST to the guest, host socket closed. */
    void reset(String why) {
        if (state == State.CLOSED) return;
        if (resetReason == null) resetReason = why;
        hostDone = true;
        hostReadable = false;
        guestGone = false;
        expiry = 0;
        pending = P_RST;
        tx.release();
    }

    /** Forgets the connection without telling the guest (it already knows, or is gone). */
    void close() {
        state = State.CLOSED;
        hostDone = true;
        hostReadable = false;
        pending = 0;
        expiry = 0;
        tx.release();
    }

    @Override
    public String toString() {
        return "vsock " + (hostInitiated ? "host" : "guest") + "-initiated " + Integer.toUnsignedString(localPort) + "<->"
                + guestCid + ":" + Integer.toUnsignedString(peerPort) + " " + state;
    }
}
