package dev.jvmm.device.virtio;

import org.junit.jupiter.api.Test;

import static dev.jvmm.device.virtio.VsockPacket.*;
import static org.junit.jupiter.api.Assertions.*;

/** The 44-byte header, and {@link VsockPacket#check}'s verdict on every field a hostile guest controls. */
class VsockPacketTest {
    static final long GUEST = 3;

    static VsockPacket pkt(long src, long dst, int op, int len, int type, int flags) {
        return new VsockPacket(src, dst, 1234, 5678, len, type, op, flags, 65536, 0);
    }

    static VsockPacket ok(int op, int len, int flags) {
        return pkt(GUEST, HOST_CID, op, len, TYPE_STREAM, flags);
    }

    @Test
    void encodesLittleEndianAtTheSpecsOffsets() {
        VsockPacket p = new VsockPacket(0x0102030405060708L, 2, 0x11223344, 0x55667788, 0x10, 1, 5, 0x3, 0xaabbccdd, 0x01020304);
        byte[] b = p.encode();
        assertEquals(44, b.length);
        assertEquals(0x08, b[0]);
        assertEquals(0x01, b[7]);
        assertEquals(2, b[8]);
        assertEquals(0x44, b[16]);
        assertEquals((byte) 0x88, b[20]);
        assertEquals(0x10, b[24]);
        assertEquals(1, b[28]);
        assertEquals(5, b[30]);
        assertEquals(3, b[32]);
        assertEquals((byte) 0xdd, b[36]);
        assertEquals(0x04, b[40]);
        assertEquals(p, VsockPacket.decode(b, 0));
        byte[] shifted = new byte[50];
        p.encode(shifted, 6);
        assertEquals(p, VsockPacket.decode(shifted, 6));
    }

    @Test
    void wellFormedPacketsPass() {
        assertEquals(Verdict.OK, ok(OP_REQUEST, 0, 0).check(GUEST, 0).verdict());
        assertEquals(Verdict.OK, ok(OP_RW, 4096, 0).check(GUEST, 4096).verdict());
        assertEquals(Verdict.OK, ok(OP_RW, MAX_PAYLOAD, 0).check(GUEST, MAX_PAYLOAD).verdict());
        assertEquals(Verdict.OK, ok(OP_SHUTDOWN, 0, SHUTDOWN_RCV | SHUTDOWN_SEND).check(GUEST, 0).verdict());
        assertEquals(Verdict.OK, ok(OP_CREDIT_UPDATE, 0, 0).check(GUEST, 0).verdict());
        assertEquals(Verdict.OK, ok(OP_RST, 0, 0).check(GUEST, 0).verdict());
        // bytes beyond len in the chain are ignored
        assertEquals(Verdict.OK, ok(OP_RW, 10, 0).check(GUEST, 100).verdict());
    }

    @Test
    void hostileHeadersAreResetOrDropped() {
        // not from the guest's CID: nobody to answer
        assertEquals(Verdict.DROP, pkt(4, HOST_CID, OP_REQUEST, 0, TYPE_STREAM, 0).check(GUEST, 0).verdict());
        assertEquals(Verdict.DROP, pkt(2, HOST_CID, OP_RW, 0, TYPE_STREAM, 0).check(GUEST, 0).verdict());
        // to another CID than the host's: refused
        Check other = pkt(GUEST, 7, OP_REQUEST, 0, TYPE_STREAM, 0).check(GUEST, 0);
        assertEquals(Verdict.RESET, other.verdict());
        assertTrue(other.reason().contains("dst_cid 7"), other.reason());
        assertEquals(Verdict.RESET, pkt(GUEST, -1L, OP_REQUEST, 0, TYPE_STREAM, 0).check(GUEST, 0).verdict());
        // lengths
        assertTrue(ok(OP_RW, MAX_PAYLOAD + 1, 0).check(GUEST, 1 << 20).reason().contains("more than 65536"));
        assertTrue(ok(OP_RW, -1, 0).check(GUEST, 1 << 20).reason().contains("4294967295"));
        assertTrue(ok(OP_RW, 100, 0).check(GUEST, 99).reason().contains("only 99"));
        assertEquals(Verdict.RESET, ok(OP_REQUEST, 1, 0).check(GUEST, 1).verdict());
        assertEquals(Verdict.RESET, ok(OP_CREDIT_REQUEST, 8, 0).check(GUEST, 8).verdict());
        // ops and types
        for (int op : new int[] {0, 8, 0xffff}) assertTrue(ok(op, 0, 0).check(GUEST, 0).reason().contains("unknown op"), "op " + op);
        assertTrue(pkt(GUEST, HOST_CID, OP_REQUEST, 0, 2, 0).check(GUEST, 0).reason().contains("not STREAM"), "SEQPACKET was not offered");
        assertEquals(Verdict.RESET, pkt(GUEST, HOST_CID, OP_RW, 0, 0, 0).check(GUEST, 0).verdict());
        // flags
        assertEquals(Verdict.RESET, ok(OP_SHUTDOWN, 0, 4).check(GUEST, 0).verdict());
        assertEquals(Verdict.RESET, ok(OP_RW, 0, 1).check(GUEST, 0).verdict());
        assertEquals(Verdict.RESET, ok(OP_REQUEST, 0, SHUTDOWN_SEND).check(GUEST, 0).verdict());
        // an RST is never answered, even a malformed one
        assertEquals(Verdict.DROP, ok(OP_RST, 5, 0).check(GUEST, 5).verdict());
        assertEquals(Verdict.DROP, pkt(GUEST, HOST_CID, OP_RST, 0, 9, 0).check(GUEST, 0).verdict());
    }

    @Test
    void theResetAnswersItsSource() {
        VsockPacket p = pkt(GUEST, 9, OP_REQUEST, 0, TYPE_STREAM, 0);
        VsockPacket r = p.reset();
        assertEquals(9, r.srcCid());
        assertEquals(GUEST, r.dstCid());
        assertEquals(5678, r.srcPort());
        assertEquals(1234, r.dstPort());
        assertEquals(OP_RST, r.op());
        assertEquals(0, r.len());
        assertEquals(TYPE_STREAM, r.type());
    }
}
