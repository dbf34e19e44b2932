package dev.jvmm.host;

import dev.jvmm.device.virtio.VirtioNet;
import dev.jvmm.sys.SocketIo;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;

/**
 * Ethernet frames over a stream socket, each after its length as a 32-bit big-endian number: the
 * protocol of passt and of QEMU's {@code -netdev stream}. Received frames may arrive in any number
 * of pieces, a length prefix too; frames are sent one per {@code send} (see {@link #flush}).
 *
 * <p>Bounded: frames to send wait in {@link #OUT_BYTES} bytes ({@link #canQueue} says whether one
 * more fits; the caller stops taking frames until it does); received bytes in {@link #IN_BYTES},
 * room for one largest frame and its prefix plus as much again read ahead. A length beyond
 * {@link VirtioNet#MAX_FRAME} cannot be skipped safely (the stream is not what we think it is), so
 * it is a {@link FramingException}; a frame shorter than an Ethernet header is skipped and counted.
 *
 * <p>Not thread-safe: the sending side and the receiving side may each be used by one thread at a
 * time (they share nothing).
 */
public final class FrameStream {
    public static final int PREFIX_BYTES = 4;
    public static final int MIN_FRAME = 14;
    public static final int OUT_BYTES = 256 * 1024;
    public static final int IN_BYTES = 2 * (PREFIX_BYTES + VirtioNet.MAX_FRAME);
    private static final java.lang.foreign.ValueLayout.OfInt BE32 = JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    /** The peer sent a length no frame can have. */
    public static final class FramingException extends Exception {
        public FramingException(String message) {
            super(message);
        }
    }

    private final Arena arena = Arena.ofShared();
    private final MemorySegment out = arena.allocate(OUT_BYTES);
    private final MemorySegment in = arena.allocate(IN_BYTES);
    private int outHead, outTail;
    /** Bytes of the frame at {@code outHead} (its length included) not written yet; 0 between frames. */
    private int outFrameLeft;
    private int inHead, inTail;
    private long runts;

    /** Whether a frame of {@code frameLen} bytes fits in the send buffer now. */
    public boolean canQueue(int frameLen) {
        return OUT_BYTES - (outTail - outHead) >= PREFIX_BYTES + frameLen;
    }

    /** Queues frame {@code src[off, off + len)} behind its length; {@link #canQueue} must have said yes. */
    public void queue(byte[] src, int off, int len) {
        if (!canQueue(len)) throw new IllegalStateException("no room for a frame of " + len + " bytes");
        if (outTail + PREFIX_BYTES + len > OUT_BYTES) { // move what is left to the front
            MemorySegment.copy(out, outHead, out, 0, outTail - outHead);
            outTail -= outHead;
            outHead = 0;
        }
        out.set(BE32, outTail, len);
        MemorySegment.copy(src, off, out, JAVA_BYTE, outTail + PREFIX_BYTES, len);
        outTail += PREFIX_BYTES + len;
    }

    /** Bytes queued and not yet written. */
    public int pendingOut() {
        return outTail - outHead;
    }

    /**
     * Writes queued frames to {@code fd}, one {@code send} for each (its length and the frame), until
     * they are all written or the socket is full; returns how many bytes were written, or -errno when
     * the socket failed (EPIPE: the peer is gone).
     *
     * <p>One frame per call, never a run of them, is what keeps passt in step: a stream socket takes a
     * long write in chunks of its own size, so a run written at once can stop in the middle of a frame
     * or of a length when the socket fills, and passt 2023.03 (Debian 12's) copes badly with a frame
     * cut off at the end of what it read: up to four trailing bytes of a length are dropped, and the
     * rest of a frame must come in its next read or the batch is dropped; either way it loses sync.
     * A frame of MTU size is one chunk, which the socket takes whole or not at all; only a frame
     * longer than a chunk can be cut, and its rest goes first at the next flush. QEMU's
     * {@code -netdev stream} writes the same way, a frame per {@code writev}.
     */
    public long flush(int fd) {
        long total = 0;
        while (outHead < outTail) {
            if (outFrameLeft == 0) outFrameLeft = PREFIX_BYTES + out.get(BE32, outHead);
            long n = SocketIo.send(fd, out.asSlice(outHead, outFrameLeft), outFrameLeft);
            if (n == SocketIo.WOULD_BLOCK) break;
            if (n < 0) return n;
            outHead += (int) n;
            outFrameLeft -= (int) n;
            total += n;
        }
        if (outHead == outTail) outHead = outTail = 0;
        return total;
    }

    /**
     * One read from {@code fd} into the receive buffer: the bytes read, 0 at end of stream,
     * {@link SocketIo#WOULD_BLOCK}, or -errno. With the buffer full (a whole largest frame is in
     * it, so {@link #nextFrame} would have taken one) it reads nothing and returns WOULD_BLOCK.
     */
    public long fill(int fd) {
        if (inTail == IN_BYTES && inHead > 0) { // make room at the end
            MemorySegment.copy(in, inHead, in, 0, inTail - inHead);
            inTail -= inHead;
            inHead = 0;
        }
        if (inTail == IN_BYTES) return SocketIo.WOULD_BLOCK;
        long n = SocketIo.recv(fd, in.asSlice(inTail), IN_BYTES - inTail);
        if (n > 0) inTail += (int) n;
        return n;
    }

    /**
     * The next whole frame in the receive buffer, copied to {@code dst} at {@code dstOff} (which must
     * have room for {@link VirtioNet#MAX_FRAME} bytes): its length, or -1 when it has not all arrived.
     */
    public int nextFrame(byte[] dst, int dstOff) throws FramingException {
        while (true) {
            int avail = inTail - inHead;
            if (avail < PREFIX_BYTES) return -1;
            long len = Integer.toUnsignedLong(in.get(BE32, inHead));
            if (len > VirtioNet.MAX_FRAME) {
                throw new FramingException("a frame of " + len + " bytes (at most " + VirtioNet.MAX_FRAME + " can be)");
            }
            if (avail < PREFIX_BYTES + len) {
                if (inHead > 0 && inHead + PREFIX_BYTES + len > IN_BYTES) { // it will not fit where it starts: move it
                    MemorySegment.copy(in, inHead, in, 0, avail);
                    inTail = avail;
                    inHead = 0;
                }
                return -1;
            }
            int n = (int) len;
            inHead += PREFIX_BYTES;
            if (n < MIN_FRAME) { // not even an Ethernet header: skip it
                inHead += n;
                runts++;
                continue;
            }
            MemorySegment.copy(in, JAVA_BYTE, inHead, dst, dstOff, n);
            inHead += n;
            if (inHead == inTail) inHead = inTail = 0;
            return n;
        }
    }

    /** Whether received bytes wait in the buffer (a frame may be there without a new read). */
    public boolean pendingIn() {
        return inTail > inHead;
    }

    /** Frames shorter than an Ethernet header that were skipped. */
    public long runts() {
        return runts;
    }

    /** Frees the buffers; nothing may be used afterwards. */
    public void close() {
        arena.close();
    }
}
