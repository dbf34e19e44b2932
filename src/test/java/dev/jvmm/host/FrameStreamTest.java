package dev.jvmm.host;

import dev.jvmm.device.virtio.VirtioNet;
import dev.jvmm.sys.SocketIo;
import dev.jvmm.sys.UnixSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * passt's stream framing (a 32-bit big-endian length, then the frame) over a socketpair, with the
 * test as the peer: writes that the socket takes only in part, and a peer that sends the prefix and
 * the frame in any pieces.
 */
class FrameStreamTest {
    final UnixSocket[] pair = UnixSocket.pair();
    final FrameStream frames = new FrameStream();
    final int ours = pair[0].fd();
    final UnixSocket peer = pair[1];

    @AfterEach
    void close() {
        frames.close();
        pair[0].close();
        pair[1].close();
    }

    static byte[] frame(int len, int seed) {
        byte[] f = new byte[len];
        new Random(seed).nextBytes(f);
        return f;
    }

    static byte[] prefixed(byte[]... fs) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] f : fs) {
            out.writeBytes(ByteBuffer.allocate(4).putInt(f.length).array());
            out.writeBytes(f);
        }
        return out.toByteArray();
    }

    byte[] peerReads(int n) throws Exception {
        return peer.receiveExactly(n, 0, System.nanoTime() + 5_000_000_000L).bytes();
    }

    void peerSends(byte[] b) throws Exception {
        peer.sendAll(b, new int[0], System.nanoTime() + 5_000_000_000L);
    }

    @Test
    void framesGoOutBehindTheirBigEndianLength() throws Exception {
        byte[] a = frame(60, 1), b = frame(1514, 2);
        frames.queue(a, 0, a.length);
        // a packet with its 12-byte virtio-net header: only the frame goes out
        byte[] withHeader = new byte[12 + b.length];
        System.arraycopy(b, 0, withHeader, 12, b.length);
        frames.queue(withHeader, 12, b.length);
        assertEquals(8 + 60 + 1514, frames.pendingOut());
        assertEquals(8 + 60 + 1514, frames.flush(ours));
        assertEquals(0, frames.pendingOut());
        byte[] got = peerReads(8 + 60 + 1514);
        assertArrayEquals(new byte[] {0, 0, 0, 60}, Arrays.copyOf(got, 4));
        assertArrayEquals(new byte[] {0, 0, 5, (byte) 0xea}, Arrays.copyOfRange(got, 64, 68));
        assertArrayEquals(prefixed(a, b), got);
    }

    @Test
    void shortWritesResumeWhereTheyStopped() throws Exception {
        List<byte[]> sent = new ArrayList<>();
        long written = 0;
        int seed = 0;
        // the peer reads nothing: fill the socket and the buffer until neither takes a largest frame
        while (frames.canQueue(VirtioNet.MAX_FRAME)) {
            byte[] f = frame(VirtioNet.MAX_FRAME - seed, seed++);
            frames.queue(f, 0, f.length);
            sent.add(f);
            long n = frames.flush(ours);
            assertTrue(n >= 0);
            written += n;
        }
        assertTrue(frames.pendingOut() > 0, "the socket filled");
        long expected = sent.stream().mapToLong(f -> 4 + f.length).sum();
        assertEquals(expected, written + frames.pendingOut());
        assertThrows(IllegalStateException.class, () -> frames.queue(new byte[VirtioNet.MAX_FRAME], 0, VirtioNet.MAX_FRAME));
        // the peer reads in odd pieces; each flush writes what fits (a largest frame may be cut: it is
        // more than the socket takes at once), the rest of a cut frame first
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        Random r = new Random(5);
        int added = 0;
        while (got.size() < expected) {
            int n = (int) Math.min(1 + r.nextInt(70_000), expected - got.size());
            got.writeBytes(peerReads(n));
            long w = frames.flush(ours);
            assertTrue(w >= 0);
            // more frames join the stream as room appears (a few: each one is read after it)
            if (added < 200 && frames.canQueue(100)) {
                added++;
                byte[] f = frame(100, seed++);
                frames.queue(f, 0, 100);
                sent.add(f);
                expected += 104;
                frames.flush(ours);
            }
        }
        assertEquals(0, frames.pendingOut());
        assertTrue(added > 0, "frames were queued behind a partly written one");
        assertArrayEquals(prefixed(sent.toArray(new byte[0][])), got.toByteArray());
        assertEquals(SocketIo.WOULD_BLOCK, SocketIo.recv(peer.fd(), java.lang.foreign.Arena.ofAuto().allocate(1), 1), "nothing more");
    }

    @Test
    void aFullSocketStopsTheWritesBetweenFramesNeverInOne() throws Exception {
        // frames of 1,000 bytes: the socket takes each whole or not at all, so whatever room the peer
        // makes, what is left queued is whole frames (one send for many would stop where the socket's
        // chunks end, mid-frame, and passt 2023.03 loses sync on such a cut)
        int step = 4 + 1000, seed = 100;
        long queued = 0;
        Random r = new Random(7);
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        List<byte[]> sent = new ArrayList<>();
        int fullFlushes = 0;
        for (int round = 0; round < 60; round++) {
            while (frames.canQueue(1000)) { // a backlog of many frames for one flush
                byte[] f = frame(1000, seed++);
                frames.queue(f, 0, f.length);
                sent.add(f);
                queued += step;
            }
            long n = frames.flush(ours);
            assertTrue(n >= 0);
            if (frames.pendingOut() > 0) fullFlushes++;
            assertEquals(0, frames.pendingOut() % step, "a flush stopped inside a frame (round " + round + ")");
            got.writeBytes(peerReads(1 + r.nextInt(90_000)));
        }
        assertTrue(fullFlushes > 30, "the socket filled: " + fullFlushes);
        while (got.size() < queued) {
            frames.flush(ours);
            got.writeBytes(peerReads((int) Math.min(65536, queued - got.size())));
        }
        assertArrayEquals(prefixed(sent.toArray(new byte[0][])), got.toByteArray());
    }

    @Test
    void shortReadsAssembleFramesFromAnyPieces() throws Exception {
        List<byte[]> fs = List.of(frame(14, 1), frame(1514, 2), frame(VirtioNet.MAX_FRAME, 3), frame(60, 4), frame(9000, 5));
        byte[] stream = prefixed(fs.toArray(new byte[0][]));
        byte[] dst = new byte[12 + VirtioNet.MAX_FRAME];
        List<byte[]> got = new ArrayList<>();
        Random r = new Random(9);
        int at = 0;
        // pieces of 1 to 7 bytes at first (prefixes split), then larger ones
        while (at < stream.length) {
            int n = Math.min(stream.length - at, at < 100 ? 1 + r.nextInt(7) : 1 + r.nextInt(20_000));
            peerSends(Arrays.copyOfRange(stream, at, at + n));
            at += n;
            long rd;
            while ((rd = frames.fill(ours)) > 0) {
                int len;
                while ((len = frames.nextFrame(dst, 12)) >= 0) got.add(Arrays.copyOfRange(dst, 12, 12 + len));
            }
            assertEquals(SocketIo.WOULD_BLOCK, rd);
        }
        assertEquals(fs.size(), got.size());
        for (int i = 0; i < fs.size(); i++) assertArrayEquals(fs.get(i), got.get(i), "frame " + i);
        assertFalse(frames.pendingIn());
        pair[1].close();
        assertEquals(0, frames.fill(ours), "end of stream");
    }

    @Test
    void runtsAreSkippedAndImpossibleLengthsRefused() throws Exception {
        byte[] good = frame(60, 7);
        peerSends(prefixed(new byte[3], new byte[0], good));
        frames.fill(ours);
        byte[] dst = new byte[VirtioNet.MAX_FRAME];
        assertEquals(60, frames.nextFrame(dst, 0));
        assertArrayEquals(good, Arrays.copyOf(dst, 60));
        assertEquals(2, frames.runts());
        peerSends(new byte[] {0, 1, 0, 0x0f}); // 65551: one more than a frame may have
        frames.fill(ours);
        FrameStream.FramingException e = assertThrows(FrameStream.FramingException.class, () -> frames.nextFrame(dst, 0));
        assertTrue(e.getMessage().contains("65551"), e.getMessage());
    }
}
