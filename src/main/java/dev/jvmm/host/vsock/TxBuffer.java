package dev.jvmm.host.vsock;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Bytes the guest sent on one connection that the host peer has not taken yet: a ring of at most
 * {@code capacity} bytes (the credit the connection gives the guest, so a guest that keeps to its
 * credit never overflows it). Its memory is taken when the host socket first fills, so a connection
 * whose host peer keeps up holds none, and given back by {@link #release} when the connection ends
 * (explicitly: native memory the Java heap does not see would not prompt a collection).
 */
final class TxBuffer {
    private final int capacity;
    private Arena arena;
    private MemorySegment ring;
    private int head;
    private int size;

    TxBuffer(int capacity) {
        this.capacity = capacity;
    }

    int size() {
        return size;
    }

    boolean isEmpty() {
        return size == 0;
    }

    int free() {
        return capacity - size;
    }

    /** Appends all of {@code src}; the caller has checked that it fits ({@link #free}). */
    void append(MemorySegment src) {
        long n = src.byteSize();
        if (n > free()) throw new IllegalStateException(n + " bytes do not fit in " + free());
        if (ring == null) {
            arena = Arena.ofShared();
            ring = arena.allocate(capacity);
        }
        int tail = (head + size) % capacity;
        long first = Math.min(n, capacity - tail);
        MemorySegment.copy(src, 0, ring, tail, first);
        if (first < n) MemorySegment.copy(src, first, ring, 0, n - first);
        size += (int) n;
    }

    /** The oldest bytes that lie contiguously in the ring, or null when there are none. */
    MemorySegment readable() {
        return size == 0 ? null : ring.asSlice(head, Math.min(size, capacity - head));
    }

    /** Drops the first {@code n} bytes (they were written to the host). */
    void consume(int n) {
        if (n < 0 || n > size) throw new IllegalArgumentException("consume " + n + " of " + size);
        head = (head + n) % capacity;
        size -= n;
        if (size == 0) head = 0;
    }

    /** Frees the memory; the buffer is empty afterwards. */
    void release() {
        size = 0;
        head = 0;
        ring = null;
        if (arena != null) {
            arena.close();
            arena = null;
        }
    }
}
