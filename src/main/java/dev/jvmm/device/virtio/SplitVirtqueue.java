package dev.jvmm.device.virtio;

import dev.jvmm.memory.GuestMemory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The device side of a split virtqueue (virtio 1.2, 2.7): descriptor table, available ring, used ring.
 *
 * <p>Everything the driver controls is validated: the rings must lie in guest RAM and be aligned
 * (16/2/4 bytes), the available index may not run ahead by more than the queue size, head and next
 * indices must be below the size, chains may not be longer than the queue size (so a loop ends),
 * indirect tables must be whole descriptors in RAM, not nested and not combined with NEXT, buffers must
 * lie in RAM, readable buffers may not follow writable ones, and a head may not be handed out twice
 * while in flight. The first violation makes the queue <em>broken</em>: {@link #pop()} and
 * {@link #addUsed} throw {@link VirtqueueException} from then on, until the queue is thrown away by a
 * device reset. Nothing else is thrown for guest-controlled data, and no access leaves guest RAM.
 *
 * <p>Not thread-safe: the transport's lock (the device monitor) serialises all use.
 */
public final class SplitVirtqueue {
    public static final int MAX_SIZE = 32768;

    public static final int DESC_F_NEXT = 1;
    public static final int DESC_F_WRITE = 2;
    public static final int DESC_F_INDIRECT = 4;
    public static final int AVAIL_F_NO_INTERRUPT = 1;

    /** Feature bits that change how the ring works. */
    public static final int F_INDIRECT_DESC = 28;
    public static final int F_EVENT_IDX = 29;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final GuestMemory memory;
    private final int size;
    private final boolean indirect;
    private final boolean eventIdx;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final boolean[] inFlight;

    private int nextAvail;      // free-running u16: next available-ring slot to consume
    private int usedIdx;        // free-running u16: next used-ring slot to fill
    private int signalledUsed;  // used idx at the last notification decision
    private String broken;

    /**
     * @param features the negotiated features (INDIRECT_DESC and EVENT_IDX matter here)
     * @throws VirtqueueException when the size is not a power of 2 in [1, 32768], or a ring is
     *         misaligned or not wholly in guest RAM
     */
    public SplitVirtqueue(GuestMemory memory, int size, long descGpa, long availGpa, long usedGpa, long features)
            throws VirtqueueException {
        if (size <= 0 || size > MAX_SIZE || Integer.bitCount(size) != 1) {
            throw new VirtqueueException("queue size " + size + " is not a power of 2 between 1 and " + MAX_SIZE);
        }
        this.memory = memory;
        this.size = size;
        this.indirect = (features & (1L << F_INDIRECT_DESC)) != 0;
        this.eventIdx = (features & (1L << F_EVENT_IDX)) != 0;
        this.desc = ring("descriptor table", descGpa, 16L * size, 16);
        this.avail = ring("available ring", availGpa, 6L + 2L * size, 2);
        this.used = ring("used ring", usedGpa, 6L + 8L * size, 4);
        this.inFlight = new boolean[size];
    }

    private MemorySegment ring(String what, long gpa, long len, int align) throws VirtqueueException {
        if ((gpa & (align - 1)) != 0) {
            throw new VirtqueueException(String.format("%s at 0x%x is not %d-byte aligned", what, gpa, align));
        }
        if (!memory.contains(gpa, len)) {
            throw new VirtqueueException(String.format("%s [0x%x, +0x%x) is not in guest RAM", what, gpa, len));
        }
        return memory.slice(gpa, len);
    }

    public int size() {
        return size;
    }

    public boolean isBroken() {
        return broken != null;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    /** The next used index the device will publish (free-running, 16 bits). */
    public int usedIdx() {
        return usedIdx;
    }

    /** The next available-ring slot the device will consume (free-running, 16 bits). */
    public int nextAvail() {
        return nextAvail;
    }

    /**
     * The descriptor table in host memory. With the rings below, what a device whose queue another
     * process serves (vhost-user) hands over: their addresses in this process.
     */
    public MemorySegment descriptorTable() {
        return desc;
    }

    /** The available ring (flags, idx, ring, used_event) in host memory. */
    public MemorySegment availableRing() {
        return avail;
    }

    /** The used ring (flags, idx, ring, avail_event) in host memory. */
    public MemorySegment usedRing() {
        return used;
    }

    private VirtqueueException fail(String message) {
        broken = message;
        return new VirtqueueException(message);
    }

    private void checkBroken() throws VirtqueueException {
        if (broken != null) throw new VirtqueueException("virtqueue is broken: " + broken);
    }

    private int pending() throws VirtqueueException {
        int idx = Short.toUnsignedInt(avail.get(U16, 2));
        VarHandle.acquireFence(); // the ring entries are read after the index
        int n = (idx - nextAvail) & 0xffff;
        if (n > size) {
            throw fail("available index " + idx + " is " + n + " entries ahead of " + nextAvail + ", more than the queue size " + size);
        }
        return n;
    }

    /** True when the driver has made buffers available that {@link #pop()} has not returned yet. */
    public boolean hasAvailable() throws VirtqueueException {
        checkBroken();
        return pending() > 0;
    }

    /** How many chains the driver has made available that {@link #pop()} has not returned yet. */
    public int availableCount() throws VirtqueueException {
        checkBroken();
        return pending();
    }

    /**
     * The next available descriptor chain, or {@code null} when the ring is empty. With EVENT_IDX the
     * available event is set so that the driver notifies for the next buffer after this one.
     */
    public DescriptorChain pop() throws VirtqueueException {
        checkBroken();
        int n = pending();
        if (n == 0) {
            if (!eventIdx) return null;
            writeAvailEvent();
            VarHandle.fullFence(); // publish avail_event before re-checking the index (no lost notification)
            if (pending() == 0) return null;
        }
        int head = Short.toUnsignedInt(avail.get(U16, 4L + 2L * (nextAvail & (size - 1))));
        if (head >= size) throw fail("available ring entry " + nextAvail + " names descriptor " + head + ", queue size is " + size);
        if (inFlight[head]) throw fail("descriptor " + head + " made available again while still in use");
        DescriptorChain chain = walk(head);
        inFlight[head] = true;
        nextAvail = (nextAvail + 1) & 0xffff;
        if (eventIdx) writeAvailEvent();
        return chain;
    }

    private void writeAvailEvent() {
        used.set(U16, 4L + 8L * size, (short) nextAvail);
    }

    private final class Walk {
        final List<DescriptorChain.Buffer> readable = new ArrayList<>();
        final List<DescriptorChain.Buffer> writable = new ArrayList<>();
        long readableLength;
        long writableLength;
        boolean seenWritable;

        void add(long addr, long len, int flags) throws VirtqueueException {
            if ((flags & DESC_F_WRITE) != 0) {
                seenWritable = true;
                writableLength += len;
            } else {
                if (seenWritable) throw fail("device-readable descriptor after a device-writable one");
                readableLength += len;
            }
            if (readableLength + writableLength > 0xffff_ffffL) throw fail("descriptor chain longer than 4 GiB in total");
            if (!memory.contains(addr, len)) throw fail(String.format("buffer [0x%x, +0x%x) is not in guest RAM", addr, len));
            if (len == 0) return;
            ((flags & DESC_F_WRITE) != 0 ? writable : readable).add(new DescriptorChain.Buffer(addr, len));
        }
    }

    private DescriptorChain walk(int head) throws VirtqueueException {
        Walk w = new Walk();
        int idx = head;
        for (int count = 1; ; count++) {
            if (count > size) throw fail("descriptor chain from " + head + " is longer than the queue size " + size + " (a loop?)");
            long base = 16L * idx;
            long addr = desc.get(U64, base);
            long len = Integer.toUnsignedLong(desc.get(U32, base + 8));
            int flags = Short.toUnsignedInt(desc.get(U16, base + 12));
            int next = Short.toUnsignedInt(desc.get(U16, base + 14));
            if ((flags & DESC_F_INDIRECT) != 0) {
                walkIndirect(w, addr, len, flags);
                break;
            }
            w.add(addr, len, flags);
            if ((flags & DESC_F_NEXT) == 0) break;
            if (next >= size) throw fail("descriptor " + idx + " chains to " + next + ", queue size is " + size);
            idx = next;
        }
        return new DescriptorChain(memory, head, w.readable, w.writable, w.readableLength, w.writableLength);
    }

    private void walkIndirect(Walk w, long addr, long len, int flags) throws VirtqueueException {
        if (!indirect) throw fail("indirect descriptor, but VIRTIO_RING_F_INDIRECT_DESC was not negotiated");
        if ((flags & DESC_F_NEXT) != 0) throw fail("descriptor has both INDIRECT and NEXT");
        if (len == 0 || len % 16 != 0) throw fail("indirect table length " + len + " is not a non-zero multiple of 16");
        long entries = len / 16;
        if (entries > size) throw fail("indirect table of " + entries + " descriptors is larger than the queue size " + size);
        if (!memory.contains(addr, len)) throw fail(String.format("indirect table [0x%x, +0x%x) is not in guest RAM", addr, len));
        MemorySegment table = memory.slice(addr, len);
        int idx = 0;
        for (int count = 1; ; count++) {
            if (count > entries) throw fail("indirect descriptor chain is longer than its table (a loop?)");
            long base = 16L * idx;
            long a = table.get(U64, base);
            long l = Integer.toUnsignedLong(table.get(U32, base + 8));
            int f = Short.toUnsignedInt(table.get(U16, base + 12));
            int next = Short.toUnsignedInt(table.get(U16, base + 14));
            if ((f & DESC_F_INDIRECT) != 0) throw fail("indirect descriptor inside an indirect table");
            w.add(a, l, f);
            if ((f & DESC_F_NEXT) == 0) return;
            if (next >= entries) throw fail("indirect descriptor " + idx + " chains to " + next + ", table has " + entries);
            idx = next;
        }
    }

    /**
     * What a snapshot keeps of the queue besides its guest addresses and size: the device's ring
     * positions (free-running 16-bit indices), the used index at the last notification decision,
     * the features that shape the ring, and why it broke (null: it works).
     */
    public record RingState(int nextAvail, int usedIdx, int signalledUsed, boolean indirect, boolean eventIdx, String broken) {
        public RingState {
            if ((nextAvail | usedIdx | signalledUsed) >>> 16 != 0) throw new IllegalArgumentException("ring indices are 16 bits");
        }

        /** The negotiated feature bits this state's ring works with. */
        public long features() {
            return (indirect ? 1L << F_INDIRECT_DESC : 0) | (eventIdx ? 1L << F_EVENT_IDX : 0);
        }
    }

    /** How many chains {@link #pop()} handed out that {@link #addUsed} has not returned yet. */
    public int inFlight() {
        int n = 0;
        for (boolean b : inFlight) if (b) n++;
        return n;
    }

    /** The queue's state for a snapshot. @throws IllegalStateException while chains are in flight (a device holds them) */
    public RingState ringState() {
        if (inFlight() > 0) throw new IllegalStateException(inFlight() + " descriptor chains are in flight");
        return new RingState(nextAvail, usedIdx, signalledUsed, indirect, eventIdx, broken);
    }

    /**
     * A queue at the rings {@code descGpa}, {@code availGpa}, {@code usedGpa} of {@code size} entries
     * continuing from {@code state} (a snapshot's): checked as a driver's QueueReady is.
     * @throws VirtqueueException as the constructor
     */
    public static SplitVirtqueue restored(GuestMemory memory, int size, long descGpa, long availGpa, long usedGpa, RingState state)
            throws VirtqueueException {
        SplitVirtqueue q = new SplitVirtqueue(memory, size, descGpa, availGpa, usedGpa, state.features());
        q.nextAvail = state.nextAvail();
        q.usedIdx = state.usedIdx();
        q.signalledUsed = state.signalledUsed();
        q.broken = state.broken();
        return q;
    }

    /**
     * Returns {@code chain} to the driver with {@code bytesWritten} bytes written into its writable
     * buffers (clamped to their length). Publishes the used element before the used index.
     */
    public void addUsed(DescriptorChain chain, long bytesWritten) throws VirtqueueException {
        checkBroken();
        int head = chain.head();
        if (head < 0 || head >= size || !inFlight[head]) {
            throw new IllegalStateException("descriptor chain " + head + " is not in flight on this queue");
        }
        inFlight[head] = false;
        long len = Math.max(0, Math.min(bytesWritten, chain.writableLength()));
        long slot = 4L + 8L * (usedIdx & (size - 1));
        used.set(U32, slot, head);
        used.set(U32, slot + 4, (int) len);
        usedIdx = (usedIdx + 1) & 0xffff;
        VarHandle.releaseFence(); // the element is visible before the index
        used.set(U16, 2, (short) usedIdx);
    }

    /**
     * Whether the driver wants an interrupt now that the used index went from {@code oldUsedIdx} to
     * {@code newUsedIdx}: with EVENT_IDX when used_event lies in (old, new], else unless the driver set
     * VRING_AVAIL_F_NO_INTERRUPT.
     */
    public boolean needsNotification(int oldUsedIdx, int newUsedIdx) {
        VarHandle.fullFence(); // the used index is published before the driver's suppression state is read
        if (eventIdx) {
            int event = Short.toUnsignedInt(avail.get(U16, 4L + 2L * size));
            return ((newUsedIdx - event - 1) & 0xffff) < ((newUsedIdx - oldUsedIdx) & 0xffff);
        }
        return (avail.get(U16, 0) & AVAIL_F_NO_INTERRUPT) == 0;
    }

    /**
     * The notification decision for everything added since the last call: true when used buffers were
     * added and the driver wants to hear about them.
     */
    public boolean takeNotification() {
        int old = signalledUsed;
        if (old == usedIdx) return false;
        signalledUsed = usedIdx;
        return needsNotification(old, usedIdx);
    }
}
