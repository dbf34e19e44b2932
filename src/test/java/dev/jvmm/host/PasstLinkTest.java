package dev.jvmm.host;

import dev.jvmm.device.virtio.TestDriver;
import dev.jvmm.device.virtio.TestDriver.Buf;
import dev.jvmm.device.virtio.VirtioAttachment;
import dev.jvmm.device.virtio.VirtioMmioTransport;
import dev.jvmm.device.virtio.VirtioNet;
import dev.jvmm.event.EventLoop;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.UnixSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The passt back end of virtio-net with a scripted guest (TestDriver) on a real event loop: a real
 * passt answering the guest's DHCP request, passt killed (the run ends, or an optional link goes
 * down), and back-pressure against a peer that stops reading.
 */
class PasstLinkTest {
    static final byte[] MAC = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    static final int RX_BUFFERS = 32, RX_BYTES = VirtioNet.HDR_BYTES + 1514;
    static final long MEM = 8 << 20, RX_BASE = 5 << 20;

    final EventLoop loop = new EventLoop();
    final List<String> failures = new CopyOnWriteArrayList<>();
    final GuestMemory mem = GuestMemory.wrap(List.of(new GuestMemory.Region(0, MEM, Arena.ofAuto().allocate(MEM, 4096))));
    VirtioNet net;
    TestDriver d;
    PasstLink link;
    int seenRx;

    @AfterEach
    void close() {
        if (net != null) net.close();
        loop.close();
    }

    static void requirePasst() {
        Assumptions.assumeTrue(Arrays.stream(System.getenv().getOrDefault("PATH", "").split(":"))
                .anyMatch(p -> !p.isEmpty() && Files.isExecutable(Path.of(p, "passt"))), "needs passt (Debian package passt)");
    }

    /** The device on {@code link}, a driver with receive buffers posted. */
    void attach(PasstLink l) {
        attach(l, RX_BUFFERS);
    }

