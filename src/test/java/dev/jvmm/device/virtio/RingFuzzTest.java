package dev.jvmm.device.virtio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jvmm.memory.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Jazzer target for the split-virtqueue parser: descriptor table, available ring and indirect tables
 * come from the fuzzer. Invariants: only {@link VirtqueueException} escapes, and then the queue stays
 * broken; every popped buffer lies in guest RAM; the used index moves by one per returned chain and
 * the used element names it; nothing outside the used ring and the chains' writable buffers changes,
 * and nothing beyond guest RAM at all.
 */
class RingFuzzTest {
    static final long MEM = 64 * 1024;
    static final long GUARD = 4096;
    static final long DESC = 0x1000, AVAIL = 0x5000, USED = 0x6000, INDIRECT = 0x8000, DATA = 0xa000;
    static final long F_INDIRECT = 1L << SplitVirtqueue.F_INDIRECT_DESC;
    static final long F_EVENT_IDX = 1L << SplitVirtqueue.F_EVENT_IDX;

    /** Guest RAM [0, MEM) and a guard area after it that must never change. */
    static final MemorySegment HOST = Arena.ofAuto().allocate(MEM + GUARD, 4096);
    static final MemorySegment GUARD_PATTERN = Arena.ofAuto().allocate(GUARD).fill((byte) 0xa5);
    static final GuestMemory MEMORY = GuestMemory.wrap(List.of(new GuestMemory.Region(0, MEM, HOST.asSlice(0, MEM))));

    /** A descriptor address: mostly inside RAM, sometimes at its edge or anywhere. */
    static long address(FuzzedDataProvider d) {
        return switch (d.consumeInt(0, 7)) {
            case 0 -> d.consumeLong();
            case 1 -> MEM - d.consumeInt(0, 64);
            case 2 -> INDIRECT;
            default -> d.consumeLong(0, MEM);
        };
    }

    static void descriptor(FuzzedDataProvider d, long table, int i) {
        long b = table + 16L * i;
        MEMORY.slice(b, 16).set(TestDriver.U64, 0, address(d));
        MEMORY.slice(b, 16).set(TestDriver.U32, 8, d.consumeBoolean() ? d.consumeInt() : d.consumeInt(0, 4096));
        MEMORY.slice(b, 16).set(TestDriver.U16, 12, (short) d.consumeInt(0, 15));
        MEMORY.slice(b, 16).set(TestDriver.U16, 14, (short) (d.consumeBoolean() ? d.consumeInt(0, 0xffff) : d.consumeInt(0, 16)));
    }

    @FuzzTest(maxDuration = "30s")
    void ring(FuzzedDataProvider d) {
        HOST.fill((byte) 0);
        HOST.asSlice(MEM, GUARD).fill((byte) 0xa5);
        int size = 1 << d.consumeInt(0, 8);
        long features = (d.consumeBoolean() ? F_INDIRECT : 0) | (d.consumeBoolean() ? F_EVENT_IDX : 0);
        for (int i = 0; i < size; i++) descriptor(d, DESC, i);
        int indirectEntries = d.consumeInt(0, 16);
        for (int i = 0; i < indirectEntries; i++) descriptor(d, INDIRECT, i);
        MemorySegment avail = MEMORY.slice(AVAIL, 6 + 2L * size);
        avail.set(TestDriver.U16, 0, (short) d.consumeInt(0, 3));
        avail.set(TestDriver.U16, 2, (short) (d.consumeBoolean() ? d.consumeInt(0, 0xffff) : d.consumeInt(0, size)));
        for (int i = 0; i < size; i++) {
            avail.set(TestDriver.U16, 4 + 2L * i, (short) (d.consumeBoolean() ? d.consumeInt(0, 0xffff) : d.consumeInt(0, size - 1)));
        }
        avail.set(TestDriver.U16, 4 + 2L * size, (short) d.consumeInt(0, 0xffff));   // used_event
        byte[] before = HOST.asSlice(0, MEM).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);

        SplitVirtqueue q;
        try {
            q = new SplitVirtqueue(MEMORY, size, DESC, AVAIL, USED, features);
        } catch (VirtqueueException e) {
            throw new AssertionError("well-placed rings refused: " + e, e);
        }
        List<long[]> mayChange = new ArrayList<>();   // {start, end}
        mayChange.add(new long[] {USED, USED + 6 + 8L * size});
        int expectedUsed = 0;
        for (int step = 0; step < size + 2 && d.remainingBytes() > 0; step++) {
            DescriptorChain c;
            try {
                c = q.pop();
            } catch (VirtqueueException e) {
                assertTrue(q.isBroken(), "a refusal breaks the queue");
                assertThrows(VirtqueueException.class, q::pop, "and it stays broken");
                break;
            }
            if (c == null) break;
            assertTrue(c.head() >= 0 && c.head() < size, "head " + c.head());
            assertTrue(c.readableLength() + c.writableLength() <= 0xffff_ffffL);
            long rl = 0, wl = 0;
            for (DescriptorChain.Buffer b : c.readable()) {
                assertTrue(MEMORY.contains(b.gpa(), b.length()), "readable buffer in RAM: " + b);
                rl += b.length();
            }
            for (DescriptorChain.Buffer b : c.writable()) {
                assertTrue(MEMORY.contains(b.gpa(), b.length()), "writable buffer in RAM: " + b);
                mayChange.add(new long[] {b.gpa(), b.gpa() + b.length()});
                wl += b.length();
            }
            assertEquals(c.readableLength(), rl);
            assertEquals(c.writableLength(), wl);
            c.readAll(4096);
            byte[] reply = d.consumeBytes(d.consumeInt(0, 512));
            int written = c.write(d.consumeLong(0, 256), reply, 0, reply.length);
            assertTrue(written >= 0 && written <= reply.length);
            long claimed = d.consumeLong();
            try {
                q.addUsed(c, claimed);
            } catch (VirtqueueException e) {
                throw new AssertionError("addUsed on a working queue: " + e, e);
            }
            expectedUsed = (expectedUsed + 1) & 0xffff;
            assertEquals(expectedUsed, q.usedIdx(), "one used element per chain");
            MemorySegment used = MEMORY.slice(USED, 6 + 8L * size);
            assertEquals(expectedUsed, Short.toUnsignedInt(used.get(TestDriver.U16, 2)), "published used index");
            long slot = 4 + 8L * ((expectedUsed - 1) & (size - 1));
            assertEquals(c.head(), used.get(TestDriver.U32, slot), "used element id");
            long len = Integer.toUnsignedLong(used.get(TestDriver.U32, slot + 4));
            assertTrue(len <= c.writableLength() && len <= Math.max(0, claimed), "used length " + len);
            q.takeNotification();
        }
        byte[] after = HOST.asSlice(0, MEM).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        for (int i = Arrays.mismatch(before, after); i >= 0; ) {
            long at = i;
            assertTrue(mayChange.stream().anyMatch(r -> at >= r[0] && at < r[1]),
                    "byte 0x" + Long.toHexString(at) + " changed outside the used ring and writable buffers");
            int next = Arrays.mismatch(before, i + 1, before.length, after, i + 1, after.length);
            i = next < 0 ? -1 : i + 1 + next;
        }
        assertEquals(-1, HOST.asSlice(MEM, GUARD).mismatch(GUARD_PATTERN), "a guard byte after guest RAM changed");
    }
}
