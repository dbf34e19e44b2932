package dev.jvmm.device.virtio;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The header of a virtio-vsock packet ({@code struct virtio_vsock_hdr}, virtio 1.2 section 5.10.6,
 * 44 bytes, little-endian): {@code le64 src_cid, le64 dst_cid, le32 src_port, le32 dst_port, le32 len,
 * le16 type, le16 op, le32 flags, le32 buf_alloc, le32 fwd_cnt}. The payload ({@code len} bytes,
 * {@code op == RW} only) follows it in the same descriptor chain.
 *
 * <p>Ports, lengths and counters are u32 values held in ints (compare them unsigned); CIDs are u64
 * (their upper 32 bits are reserved and zero).
 *
 * <p>{@link #check} is the one place a guest's header is judged: every field is looked at before
 * anything acts on the packet.
 */
public record VsockPacket(long srcCid, long dstCid, int srcPort, int dstPort, int len, int type, int op, int flags,
                          int bufAlloc, int fwdCnt) {
    public static final int HEADER_BYTES = 44;
    /** The largest payload either side puts in one packet (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
    public static final int MAX_PAYLOAD = 64 * 1024;
    /** The host's CID: the only destination this device serves. */
    public static final long HOST_CID = 2;

    public static final int TYPE_STREAM = 1;
    public static final int OP_REQUEST = 1, OP_RESPONSE = 2, OP_RST = 3, OP_SHUTDOWN = 4, OP_RW = 5,
            OP_CREDIT_UPDATE = 6, OP_CREDIT_REQUEST = 7;
    /** SHUTDOWN flags, from the sender's side: it will receive no more / send no more. */
    public static final int SHUTDOWN_RCV = 1, SHUTDOWN_SEND = 2;

    /** What to do with a packet from the guest. */
    public enum Verdict {
        /** Well-formed: route it. */
        OK,
        /** Unanswerable (not from the guest's CID, or a malformed RST): count it and drop it. */
        DROP,
        /** Malformed: answer with an RST (and end the connection it belongs to). */
        RESET
    }

    /** A verdict and, unless OK, why (for logs and tests). */
    public record Check(Verdict verdict, String reason) {
        static final Check OK = new Check(Verdict.OK, null);
    }

    /** Reads a header from the first {@link #HEADER_BYTES} of {@code b} at {@code off}. */
    public static VsockPacket decode(byte[] b, int off) {
        ByteBuffer h = ByteBuffer.wrap(b, off, HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        return new VsockPacket(h.getLong(off), h.getLong(off + 8), h.getInt(off + 16), h.getInt(off + 20), h.getInt(off + 24),
                Short.toUnsignedInt(h.getShort(off + 28)), Short.toUnsignedInt(h.getShort(off + 30)), h.getInt(off + 32),
                h.getInt(off + 36), h.getInt(off + 40));
    }

    /** Writes this header into {@code b[off, off + HEADER_BYTES)}. */
    public void encode(byte[] b, int off) {
        ByteBuffer h = ByteBuffer.wrap(b, off, HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        h.putLong(off, srcCid).putLong(off + 8, dstCid).putInt(off + 16, srcPort).putInt(off + 20, dstPort).putInt(off + 24, len)
                .putShort(off + 28, (short) type).putShort(off + 30, (short) op).putInt(off + 32, flags)
                .putInt(off + 36, bufAlloc).putInt(off + 40, fwdCnt);
    }

    public byte[] encode() {
        byte[] b = new byte[HEADER_BYTES];
        encode(b, 0);
        return b;
    }

    /** The RST that answers this packet: from its destination back to its source. */
    public VsockPacket reset() {
        return new VsockPacket(dstCid, srcCid, dstPort, srcPort, 0, TYPE_STREAM, OP_RST, 0, 0, 0);
    }

    /** The payload length as a long (len is a u32). */
    public long payloadLength() {
        return Integer.toUnsignedLong(len);
    }

    /**
     * Judges a packet the guest (CID {@code guestCid}) put on its transmit queue, with
     * {@code payloadBytes} readable bytes after the header. In order: it must come from the guest's CID
     * (else there is no one to answer: DROP); an RST is never answered (malformed ones are dropped);
     * then the type must be STREAM, the op known, {@code len} at most {@link #MAX_PAYLOAD} and present
     * in the chain, zero except for RW, flags only SHUTDOWN's RCV/SEND bits on SHUTDOWN and zero
     * otherwise, and the destination the host (else RESET).
     */
    public Check check(long guestCid, long payloadBytes) {
        if (srcCid != guestCid) return new Check(Verdict.DROP, "src_cid " + Long.toUnsignedString(srcCid) + " is not the guest's CID " + guestCid);
        String bad = problem(payloadBytes);
        if (op == OP_RST) return bad == null ? Check.OK : new Check(Verdict.DROP, "malformed RST: " + bad);
        if (bad != null) return new Check(Verdict.RESET, bad);
        if (dstCid != HOST_CID) return new Check(Verdict.RESET, "dst_cid " + Long.toUnsignedString(dstCid) + " is not the host (2)");
        return Check.OK;
    }

    private String problem(long payloadBytes) {
        if (type != TYPE_STREAM) return "type " + type + " is not STREAM (1)";
        if (op < OP_REQUEST || op > OP_CREDIT_REQUEST) return "unknown op " + op;
        long n = payloadLength();
        if (n > MAX_PAYLOAD) return "len " + n + " is more than " + MAX_PAYLOAD;
        if (n > payloadBytes) return "len " + n + " but only " + payloadBytes + " payload bytes in the chain";
        if (op != OP_RW && n != 0) return opName(op) + " with len " + n;
        if (op == OP_SHUTDOWN ? (flags & ~(SHUTDOWN_RCV | SHUTDOWN_SEND)) != 0 : flags != 0) {
            return opName(op) + " with flags 0x" + Integer.toHexString(flags);
        }
        return null;
    }

    public static String opName(int op) {
        return switch (op) {
            case OP_REQUEST -> "REQUEST"; case OP_RESPONSE -> "RESPONSE"; case OP_RST -> "RST"; case OP_SHUTDOWN -> "SHUTDOWN";
            case OP_RW -> "RW"; case OP_CREDIT_UPDATE -> "CREDIT_UPDATE"; case OP_CREDIT_REQUEST -> "CREDIT_REQUEST";
            default -> "op " + op;
        };
    }

    @Override
    public String toString() {
        return opName(op) + "[" + Long.toUnsignedString(srcCid) + ":" + Integer.toUnsignedString(srcPort) + " -> "
                + Long.toUnsignedString(dstCid) + ":" + Integer.toUnsignedString(dstPort) + ", len " + payloadLength() + ", type " + type
                + ", flags 0x" + Integer.toHexString(flags) + ", buf_alloc " + Integer.toUnsignedString(bufAlloc) + ", fwd_cnt "
                + Integer.toUnsignedString(fwdCnt) + "]";
    }
}
