package dev.jvmm.device.virtio;

import dev.jvmm.device.virtio.TestDriver.Buf;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.jvmm.device.virtio.VirtioMmioTransport.*;
import static org.junit.jupiter.api.Assertions.*;

class VirtioNetTest {
    static final byte[] MAC = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

    /** A packet as the guest or the tap sees it: 12-byte header (with {@code hdrFill} in each byte) and a frame. */
    static byte[] packet(int frameLen, int hdrFill, int seed) {
        byte[] p = new byte[VirtioNet.HDR_BYTES + frameLen];
        Arrays.fill(p, 0, VirtioNet.HDR_BYTES, (byte) hdrFill);
        for (int i = VirtioNet.HDR_BYTES; i < p.length; i++) p[i] = (byte) (i * 7 + seed);
        return p;
    }

    static final class Sink implements VirtioNet.PacketPort {
        final List<byte[]> sent = new ArrayList<>();
        int result = 0;

        @Override
        public int send(byte[] packet, int len) {
            sent.add(Arrays.copyOf(packet, len));
            return result;
        }
    }

    @Test
    void featuresAndConfig() {
        VirtioNet net = new VirtioNet(MAC, new Sink());
        TestDriver d = new TestDriver(net);
        assertEquals(1, d.r(VirtioMmioTransport.DEVICE_ID));
        d.w(DEVICE_FEATURES_SEL, 0);
        int low = d.r(DEVICE_FEATURES);
        assertEquals((1 << VirtioNet.F_MAC) | (1 << VirtioNet.F_STATUS), low & 0xffffff, "MAC and STATUS only below bit 24");
        d.w(DEVICE_FEATURES_SEL, 1);
        assertEquals(1, d.r(DEVICE_FEATURES) & 1, "VERSION_1");
        for (int i = 0; i < 6; i++) assertEquals(MAC[i] & 0xff, d.t.read(CONFIG + i, 1));
        assertEquals(VirtioNet.S_LINK_UP, d.t.read(CONFIG + 6, 2));
        assertEquals(0x563412005452L, d.t.read(CONFIG, 4) | (d.t.read(CONFIG + 4, 2) << 32));
        d.w(QUEUE_SEL, 0);
        assertEquals(VirtioNet.QUEUE_SIZE, d.r(QUEUE_NUM_MAX));
        d.w(QUEUE_SEL, 1);
        assertEquals(VirtioNet.QUEUE_SIZE, d.r(QUEUE_NUM_MAX));
        assertArrayEquals(MAC, net.mac());
        assertThrows(IllegalArgumentException.class, () -> new VirtioNet(new byte[5], new Sink()));
    }

    @Test
    void transmitPassesHeaderAndFrameAsOnePacket() {
        Sink sink = new Sink();
        VirtioNet net = new VirtioNet(MAC, sink);
        TestDriver d = new TestDriver(net).init((1L << F_VERSION_1) | (1L << VirtioNet.F_MAC), 16);
        byte[] p1 = packet(60, 0, 1);
        p1[10] = 1; // num_buffers from the driver: passed on as it is
        byte[] p2 = packet(1514, 0x55, 2); // header bytes with junk flags/GSO fields: zeroed
        // header and frame in separate buffers, the frame split over two
        d.submit(VirtioNet.TRANSMITQ, Buf.r(d.put(Arrays.copyOfRange(p1, 0, 12)), 12),
                Buf.r(d.put(Arrays.copyOfRange(p1, 12, 40)), 28), Buf.r(d.put(Arrays.copyOfRange(p1, 40, 72)), 32));
        d.submit(VirtioNet.TRANSMITQ, Buf.r(d.put(p2), p2.length));
        d.kick(VirtioNet.TRANSMITQ);
        assertEquals(2, sink.sent.size());
        assertArrayEquals(p1, sink.sent.get(0));
        byte[] expect2 = p2.clone();
        Arrays.fill(expect2, 0, 10, (byte) 0);
        assertArrayEquals(expect2, sink.sent.get(1));
        assertEquals(2, d.usedIdx(VirtioNet.TRANSMITQ));
        assertEquals(0, d.usedLen(VirtioNet.TRANSMITQ, 0));
        assertEquals(2L, net.counters().get("tx_packets"));
        assertEquals(60L + 1514, net.counters().get("bytes"));
        assertEquals(0L, net.counters().get("errors"));
        assertEquals(INT_USED_BUFFER, d.r(INTERRUPT_STATUS));
    }

