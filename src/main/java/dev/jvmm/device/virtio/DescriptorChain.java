package dev.jvmm.device.virtio;

import dev.jvmm.memory.GuestMemory;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * One request popped from a {@link SplitVirtqueue}: the head descriptor index and the buffers, the
 * device-readable ones first, then the device-writable ones. Every buffer was checked to lie inside
 * guest RAM when the chain was popped; zero-length descriptors are left out. Offsets in the helpers
 * are logical: across all readable (or all writable) buffers as if they were one contiguous area.
 */
public final class DescriptorChain {
    /** A guest buffer [gpa, gpa + length). */
    public record Buffer(long gpa, long length) {
    }

    private final GuestMemory memory;
    private final int head;
    private final List<Buffer> readable;
    private final List<Buffer> writable;
    private final long readableLength;
    private final long writableLength;

    DescriptorChain(GuestMemory memory, int head, List<Buffer> readable, List<Buffer> writable, long readableLength, long writableLength) {
        this.memory = memory;
        this.head = head;
        this.readable = List.copyOf(readable);
        this.writable = List.copyOf(writable);
        this.readableLength = readableLength;
        this.writableLength = writableLength;
    }

    public int head() {
        return head;
    }

    public List<Buffer> readable() {
        return readable;
    }

    public List<Buffer> writable() {
        return writable;
    }

    public long readableLength() {
        return readableLength;
    }

    public long writableLength() {
        return writableLength;
    }

    /** All readable bytes, at most {@code max} of them. */
    public byte[] readAll(int max) {
        byte[] b = new byte[(int) Math.min(readableLength, Math.max(0, max))];
        read(0, b, 0, b.length);
        return b;
    }

    /** Copies up to {@code len} readable bytes from logical {@code offset}; returns how many were copied. */
    public int read(long offset, byte[] dst, int off, int len) {
        int done = 0;
        for (MemorySegment s : segments(readable, offset, len)) {
            MemorySegment.copy(s, JAVA_BYTE, 0, dst, off + done, (int) s.byteSize());
            done += (int) s.byteSize();
        }
        return done;
    }

    /** Copies up to {@code len} bytes into the writable buffers at logical {@code offset}; returns how many fitted. */
    public int write(long offset, byte[] src, int off, int len) {
        int done = 0;
        for (MemorySegment s : segments(writable, offset, len)) {
            MemorySegment.copy(src, off + done, s, JAVA_BYTE, 0, (int) s.byteSize());
            done += (int) s.byteSize();
        }
        return done;
    }

    /** Writes everything from the start of the writable buffers; returns how many bytes fitted. */
    public int write(byte[] src) {
        return write(0, src, 0, src.length);
    }

    /** Host views of readable bytes [offset, offset + len), clipped to the readable length. */
    public List<MemorySegment> readableSegments(long offset, long len) {
        return segments(readable, offset, len);
    }

    /** Host views of writable bytes [offset, offset + len), clipped to the writable length. */
    public List<MemorySegment> writableSegments(long offset, long len) {
        return segments(writable, offset, len);
    }

    private List<MemorySegment> segments(List<Buffer> buffers, long offset, long len) {
        List<MemorySegment> out = new ArrayList<>(2);
        if (offset < 0 || len <= 0) return out;
        long pos = 0;
        long remaining = len;
        for (Buffer b : buffers) {
            if (remaining == 0) break;
            long end = pos + b.length();
            if (offset < end) {
                long start = Math.max(offset, pos) - pos;
                long n = Math.min(b.length() - start, remaining);
                out.add(memory.slice(b.gpa() + start, n));
                remaining -= n;
            }
            pos = end;
        }
        return out;
    }

    @Override
    public String toString() {
        return "DescriptorChain[head=" + head + ", readable=" + readableLength + " bytes in " + readable.size()
                + ", writable=" + writableLength + " bytes in " + writable.size() + "]";
    }
}