    /** The device on {@code link}, a driver with {@code rxBuffers} receive buffers posted. */
    void attach(PasstLink l, int rxBuffers) {
        link = l;
        net = new VirtioNet(MAC, l);
        d = new TestDriver(net, mem, loop::execute);
        int[] fds = {LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK), LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK)};
        net.attach(new VirtioAttachment(loop, fds, d.t::notify, d.t::resume, failures::add));
        d.init((1L << VirtioMmioTransport.F_VERSION_1) | (1L << VirtioNet.F_MAC) | (1L << VirtioNet.F_STATUS), 256);
        for (int i = 0; i < rxBuffers; i++) d.submit(VirtioNet.RECEIVEQ, Buf.w(RX_BASE + (long) i * 2048, RX_BYTES));
        if (rxBuffers > 0) d.kick(VirtioNet.RECEIVEQ);
    }

    void runUntil(BooleanSupplier done, long ms) {
        long deadline = System.nanoTime() + ms * 1_000_000L;
        while (!done.getAsBoolean() && System.nanoTime() < deadline) loop.runOnce(50);
    }

    /** The frames (without the virtio-net header) the guest received since the last call. */
    List<byte[]> received() {
        List<byte[]> got = new ArrayList<>();
        while (seenRx != d.usedIdx(VirtioNet.RECEIVEQ)) {
            int head = d.usedId(VirtioNet.RECEIVEQ, seenRx), len = d.usedLen(VirtioNet.RECEIVEQ, seenRx);
            seenRx++;
            int buffer = head; // one descriptor per buffer, posted in order
            byte[] b = new byte[len];
            mem.read(RX_BASE + (long) buffer * 2048, b);
            got.add(Arrays.copyOfRange(b, VirtioNet.HDR_BYTES, len));
        }
        return got;
    }

    void transmit(byte[] frame) {
        byte[] p = new byte[VirtioNet.HDR_BYTES + frame.length];
        System.arraycopy(frame, 0, p, VirtioNet.HDR_BYTES, frame.length);
        d.submit(VirtioNet.TRANSMITQ, Buf.r(d.put(p), p.length));
        d.kick(VirtioNet.TRANSMITQ);
    }

    /** A DHCPDISCOVER from MAC, broadcast, with transaction id {@code xid}. */
    static byte[] dhcpDiscover(int xid) {
        ByteBuffer bootp = ByteBuffer.allocate(300);
        bootp.put((byte) 1).put((byte) 1).put((byte) 6).put((byte) 0).putInt(xid).putShort((short) 0).putShort((short) 0x8000);
        bootp.position(28);
        bootp.put(MAC);
        bootp.position(236);
        bootp.putInt(0x63825363).put(new byte[] {53, 1, 1, (byte) 255});
        byte[] udp = ByteBuffer.allocate(8 + 300).putShort((short) 68).putShort((short) 67).putShort((short) 308).putShort((short) 0)
                .put(bootp.array()).array();
        ByteBuffer ip = ByteBuffer.allocate(20 + udp.length);
        ip.put((byte) 0x45).put((byte) 0).putShort((short) (20 + udp.length)).putInt(0).put((byte) 64).put((byte) 17).putShort((short) 0)
                .putInt(0).putInt(0xffffffff);
        int sum = 0;
        for (int i = 0; i < 20; i += 2) sum += ip.getShort(i) & 0xffff;
        while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
        ip.putShort(10, (short) ~sum);
        ip.position(20);
        ip.put(udp);
        ByteBuffer eth = ByteBuffer.allocate(14 + ip.capacity());
        eth.put(new byte[] {-1, -1, -1, -1, -1, -1}).put(MAC).putShort((short) 0x0800).put(ip.array());
        return eth.array();
    }

    /** The DHCP message type of {@code frame} if it is a reply with transaction id {@code xid}, else -1. */
    static int dhcpReplyType(byte[] frame, int xid) {
        ByteBuffer f = ByteBuffer.wrap(frame);
        if (frame.length < 14 + 20 + 8 + 240 || f.getShort(12) != 0x0800 || frame[14 + 9] != 17) return -1;
        int ihl = (frame[14] & 0xf) * 4;
        int udp = 14 + ihl, bootp = udp + 8;
        if ((f.getShort(udp) & 0xffff) != 67 || frame[bootp] != 2 || f.getInt(bootp + 4) != xid || f.getInt(bootp + 236) != 0x63825363) return -1;
        for (int o = bootp + 240; o + 1 < frame.length && frame[o] != (byte) 255; o += 2 + (frame[o + 1] & 0xff)) {
            if (frame[o] == 0) {
                o -= 1; // pad: one byte
                continue;
            }
            if (frame[o] == 53) return frame[o + 2];
        }
        return -1;
    }

    @Test
    void passtAnswersTheGuestsDhcpDiscoverAndItsEndStopsTheRun() throws Exception {
        requirePasst();
        attach(PasstLink.launch(null, List.of(new PasstLink.Forward("tcp", "127.0.0.1", 28080, 80)), false));
        int xid = 0x4a564d4d;
        transmit(dhcpDiscover(xid));
        List<byte[]> got = new ArrayList<>();
        runUntil(() -> {
            got.addAll(received());
            return got.stream().anyMatch(f -> dhcpReplyType(f, xid) == 2);
        }, 10_000);
        assertTrue(got.stream().anyMatch(f -> dhcpReplyType(f, xid) == 2), "a DHCPOFFER came back through passt: " + got.size() + " frames");
        assertEquals(1L, net.counters().get("passt_tx_frames"));
        assertTrue(net.counters().get("passt_rx_frames") >= 1);
        assertEquals(0L, net.counters().get("tx_dropped"));
        assertTrue(failures.isEmpty(), failures::toString);
        // passt is killed: the run ends with one line saying so
        long pid = link.helper().pid();
        ProcessHandle.of(pid).orElseThrow().destroyForcibly();
        runUntil(() -> !failures.isEmpty(), 10_000);
        assertEquals(1, failures.size(), failures::toString);
        assertTrue(failures.get(0).matches("passt \\(pid " + pid + "\\): passt closed its socket; passt was killed by signal 9.*"), failures.get(0));
        assertFalse(failures.get(0).contains("\n"), "one line");
        assertFalse(failures.get(0).contains("qrap") || failures.get(0).contains("syslog"), "passt's banner is no reason: " + failures.get(0));
    }

    @Test
    void anOptionalLinkGoesDownWhenPasstEndsAndTheGuestsPacketsAreDropped() throws Exception {
        requirePasst();
        attach(PasstLink.launch(null, List.of(), true));
        assertTrue(net.linkUp());
        ProcessHandle.of(link.helper().pid()).orElseThrow().destroyForcibly();
        runUntil(link::ended, 10_000);
        assertTrue(link.ended());
        assertFalse(net.linkUp(), "the guest sees the link go down");
        transmit(dhcpDiscover(1));
        runUntil(() -> d.usedIdx(VirtioNet.TRANSMITQ) == 1, 2000);
        assertEquals(1, d.usedIdx(VirtioNet.TRANSMITQ), "the packet is taken");
        assertEquals(1L, net.counters().get("passt_dropped_after_end"));
        assertEquals(1L, net.counters().get("tx_dropped"));
        assertTrue(failures.isEmpty(), "the run goes on: " + failures);
    }

    @Test
    void aPeerThatStopsReadingHoldsTheGuestsPacketsInTheRingAndNoneIsLost() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        attach(new PasstLink(null, pair[0], false, "test peer"));
        int n = 40, len = 60_000;
        List<byte[]> sent = new ArrayList<>();
        Random r = new Random(3);
        for (int i = 0; i < n; i++) {
            byte[] f = new byte[len];
            r.nextBytes(f);
            sent.add(f);
            transmit(f);
        }
        runUntil(() -> net.counters().get("passt_tx_stalls") > 0, 2000);
        for (int i = 0; i < 10; i++) loop.runOnce(20);
        int taken = d.usedIdx(VirtioNet.TRANSMITQ);
        assertTrue(net.counters().get("passt_tx_stalls") > 0, "the transmit queue stalled");
        assertTrue(taken < n, "packets wait in the ring while the peer reads nothing: " + taken + " of " + n + " taken");
        assertEquals(0L, net.counters().get("tx_dropped"));
        // the peer reads again: everything arrives, in order, each frame behind its length
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        long expected = (long) n * (4 + len);
        Thread reader = Thread.ofPlatform().start(() -> {
            try {
                while (stream.size() < expected) {
                    byte[] b = pair[1].receiveExactly((int) Math.min(100_000, expected - stream.size()), 0, System.nanoTime() + 20_000_000_000L).bytes();
                    synchronized (stream) {
                        stream.writeBytes(b);
                    }
                }
            } catch (Exception e) {
                failures.add(e.toString());
            }
        });
        runUntil(() -> d.usedIdx(VirtioNet.TRANSMITQ) == n && !reader.isAlive(), 20_000);
        reader.join(5000);
        assertEquals(n, d.usedIdx(VirtioNet.TRANSMITQ));
        assertTrue(failures.isEmpty(), failures::toString);
        ByteBuffer all = ByteBuffer.wrap(stream.toByteArray());
        for (int i = 0; i < n; i++) {
            assertEquals(len, all.getInt(), "frame " + i + "'s length");
            byte[] f = new byte[len];
            all.get(f);
            assertArrayEquals(sent.get(i), f, "frame " + i);
        }
        assertEquals(0L, net.counters().get("tx_dropped"));
        assertEquals((long) n, net.counters().get("passt_tx_frames"));
        pair[1].close();
    }

    /** An Ethernet frame with an IPv4 TCP segment from port 8080: {@code payload} bytes (each {@code (byte) seq}) and TCP {@code flags}. */
    static byte[] tcp4(int flags, int payload, int seq) {
        ByteBuffer b = ByteBuffer.allocate(14 + 20 + 20 + payload);
        b.put(MAC).put(new byte[] {2, 0, 0, 0, 0, 1}).putShort((short) 0x0800);
        b.put((byte) 0x45).put((byte) 0).putShort((short) (40 + payload)).putInt(0).put((byte) 64).put((byte) 6).putShort((short) 0)
                .putInt(0xc0000201).putInt(0xc0000202);
        b.putShort((short) 8080).putShort((short) 40000).putInt(seq).putInt(1).put((byte) 0x50).put((byte) flags).putShort((short) 65535).putInt(0);
        while (b.hasRemaining()) b.put((byte) seq);
        return b.array();
    }

    static byte[] tcp6(int flags, int payload) {
        ByteBuffer b = ByteBuffer.allocate(14 + 40 + 20 + payload);
        b.put(MAC).put(new byte[] {2, 0, 0, 0, 0, 1}).putShort((short) 0x86dd);
        b.putInt(0x60000000).putShort((short) (20 + payload)).put((byte) 6).put((byte) 64).put(new byte[32]);
        b.putShort((short) 8080).putShort((short) 40000).putInt(7).putInt(1).put((byte) 0x50).put((byte) flags).putShort((short) 65535).putInt(0);
        return b.array();
    }

    @Test
    void onlyATcpSegmentWithDataAndNoSynFinOrRstMayBeDroppedForRoom() {
        int ack = 0x10, psh = 0x08, fin = 0x01, syn = 0x02, rst = 0x04;
        assertTrue(PasstLink.droppable(tcp4(ack | psh, 1400, 0), 0, 14 + 40 + 1400));
        assertTrue(PasstLink.droppable(tcp6(ack, 1000), 0, 14 + 60 + 1000));
        byte[] framed = new byte[VirtioNet.HDR_BYTES + 14 + 40 + 100];
        System.arraycopy(tcp4(ack, 100, 0), 0, framed, VirtioNet.HDR_BYTES, framed.length - VirtioNet.HDR_BYTES);
        assertTrue(PasstLink.droppable(framed, VirtioNet.HDR_BYTES, framed.length - VirtioNet.HDR_BYTES), "at an offset");
        for (int f : new int[] {ack | fin, ack | fin | psh, syn, syn | ack, rst, rst | ack}) {
            assertFalse(PasstLink.droppable(tcp4(f, 100, 0), 0, 14 + 40 + 100), "flags " + f + " with data");
            assertFalse(PasstLink.droppable(tcp6(f, 100), 0, 14 + 60 + 100), "IPv6, flags " + f);
        }
        assertFalse(PasstLink.droppable(tcp4(ack, 0, 0), 0, 14 + 40), "a bare ACK");
        assertFalse(PasstLink.droppable(tcp6(ack, 0), 0, 14 + 60), "a bare ACK over IPv6");
        assertFalse(PasstLink.droppable(dhcpDiscover(1), 0, dhcpDiscover(1).length), "UDP");
        byte[] arp = new byte[42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assertFalse(PasstLink.droppable(arp, 0, arp.length), "ARP");
        byte[] d = tcp4(ack, 100, 0);
        assertFalse(PasstLink.droppable(d, 0, 14 + 30), "cut inside the TCP header");
        assertFalse(PasstLink.droppable(d, 0, 13), "shorter than an Ethernet header");
        byte[] lying = tcp4(ack, 100, 0);
        lying[16] = (byte) 0xff; // IPv4 total length beyond the frame
        assertFalse(PasstLink.droppable(lying, 0, lying.length), "a length beyond the frame");
        byte[] tiny = tcp4(ack, 100, 0);
        tiny[14 + 20 + 12] = 0x10; // data offset 4 bytes: not a TCP header
        assertFalse(PasstLink.droppable(tiny, 0, tiny.length), "a data offset below 20");
    }

    /**
     * Debian 12's passt drops what a full socket does not take, and never resends a FIN it dropped
     * (the guest's connection then hangs until passt resets it). So passt's socket is read while the
     * guest has no receive buffer at all: the frames wait in jvmm's queue; past its bound data segments
     * are dropped, and the FIN behind them still arrives, after the data that fitted, in order.
     */
    @Test
    void whileTheGuestTakesNothingPasstsSocketIsStillReadAndAFinBehindAFullQueueArrives() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        attach(new PasstLink(null, pair[0], false, "test peer"), 0);
        int payload = 1400, packet = VirtioNet.HDR_BYTES + 14 + 40 + payload;
        int n = PasstLink.RX_QUEUE_BYTES / packet + 400, fits = PasstLink.RX_QUEUE_BYTES / packet;
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        for (int i = 0; i < n; i++) {
            byte[] f = tcp4(0x18, payload, i);
            stream.writeBytes(ByteBuffer.allocate(4).putInt(f.length).array());
            stream.writeBytes(f);
        }
        byte[] fin = tcp4(0x11, 0, n);
        stream.writeBytes(ByteBuffer.allocate(4).putInt(fin.length).array());
        stream.writeBytes(fin);
        byte[] all = stream.toByteArray();
        pair[1].setNonBlocking(true); // so that the deadline holds
        Thread writer = Thread.ofPlatform().start(() -> {
            try {
                pair[1].sendAll(all, new int[0], System.nanoTime() + 15_000_000_000L); // passt's socket never stays full
            } catch (Exception e) {
                failures.add("the peer's writes: " + e);
            }
        });
        runUntil(() -> !writer.isAlive() && net.counters().get("passt_rx_drops") >= n - fits, 20_000);
        writer.join(1000);
        if (writer.isAlive()) pair[1].close(); // a blocked writer ends
        assertTrue(failures.isEmpty(), failures::toString);
        assertFalse(writer.isAlive(), "the peer's writes never completed: its socket stayed full");
        assertEquals(0, d.usedIdx(VirtioNet.RECEIVEQ), "the guest has posted no buffer");
        assertEquals((long) (n - fits), net.counters().get("passt_rx_drops"), "data segments beyond the queue's bound");
        // the guest posts buffers, a ring's worth at a time
        List<byte[]> got = new ArrayList<>();
        int posted = 0;
        while (got.isEmpty() || got.get(got.size() - 1).length != fin.length) {
            if (posted > n + 256) fail("no FIN after " + got.size() + " frames");
            for (int i = 0; i < 256; i++) d.submit(VirtioNet.RECEIVEQ, Buf.w(RX_BASE + (long) (posted++ % 256) * 2048, RX_BYTES));
            d.kick(VirtioNet.RECEIVEQ);
            int want = Math.min(posted, fits + 1);
            runUntil(() -> d.usedIdx(VirtioNet.RECEIVEQ) >= want, 5000);
            got.addAll(received());
        }
        assertEquals(fits + 1, got.size());
        for (int i = 0; i < fits; i++) assertArrayEquals(tcp4(0x18, payload, i), got.get(i), "data segment " + i + ", in order");
        assertArrayEquals(fin, got.get(fits), "the FIN, last");
        assertEquals((long) (fits + 1), net.counters().get("passt_rx_frames"));
        assertEquals((long) (n - fits), net.counters().get("rx_dropped"));
        pair[1].close();
    }

    /**
     * A segment passt sends again while its first copy still waits in jvmm's queue (passt resends its
     * whole unacknowledged window when its 2 s ACK timer runs out, and a slow guest has not taken the
     * window yet) is not queued twice: the guest gets each segment once, in order, and the room stays
     * for fresh data. The code before queued both copies (23 frames here), so a few such rounds filled
     * the queue with copies and the fresh segments behind them were the ones dropped.
     */
    @Test
    void aSegmentPasstSendsAgainWhileItsFirstCopyWaitsIsQueuedOnce() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        attach(new PasstLink(null, pair[0], false, "test peer"), 0);
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        int[] seqs = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        for (int seq : seqs) {
            byte[] f = tcp4(0x18, 1000, seq * 1000);
            stream.writeBytes(ByteBuffer.allocate(4).putInt(f.length).array());
            stream.writeBytes(f);
        }
        pair[1].sendAll(stream.toByteArray(), new int[0], System.nanoTime() + 5_000_000_000L);
        runUntil(() -> net.counters().get("passt_rx_duplicates") >= 10, 5000);
        assertEquals(10L, net.counters().get("passt_rx_duplicates"));
        assertEquals(0L, net.counters().get("passt_rx_drops"));
        for (int i = 0; i < 32; i++) d.submit(VirtioNet.RECEIVEQ, Buf.w(RX_BASE + i * 2048L, RX_BYTES));
        d.kick(VirtioNet.RECEIVEQ);
        runUntil(() -> d.usedIdx(VirtioNet.RECEIVEQ) >= 13, 5000);
        List<byte[]> got = received();
        assertEquals(13, got.size());
        for (int i = 0; i < 13; i++) assertArrayEquals(tcp4(0x18, 1000, i * 1000), got.get(i), "segment " + i + ", once, in order");
        // once delivered, a copy is no duplicate any more: the guest may need it (its ACK was lost)
        byte[] again = tcp4(0x18, 1000, 0);
        pair[1].sendAll(ByteBuffer.allocate(4 + again.length).putInt(again.length).put(again).array(), new int[0], System.nanoTime() + 5_000_000_000L);
        runUntil(() -> d.usedIdx(VirtioNet.RECEIVEQ) >= 14, 5000);
        assertEquals(14, d.usedIdx(VirtioNet.RECEIVEQ));
        assertTrue(failures.isEmpty(), failures::toString);
        pair[1].close();
    }
}
