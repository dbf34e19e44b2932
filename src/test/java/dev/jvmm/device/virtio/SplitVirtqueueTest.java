package dev.jvmm.device.virtio;

import dev.jvmm.device.virtio.TestDriver.Buf;
import org.junit.jupiter.api.Test;

import static dev.jvmm.device.virtio.SplitVirtqueue.*;
import static org.junit.jupiter.api.Assertions.*;

class SplitVirtqueueTest {
    static final long ALL = (1L << F_INDIRECT_DESC) | (1L << F_EVENT_IDX);

    /** A driver helper used only for its ring-writing methods, plus a queue over its memory. */
    final TestDriver d = new TestDriver(new VirtioRng());

    SplitVirtqueue queue(int size, long features) throws VirtqueueException {
        d.qsize = size;
        return new SplitVirtqueue(d.mem, size, TestDriver.descAddr(0), TestDriver.availAddr(0), TestDriver.usedAddr(0), features);
    }

    String brokenBy(SplitVirtqueue q) {
        VirtqueueException e = assertThrows(VirtqueueException.class, q::pop);
        assertTrue(q.isBroken());
        assertThrows(VirtqueueException.class, q::pop, "stays broken");
        return e.getMessage();
    }

    /** A new queue over the same rings, the driver's available index back at 0. */
    SplitVirtqueue requeue(long features) throws VirtqueueException {
        SplitVirtqueue q = queue(8, features);
        d.availIdx[0] = 0;
        return q;
    }

    /** Descriptor 0 of the table set to {@code addr, len, flags, next} and made available as the only head. */
    void publishHead(long addr, long len, int flags, int next) {
        d.writeDesc(TestDriver.descAddr(0), 0, addr, len, flags, next);
        d.publish(0, 0);
    }

    @Test
    void emptyQueuePopsNull() throws Exception {
        assertNull(queue(8, 0).pop());
    }

    @Test
    void chainWithNext() throws Exception {
        SplitVirtqueue q = queue(8, 0);
        d.submit(0, Buf.r(0x100000, 16), Buf.r(0x100100, 100), Buf.w(0x100200, 50), Buf.w(0x100300, 1));
        DescriptorChain c = q.pop();
        assertEquals(0, c.head());
        assertEquals(2, c.readable().size());
        assertEquals(2, c.writable().size());
        assertEquals(116, c.readableLength());
        assertEquals(51, c.writableLength());
        assertEquals(new DescriptorChain.Buffer(0x100100, 100), c.readable().get(1));
        assertNull(q.pop());
        q.addUsed(c, 51);
        assertEquals(1, d.usedIdx(0));
        assertEquals(0, d.usedId(0, 0));
        assertEquals(51, d.usedLen(0, 0));
    }

