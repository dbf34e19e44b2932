package dev.jvmm.device.virtio;

import dev.jvmm.device.virtio.TestDriver.Buf;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static dev.jvmm.device.virtio.SplitVirtqueue.*;
import static dev.jvmm.device.virtio.VirtioMmioTransport.*;
import static org.junit.jupiter.api.Assertions.*;

/** Random and adversarial ring contents: pop() must end quickly, stay in RAM and throw only VirtqueueException. */
class VirtqueueFuzzTest {
    static final long[] SEEDS = {1, 2, 3, 42, 0xdecafbadL, 20240601, 7777, 31337};
    static final int ITERATIONS = 2000;
    static final long ALL = (1L << F_INDIRECT_DESC) | (1L << F_EVENT_IDX);

    /** Fills the rings of queue 0 and some of the data area with hostile content. */
    static void scribble(TestDriver d, Random rnd, int size) {
        long desc = TestDriver.descAddr(0);
        long table = TestDriver.DATA_BASE; // candidate indirect tables live here
        for (int i = 0; i < size; i++) writeRandomDesc(d, rnd, desc, i, size, table);
        int entries = 1 + rnd.nextInt(2 * size);
        for (int i = 0; i < entries; i++) writeRandomDesc(d, rnd, table, i, entries, desc);
        long avail = TestDriver.availAddr(0);
        for (int i = 0; i < size; i++) {
            int head = rnd.nextInt(8) == 0 ? rnd.nextInt(65536) : rnd.nextInt(size);
            d.ram.set(TestDriver.U16, avail + 4 + 2L * i, (short) head);
        }
        int idx = switch (rnd.nextInt(4)) {
            case 0 -> rnd.nextInt(65536);
            case 1 -> size + 1 + rnd.nextInt(10);
            default -> rnd.nextInt(size + 1);
        };
        d.ram.set(TestDriver.U16, avail + 2, (short) idx);
        d.ram.set(TestDriver.U16, avail, (short) rnd.nextInt(4));
        d.ram.set(TestDriver.U16, avail + 4 + 2L * size, (short) rnd.nextInt(65536));
    }

    static void writeRandomDesc(TestDriver d, Random rnd, long base, int i, int entries, long otherTable) {
        long addr = switch (rnd.nextInt(8)) {
            case 0 -> TestDriver.MEM_SIZE - rnd.nextInt(64);                 // at or past the end
            case 1 -> rnd.nextLong();                                        // anywhere in 64 bits
            case 2 -> base;                                                  // the table itself (self-reference)
            case 3 -> otherTable;                                            // the other table
            default -> TestDriver.DATA_BASE + rnd.nextInt(0x200000);         // plausible RAM
        };
        int len = switch (rnd.nextInt(6)) {
            case 0 -> -1;                                                    // 4 GiB - 1
            case 1 -> rnd.nextInt();
            case 2 -> 16 * (1 + rnd.nextInt(2 * entries));                   // table-sized
            default -> rnd.nextInt(4096);
        };
        int flags = rnd.nextInt(8);
        int next = switch (rnd.nextInt(5)) {
            case 0 -> rnd.nextInt(65536);
            case 1 -> i;                                                     // self loop
            case 2 -> (i + 1) % Math.max(1, entries);
            default -> rnd.nextInt(Math.max(1, entries));
        };
        d.writeDesc(base, i, addr, len, flags, next);
    }

    @Test
    void popIsSafeOnGarbage() {
        int chains = 0, broken = 0;
        for (long seed : SEEDS) {
            Random rnd = new Random(seed);
            TestDriver d = new TestDriver(new VirtioRng());
            for (int it = 0; it < ITERATIONS / SEEDS.length; it++) {
                int size = 1 << rnd.nextInt(9);
                d.qsize = size;
                long features = rnd.nextBoolean() ? ALL : rnd.nextInt(2) * (1L << F_INDIRECT_DESC);
                scribble(d, rnd, size);
                SplitVirtqueue q;
                try {
                    q = new SplitVirtqueue(d.mem, size, TestDriver.descAddr(0), TestDriver.availAddr(0), TestDriver.usedAddr(0), features);
                } catch (VirtqueueException e) {
                    fail(e);
                    return;
                }
                long start = System.nanoTime();
                for (int step = 0; step < size + 4; step++) {
                    try {
                        DescriptorChain c = q.pop();
                        if (c == null) break;
                        chains++;
                        for (DescriptorChain.Buffer b : c.readable()) assertTrue(d.mem.contains(b.gpa(), b.length()), "seed " + seed);
                        for (DescriptorChain.Buffer b : c.writable()) assertTrue(d.mem.contains(b.gpa(), b.length()), "seed " + seed);
                        assertTrue(c.readableLength() + c.writableLength() <= 0xffff_ffffL);
                        assertTrue(c.head() >= 0 && c.head() < size);
                        c.readAll(4096);
                        q.addUsed(c, rnd.nextInt(1 << 20));
                    } catch (VirtqueueException e) {
                        broken++;
                        assertTrue(q.isBroken());
                        break;
                    } catch (Throwable t) {
                        fail("seed " + seed + " iteration " + it + ": unexpected " + t, t);
                    }
                }
                assertTrue(System.nanoTime() - start < 2_000_000_000L, "pop took too long");
            }
        }
        assertTrue(chains > 0 && broken > 0, "the fuzzer should see both outcomes: chains " + chains + ", broken " + broken);
    }

    @Test
    void deviceRecoversAfterResetFromGarbage() {
        for (long seed : SEEDS) {
            Random rnd = new Random(seed ^ 0x5555);
            VirtioRng rng = new VirtioRng();
            TestDriver d = new TestDriver(rng);
            for (int it = 0; it < 100; it++) {
                int size = 1 << (1 + rnd.nextInt(8));
                long features = (1L << F_VERSION_1) | (rnd.nextBoolean() ? ALL : 0);
                d.init(features, size);
                d.dataNext = TestDriver.DATA_BASE;
                scribble(d, rnd, size);
                long start = System.nanoTime();
                assertDoesNotThrow(() -> d.kick(0));
                assertDoesNotThrow(() -> d.w(QUEUE_NOTIFY, 0));
                assertTrue(System.nanoTime() - start < 2_000_000_000L);
                // a reset and a well-formed request
                d.init(features, size);
                d.dataNext = TestDriver.DATA_BASE + 0x280000;
                long buf = d.alloc(32);
                int head = d.submit(0, Buf.w(buf, 32));
                d.kick(0);
                assertEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET, "seed " + seed + " iteration " + it);
                assertEquals(1, d.usedIdx(0));
                assertEquals(head, d.usedId(0, 0));
                assertEquals(32, d.usedLen(0, 0));
            }
        }
    }
}