    @Test
    void transmitDropsOversizedRuntAndRefusedPackets() {
        Sink sink = new Sink();
        VirtioNet net = new VirtioNet(MAC, sink);
        TestDriver d = new TestDriver(net).init();
        long big = d.alloc(VirtioNet.MAX_PACKET + 1);
        d.submit(VirtioNet.TRANSMITQ, Buf.r(big, VirtioNet.MAX_PACKET + 1));     // too long
        d.submit(VirtioNet.TRANSMITQ, Buf.r(d.put(new byte[20]), 20));           // shorter than header + Ethernet header
        d.submit(VirtioNet.TRANSMITQ, Buf.r(big, VirtioNet.MAX_PACKET));         // the largest allowed
        d.kick(VirtioNet.TRANSMITQ);
        assertEquals(1, sink.sent.size());
        assertEquals(VirtioNet.MAX_PACKET, sink.sent.get(0).length);
        assertEquals(3, d.usedIdx(VirtioNet.TRANSMITQ), "dropped chains are returned too");
        sink.result = -11; // the backend refuses (EAGAIN)
        d.submit(VirtioNet.TRANSMITQ, Buf.r(d.put(packet(60, 0, 3)), 72));
        d.kick(VirtioNet.TRANSMITQ);
        assertEquals(4, d.usedIdx(VirtioNet.TRANSMITQ));
        assertEquals(3L, net.counters().get("tx_dropped"));
        assertEquals(3L, net.counters().get("errors"));
        assertEquals(1L, net.counters().get("tx_packets"));
        assertEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET, "bad packets do not break the device");
    }

    @Test
    void receiveFillsOneChainWithCleanHeader() {
        VirtioNet net = new VirtioNet(MAC, new Sink());
        TestDriver d = new TestDriver(net).init();
        long hdr = d.alloc(12), data = d.alloc(1526);
        d.submit(VirtioNet.RECEIVEQ, Buf.w(hdr, 12), Buf.w(data, 1526)); // Linux's layout: header, then the frame
        long whole = d.alloc(2048);
        d.submit(VirtioNet.RECEIVEQ, Buf.w(whole, 2048));
        byte[] p1 = packet(1514, 0x33, 4); // the tap's header contents are replaced
        byte[] p2 = packet(42, 0, 5);
        assertEquals(VirtioNet.DELIVERED, net.deliver(p1, p1.length));
        assertEquals(VirtioNet.DELIVERED, net.deliver(p2, p2.length));
        byte[] expectHdr = new byte[12];
        expectHdr[10] = 1; // num_buffers = 1
        assertArrayEquals(expectHdr, d.mem.read(hdr, 12));
        assertArrayEquals(Arrays.copyOfRange(p1, 12, p1.length), d.mem.read(data, 1514));
        assertArrayEquals(expectHdr, d.mem.read(whole, 12));
        assertArrayEquals(Arrays.copyOfRange(p2, 12, p2.length), d.mem.read(whole + 12, 42));
        assertEquals(2, d.usedIdx(VirtioNet.RECEIVEQ));
        assertEquals(p1.length, d.usedLen(VirtioNet.RECEIVEQ, 0));
        assertEquals(p2.length, d.usedLen(VirtioNet.RECEIVEQ, 1));
        assertEquals(INT_USED_BUFFER, d.r(INTERRUPT_STATUS));
        assertEquals(2L, net.counters().get("rx_packets"));
    }

    @Test
    void receiveWithoutBuffersAsksToRetryAndListenerFires() {
        VirtioNet net = new VirtioNet(MAC, new Sink());
        int[] listened = new int[1];
        net.onReceiveBuffers(() -> listened[0]++);
        byte[] p = packet(60, 0, 6);
        assertEquals(VirtioNet.NO_BUFFER, net.deliver(p, p.length), "not active yet");
        TestDriver d = new TestDriver(net).init((1L << F_VERSION_1) | (1L << SplitVirtqueue.F_EVENT_IDX), 16);
        assertEquals(VirtioNet.NO_BUFFER, net.deliver(p, p.length), "no receive buffers");
        assertEquals(0, d.availEvent(VirtioNet.RECEIVEQ), "with EVENT_IDX the device asks to hear of the next buffer");
        long b = d.alloc(1526);
        d.submit(VirtioNet.RECEIVEQ, Buf.w(b, 1526));
        d.kick(VirtioNet.RECEIVEQ);
        assertEquals(1, listened[0]);
        assertEquals(VirtioNet.DELIVERED, net.deliver(p, p.length));
        assertEquals(VirtioNet.NO_BUFFER, net.deliver(p, p.length));
        assertEquals(1, d.usedIdx(VirtioNet.RECEIVEQ));
        assertEquals(0L, net.counters().get("rx_dropped"));
    }

    @Test
    void receiveDropsBadSizesAndTooSmallBuffers() {
        VirtioNet net = new VirtioNet(MAC, new Sink());
        TestDriver d = new TestDriver(net).init();
        byte[] huge = new byte[VirtioNet.MAX_PACKET + 1];
        assertEquals(VirtioNet.DROPPED, net.deliver(huge, huge.length));
        assertEquals(VirtioNet.DROPPED, net.deliver(new byte[20], 20));
        assertEquals(VirtioNet.DROPPED, net.deliver(new byte[30], 31), "len beyond the array");
        assertEquals(0, d.usedIdx(VirtioNet.RECEIVEQ), "no buffer consumed for a bad packet");
        long small = d.alloc(100);
        d.submit(VirtioNet.RECEIVEQ, Buf.w(small, 100));
        byte[] p = packet(1514, 0, 7);
        assertEquals(VirtioNet.DROPPED, net.deliver(p, p.length));
        assertEquals(1, d.usedIdx(VirtioNet.RECEIVEQ), "the too-small buffer goes back empty");
        assertEquals(0, d.usedLen(VirtioNet.RECEIVEQ, 0));
        long big = d.alloc(VirtioNet.MAX_PACKET);
        d.submit(VirtioNet.RECEIVEQ, Buf.w(big, VirtioNet.MAX_PACKET));
        byte[] max = packet(VirtioNet.MAX_FRAME, 0, 8);
        assertEquals(VirtioNet.DELIVERED, net.deliver(max, max.length));
        assertEquals(VirtioNet.MAX_PACKET, d.usedLen(VirtioNet.RECEIVEQ, 1));
        assertEquals(4L, net.counters().get("rx_dropped"));
        assertEquals(4L, net.counters().get("errors"));
    }

    @Test
    void receiveOnAReadOnlyBufferBreaksTheQueueNotTheVmm() {
        VirtioNet net = new VirtioNet(MAC, new Sink());
        TestDriver d = new TestDriver(net).init();
        d.submit(VirtioNet.RECEIVEQ, Buf.r(d.alloc(100), 100), Buf.w(d.alloc(1600), 1600));
        byte[] p = packet(60, 0, 9);
        // a readable buffer in a receive chain is the driver's business; the device only writes the writable part
        assertEquals(VirtioNet.DELIVERED, net.deliver(p, p.length));
        // an available index running ahead breaks the queue: deliver reports no buffer, the device needs a reset
        d.ram.set(TestDriver.U16, TestDriver.availAddr(VirtioNet.RECEIVEQ) + 2, (short) 100);
        assertEquals(VirtioNet.NO_BUFFER, net.deliver(p, p.length));
        assertNotEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET);
        assertEquals(VirtioNet.NO_BUFFER, net.deliver(p, p.length));
    }

    /** A back end with a full socket: it says no, and the guest's packets stay in the ring until it has room. */
    static final class Backpressured implements VirtioNet.Backend {
        final List<byte[]> sent = new ArrayList<>();
        int room;

        @Override
        public boolean sendReady() {
            return room > 0;
        }

        @Override
        public int send(byte[] packet, int len) {
            room--;
            sent.add(Arrays.copyOf(packet, len));
            return len;
        }

        @Override
        public void start(VirtioNet net, dev.jvmm.event.EventLoop loop, dev.jvmm.device.DeviceFailure failure) {
        }

        @Override
        public java.util.Map<String, Long> counters() {
            return java.util.Map.of("backend_thing", 7L);
        }

        @Override
        public void close() {
        }
    }

    @Test
    void aBackendWithoutRoomLeavesPacketsInTheQueueUntilItIsReady() {
        Backpressured b = new Backpressured();
        VirtioNet net = new VirtioNet(MAC, b);
        TestDriver d = new TestDriver(net).init();
        b.room = 1;
        for (int i = 0; i < 3; i++) d.submit(VirtioNet.TRANSMITQ, Buf.r(d.put(packet(60, 0, 10 + i)), 72));
        d.kick(VirtioNet.TRANSMITQ);
        assertEquals(1, b.sent.size());
        assertEquals(1, d.usedIdx(VirtioNet.TRANSMITQ), "the others wait in the ring: nothing is dropped");
        b.room = 5;
        net.transmitReady();
        assertEquals(3, b.sent.size());
        assertEquals(3, d.usedIdx(VirtioNet.TRANSMITQ));
        assertArrayEquals(packet(60, 0, 12), b.sent.get(2), "in order");
        assertEquals(0L, net.counters().get("tx_dropped"));
        assertEquals(7L, net.counters().get("backend_thing"), "the back end's counters are the device's");
    }

    @Test
    void theLinkGoesDownWithAConfigurationInterrupt() {
        VirtioNet net = new VirtioNet(MAC, new Sink());
        TestDriver d = new TestDriver(net).init((1L << F_VERSION_1) | (1L << VirtioNet.F_STATUS), 16);
        assertTrue(net.linkUp());
        int gen = d.r(CONFIG_GENERATION);
        net.setLinkUp(false);
        assertFalse(net.linkUp());
        assertEquals(0, d.t.read(CONFIG + 6, 2), "STATUS without LINK_UP");
        assertEquals(INT_CONFIG_CHANGE, d.r(INTERRUPT_STATUS) & INT_CONFIG_CHANGE);
        assertNotEquals(gen, d.r(CONFIG_GENERATION));
        d.ackAll();
        net.setLinkUp(false);
        assertEquals(0, d.r(INTERRUPT_STATUS), "no change, no interrupt");
    }
}
