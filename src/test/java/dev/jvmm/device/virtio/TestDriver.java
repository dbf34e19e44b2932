package dev.jvmm.device.virtio;

import dev.jvmm.memory.GuestMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

import static dev.jvmm.device.virtio.VirtioMmioTransport.*;

/**
 * The driver side of virtio-mmio for tests: register-level initialisation and ring writes in plain memory.
 * Public for the tests of devices outside this package (vhost-user ones).
 */
public final class TestDriver {
    public static final long MEM_SIZE = 4 << 20;
    public static final long DATA_BASE = 0x100000;

    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A buffer of up to 4 GiB - 1 (a descriptor's length is a u32). */
    public record Buf(long gpa, long len, boolean write) {
        public static Buf r(long gpa, long len) {
            return new Buf(gpa, len, false);
        }

        public static Buf w(long gpa, long len) {
            return new Buf(gpa, len, true);
        }
    }

    public final GuestMemory mem;
    public final MemorySegment ram;
    public final VirtioMmioTransport t;
    int qsize;
    final int[] nextDesc = new int[8];
    final int[] availIdx = new int[8];
    long dataNext = DATA_BASE;
    public int interrupts;

    static GuestMemory memory() {
        return GuestMemory.wrap(List.of(new GuestMemory.Region(0, MEM_SIZE, Arena.ofAuto().allocate(MEM_SIZE))));
    }

    TestDriver(VirtioDevice device) {
        this(device, memory());
    }

    /** A driver whose rings and small buffers live in the first {@link #MEM_SIZE} bytes of {@code mem}. */
    public TestDriver(VirtioDevice device, GuestMemory mem) {
        this(device, mem, null);
    }

    /** A driver whose transport hands a device's unfinished work to {@code later} (the event loop's turns). */
    public TestDriver(VirtioDevice device, GuestMemory mem, java.util.concurrent.Executor later) {
        this.mem = mem;
        this.ram = mem.slice(0, MEM_SIZE);
        this.t = new VirtioMmioTransport(device, mem, () -> interrupts++, later);
    }

    public int r(int off) {
        return (int) t.read(off, 4);
    }

    public void w(int off, int v) {
        t.write(off, 4, v);
    }

    public static long descAddr(int q) {
        return 0x10000L + q * 0x10000L;
    }

    public static long availAddr(int q) {
        return descAddr(q) + 0x4000;
    }

    public static long usedAddr(int q) {
        return descAddr(q) + 0x8000;
    }

    /** Offers features {@code features & offered}, FEATURES_OK; returns the status read back. */
    public int negotiate(long features) {
        w(STATUS, 0);
        w(STATUS, STATUS_ACKNOWLEDGE);
        w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        w(DEVICE_FEATURES_SEL, 0);
        long offered = Integer.toUnsignedLong(r(DEVICE_FEATURES));
        w(DEVICE_FEATURES_SEL, 1);
        offered |= Integer.toUnsignedLong(r(DEVICE_FEATURES)) << 32;
        long f = features & offered;
        w(DRIVER_FEATURES_SEL, 0);
        w(DRIVER_FEATURES, (int) f);
        w(DRIVER_FEATURES_SEL, 1);
        w(DRIVER_FEATURES, (int) (f >>> 32));
        w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        return r(STATUS);
    }

    public void setupQueue(int q, int size) {
        w(QUEUE_SEL, q);
        w(QUEUE_NUM, size);
        w(QUEUE_DESC_LOW, (int) descAddr(q));
        w(QUEUE_DESC_HIGH, 0);
        w(QUEUE_DRIVER_LOW, (int) availAddr(q));
        w(QUEUE_DRIVER_HIGH, 0);
        w(QUEUE_DEVICE_LOW, (int) usedAddr(q));
        w(QUEUE_DEVICE_HIGH, 0);
        w(QUEUE_READY, 1);
    }

    /** Full initialisation: negotiation, every queue at {@code size}, DRIVER_OK. */
    public TestDriver init(long features, int size) {
        this.qsize = size;
        int s = negotiate(features);
        if ((s & STATUS_FEATURES_OK) == 0) throw new AssertionError("FEATURES_OK refused");
        ram.asSlice(0x10000, 0x80000).fill((byte) 0);
        java.util.Arrays.fill(nextDesc, 0);
        java.util.Arrays.fill(availIdx, 0);
        for (int q = 0; q < t.queueCount(); q++) setupQueue(q, size);
        w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
        return this;
    }

    TestDriver init() {
        return init(1L << F_VERSION_1, 16);
    }

    public long alloc(int len) {
        long a = dataNext;
        dataNext += (len + 15) & ~15L;
        if (dataNext > MEM_SIZE) throw new AssertionError("test data area full");
        return a;
    }

    public long put(byte[] data) {
        long a = alloc(data.length);
        mem.write(a, data);
        return a;
    }

    void writeDesc(long table, int i, long addr, long len, int flags, int next) {
        long b = table + 16L * i;
        ram.set(U64, b, addr);
        ram.set(U32, b + 8, (int) len);
        ram.set(U16, b + 12, (short) flags);
        ram.set(U16, b + 14, (short) next);
    }

    /** Writes a chain with NEXT links into the descriptor table; returns the head. */
    int chain(int q, Buf... bufs) {
        int head = nextDesc[q];
        for (int i = 0; i < bufs.length; i++) {
            int idx = (head + i) % qsize;
            int next = (head + i + 1) % qsize;
            int flags = (bufs[i].write ? SplitVirtqueue.DESC_F_WRITE : 0) | (i + 1 < bufs.length ? SplitVirtqueue.DESC_F_NEXT : 0);
            writeDesc(descAddr(q), idx, bufs[i].gpa, bufs[i].len, flags, next);
        }
        nextDesc[q] = (head + bufs.length) % qsize;
        return head;
    }

    /** One descriptor pointing at an indirect table holding {@code bufs}. */
    int indirectChain(int q, Buf... bufs) {
        long table = alloc(16 * bufs.length);
        for (int i = 0; i < bufs.length; i++) {
            int flags = (bufs[i].write ? SplitVirtqueue.DESC_F_WRITE : 0) | (i + 1 < bufs.length ? SplitVirtqueue.DESC_F_NEXT : 0);
            writeDesc(table, i, bufs[i].gpa, bufs[i].len, flags, i + 1);
        }
        int head = nextDesc[q];
        writeDesc(descAddr(q), head, table, 16 * bufs.length, SplitVirtqueue.DESC_F_INDIRECT, 0);
        nextDesc[q] = (head + 1) % qsize;
        return head;
    }

    void publish(int q, int head) {
        ram.set(U16, availAddr(q) + 4 + 2L * (availIdx[q] % qsize), (short) head);
        availIdx[q] = (availIdx[q] + 1) & 0xffff;
        ram.set(U16, availAddr(q) + 2, (short) availIdx[q]);
    }

    public int submit(int q, Buf... bufs) {
        int head = chain(q, bufs);
        publish(q, head);
        return head;
    }

    public void kick(int q) {
        t.notify(q);
    }

    public int usedIdx(int q) {
        return Short.toUnsignedInt(ram.get(U16, usedAddr(q) + 2));
    }

    public int usedId(int q, int i) {
        return ram.get(U32, usedAddr(q) + 4 + 8L * (i % qsize));
    }

    public int usedLen(int q, int i) {
        return ram.get(U32, usedAddr(q) + 4 + 8L * (i % qsize) + 4);
    }

    int availEvent(int q) {
        return Short.toUnsignedInt(ram.get(U16, usedAddr(q) + 4 + 8L * qsize));
    }

    void setUsedEvent(int q, int v) {
        ram.set(U16, availAddr(q) + 4 + 2L * qsize, (short) v);
    }

    void setAvailFlags(int q, int v) {
        ram.set(U16, availAddr(q), (short) v);
    }

    public void ackAll() {
        w(INTERRUPT_ACK, r(INTERRUPT_STATUS));
    }
}