    @Test
    void readAndWriteAcrossBuffers() throws Exception {
        SplitVirtqueue q = queue(8, 0);
        d.mem.write(0x100000, new byte[] {1, 2, 3});
        d.mem.write(0x100100, new byte[] {4, 5});
        d.submit(0, Buf.r(0x100000, 3), Buf.r(0x100100, 2), Buf.w(0x100200, 2), Buf.w(0x100300, 4));
        DescriptorChain c = q.pop();
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5}, c.readAll(100));
        assertArrayEquals(new byte[] {1, 2, 3, 4}, c.readAll(4));
        byte[] mid = new byte[3];
        assertEquals(3, c.read(2, mid, 0, 3));
        assertArrayEquals(new byte[] {3, 4, 5}, mid);
        assertEquals(6, c.write(new byte[] {9, 8, 7, 6, 5, 4, 3}));
        assertArrayEquals(new byte[] {9, 8}, d.mem.read(0x100200, 2));
        assertArrayEquals(new byte[] {7, 6, 5, 4}, d.mem.read(0x100300, 4));
        assertEquals(1, c.write(5, new byte[] {42}, 0, 1));
        assertEquals(42, d.mem.read(0x100303, 1)[0]);
        q.addUsed(c, 1000);
        assertEquals(6, d.usedLen(0, 0), "clamped to the writable length");
    }

    @Test
    void indirectChain() throws Exception {
        SplitVirtqueue q = queue(8, ALL);
        int head = d.indirectChain(0, Buf.r(0x100000, 16), Buf.w(0x100100, 512), Buf.w(0x100400, 1));
        d.publish(0, head);
        DescriptorChain c = q.pop();
        assertEquals(head, c.head());
        assertEquals(16, c.readableLength());
        assertEquals(513, c.writableLength());
        q.addUsed(c, 513);
        assertEquals(513, d.usedLen(0, 0));
    }

    @Test
    void indirectWithoutFeatureBreaks() throws Exception {
        SplitVirtqueue q = queue(8, 0);
        d.publish(0, d.indirectChain(0, Buf.r(0x100000, 16)));
        assertTrue(brokenBy(q).contains("INDIRECT_DESC"));
    }

    @Test
    void nestedIndirectBreaks() throws Exception {
        SplitVirtqueue q = queue(8, ALL);
        long table = d.alloc(32);
        d.writeDesc(table, 0, 0x100000, 16, DESC_F_NEXT, 1);
        d.writeDesc(table, 1, table, 32, DESC_F_INDIRECT, 0); // points at itself
        publishHead(table, 32, DESC_F_INDIRECT, 0);
        assertTrue(brokenBy(q).contains("inside an indirect"));
    }

    @Test
    void indirectWithNextBreaks() throws Exception {
        SplitVirtqueue q = queue(8, ALL);
        long table = d.alloc(16);
        d.writeDesc(table, 0, 0x100000, 16, 0, 0);
        publishHead(table, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1);
        assertTrue(brokenBy(q).contains("INDIRECT and NEXT"));
    }

    @Test
    void indirectTableLengthAndLoop() throws Exception {
        SplitVirtqueue q = queue(8, ALL);
        long table = d.alloc(32);
        publishHead(table, 24, DESC_F_INDIRECT, 0);
        assertTrue(brokenBy(q).contains("multiple of 16"));

        q = requeue(ALL);
        d.writeDesc(table, 0, 0x100000, 16, DESC_F_NEXT, 1);
        d.writeDesc(table, 1, 0x100000, 16, DESC_F_NEXT, 0); // loop inside the table
        publishHead(table, 32, DESC_F_INDIRECT, 0);
        assertTrue(brokenBy(q).contains("loop"));

        q = requeue(ALL);
        d.writeDesc(table, 1, 0x100000, 16, DESC_F_NEXT, 2); // next past the table
        d.publish(0, 0);
        assertTrue(brokenBy(q).contains("chains to 2"));

        q = requeue(ALL);
        publishHead(TestDriver.MEM_SIZE - 16, 32, DESC_F_INDIRECT, 0);
        assertTrue(brokenBy(q).contains("not in guest RAM"));
    }

    @Test
    void loopBreaks() throws Exception {
        SplitVirtqueue q = queue(8, 0);
        d.writeDesc(TestDriver.descAddr(0), 0, 0x100000, 16, DESC_F_NEXT, 1);
        d.writeDesc(TestDriver.descAddr(0), 1, 0x100000, 16, DESC_F_NEXT, 0);
        d.publish(0, 0);
        assertTrue(brokenBy(q).contains("loop"));
    }

    @Test
    void indicesPastTheEndBreak() throws Exception {
        SplitVirtqueue q = queue(8, 0);
        d.publish(0, 8);
        assertTrue(brokenBy(q).contains("names descriptor 8"));

        q = requeue(0);
        publishHead(0x100000, 16, DESC_F_NEXT, 200);
        assertTrue(brokenBy(q).contains("chains to 200"));
    }

    @Test
    void availIndexTooFarAheadBreaks() throws Exception {
        SplitVirtqueue q = queue(8, 0);
        d.ram.set(TestDriver.U16, TestDriver.availAddr(0) + 2, (short) 9);
        assertTrue(brokenBy(q).contains("more than the queue size"));
    }

    @Test
    void buffersOutsideRamBreak() throws Exception {
        for (long addr : new long[] {TestDriver.MEM_SIZE, TestDriver.MEM_SIZE - 8, -16, 0x7fff_ffff_ffff_fff0L}) {
            SplitVirtqueue q = queue(8, 0);
            d.availIdx[0] = 0;
            d.nextDesc[0] = 0;
            d.submit(0, Buf.r(addr, 16));
            assertTrue(brokenBy(q).contains("not in guest RAM"));
        }
    }

    @Test
    void hugeTotalLengthBreaks() throws Exception {
        // 4 GiB - 1 can only be outside RAM here; use a RAM of exactly the buffers? Check the sum instead:
        SplitVirtqueue q = queue(8, 0);
        d.writeDesc(TestDriver.descAddr(0), 0, 0, 0xffff_fff0, DESC_F_NEXT, 1);
        d.writeDesc(TestDriver.descAddr(0), 1, 0, 0x20, 0, 0);
        d.publish(0, 0);
        String m = brokenBy(q);
        assertTrue(m.contains("4 GiB") || m.contains("not in guest RAM"), m);
    }

    @Test
    void readableAfterWritableBreaks() throws Exception {
        SplitVirtqueue q = queue(8, 0);
        d.submit(0, Buf.w(0x100000, 16), Buf.r(0x100100, 16));
        assertTrue(brokenBy(q).contains("readable descriptor after"));
    }

    @Test
    void headInFlightTwiceBreaks() throws Exception {
        SplitVirtqueue q = queue(8, 0);
        int head = d.submit(0, Buf.w(0x100000, 16));
        assertNotNull(q.pop());
        d.publish(0, head);
        assertTrue(brokenBy(q).contains("still in use"));
    }

    @Test
    void wrapsAroundSixteenBitIndices() throws Exception {
        SplitVirtqueue q = queue(4, 0);
        for (int i = 0; i < 70000; i++) {
            d.nextDesc[0] = 0;
            d.submit(0, Buf.w(0x100000, 4));
            DescriptorChain c = q.pop();
            assertNotNull(c);
            q.addUsed(c, 4);
        }
        assertEquals(70000 & 0xffff, d.usedIdx(0));
        assertNull(q.pop());
    }

    @Test
    void noInterruptFlagWithoutEventIdx() throws Exception {
        SplitVirtqueue q = queue(8, 0);
        d.submit(0, Buf.w(0x100000, 4));
        q.addUsed(q.pop(), 0);
        assertTrue(q.takeNotification());
        assertFalse(q.takeNotification(), "nothing new");
        d.setAvailFlags(0, AVAIL_F_NO_INTERRUPT);
        d.submit(0, Buf.w(0x100000, 4));
        q.addUsed(q.pop(), 0);
        assertFalse(q.takeNotification());
    }

    @Test
    void eventIdxSuppression() throws Exception {
        SplitVirtqueue q = queue(8, ALL);
        d.setUsedEvent(0, 2); // interrupt when used idx passes 2, i.e. after the third buffer
        for (int i = 0; i < 3; i++) d.submit(0, Buf.w(0x100000 + 64 * i, 4));
        q.addUsed(q.pop(), 0);
        assertFalse(q.takeNotification());
        q.addUsed(q.pop(), 0);
        assertFalse(q.takeNotification());
        q.addUsed(q.pop(), 0);
        assertTrue(q.takeNotification());
        assertTrue(q.needsNotification(0, 3));
        assertFalse(q.needsNotification(0, 2));
        assertTrue(q.needsNotification(2, 5));
        assertFalse(q.needsNotification(3, 5));
    }

    @Test
    void eventIdxWritesAvailEvent() throws Exception {
        SplitVirtqueue q = queue(8, ALL);
        d.submit(0, Buf.w(0x100000, 4));
        d.submit(0, Buf.w(0x100100, 4));
        q.pop();
        assertEquals(1, d.availEvent(0));
        q.pop();
        assertEquals(2, d.availEvent(0));
        assertNull(q.pop());
        assertEquals(2, d.availEvent(0));
    }

    @Test
    void ringSetupValidation() {
        assertThrows(VirtqueueException.class, () -> new SplitVirtqueue(d.mem, 6, 0x10000, 0x14000, 0x18000, 0));
        assertThrows(VirtqueueException.class, () -> new SplitVirtqueue(d.mem, 65536, 0x10000, 0x14000, 0x18000, 0));
        assertThrows(VirtqueueException.class, () -> new SplitVirtqueue(d.mem, 8, 0x10004, 0x14000, 0x18000, 0));
        assertThrows(VirtqueueException.class, () -> new SplitVirtqueue(d.mem, 8, 0x10000, 0x14000, TestDriver.MEM_SIZE - 8, 0));
        assertThrows(VirtqueueException.class, () -> new SplitVirtqueue(d.mem, 8, -16, 0x14000, 0x18000, 0));
    }
}
