package dev.jvmm.device.virtio;

import java.util.concurrent.atomic.AtomicLong;

/**
 * virtio-net (id 1) with one queue pair and no offloads: receiveq (0) takes frames to the guest,
 * transmitq (1) carries the guest's frames to the {@link PacketPort}. Features: MAC (the address in
 * the configuration space) and STATUS (the link is up unless a back end that went away takes it
 * down, {@link #setLinkUp}). Without MRG_RXBUF each frame fills one receive chain; without
 * offloads the 12-byte {@code virtio_net_hdr_v1} in front of each frame says nothing (flags and GSO
 * fields zero, num_buffers 1), and a packet is at most 12 + {@link #MAX_FRAME} bytes.
 *
 * <p>Packets on both sides include that header, so a tap with IFF_VNET_HDR (header size 12) can take
 * them as they are. Host frames go in with {@link #deliver}; when it finds no receive buffer the
 * caller keeps the frame and retries once the {@link #onReceiveBuffers(Runnable) listener} runs
 * (on the notifying thread, with the device lock held: schedule the retry, do not block).
 */
public final class VirtioNet extends BackedVirtioDevice<VirtioNet, VirtioNet.Backend> {
    public static final int DEVICE_ID = 1;
    public static final int RECEIVEQ = 0;
    public static final int TRANSMITQ = 1;
    public static final int QUEUE_SIZE = 256;

    public static final int F_MAC = 5;
    public static final int F_STATUS = 16;
    public static final int S_LINK_UP = 1;

    /** {@code sizeof(struct virtio_net_hdr_v1)}. */
    public static final int HDR_BYTES = 12;
    /** The largest Ethernet frame (without the header) either way: a 65535-byte MTU plus headers. */
    public static final int MAX_FRAME = 65550;
    public static final int MAX_PACKET = HDR_BYTES + MAX_FRAME;
    /** Shorter than a header and an Ethernet header is not a frame. */
    public static final int MIN_PACKET = HDR_BYTES + 14;

    /** deliver() results. */
    public static final int DELIVERED = 1, NO_BUFFER = 0, DROPPED = -1;

    /** Where the guest's packets (header + frame) go. Called with the device lock held: must not block. */
    @FunctionalInterface
    public interface PacketPort {
        /** Sends {@code packet[0, len)}; returns a negative value when the packet was dropped. */
        int send(byte[] packet, int len);
    }

    /**
     * The host side of the link (a tap, a user-mode network stack): takes the guest's packets and
     * brings the host's in with {@link #deliver}, retrying a packet that found no receive buffer once
     * {@link #onReceiveBuffers} runs.
     */
    public interface Backend extends PacketPort, VirtioBackend<VirtioNet> {

        /**
         * Whether {@link #send} can take one more packet now. A back end that says no is never
         * handed one: the guest's transmit queue stops draining (no packet is lost to a full host
         * socket) until the back end calls {@link VirtioNet#transmitReady}. Device lock held.
         */
        default boolean sendReady() {
            return true;
        }
    }

    private final byte[] mac;
    private final byte[] txBuf = new byte[MAX_PACKET];
    private final byte[] rxHeader = new byte[HDR_BYTES];

    private final AtomicLong rxPackets = stats.counter("rx_packets");
    private final AtomicLong txPackets = stats.counter("tx_packets");
    private final AtomicLong rxDropped = stats.counter("rx_dropped");
    private final AtomicLong txDropped = stats.counter("tx_dropped");

    /** A device whose packets go to {@code port} and that receives only what is {@link #deliver delivered} (tests). */
    public VirtioNet(byte[] mac, PacketPort port) {
        this(mac, new Backend() {
            @Override
            public int send(byte[] packet, int len) {
                return port.send(packet, len);
            }

            @Override
            public void start(VirtioNet net, dev.jvmm.event.EventLoop loop, dev.jvmm.device.DeviceFailure failure) {
            }

            @Override
            public void close() {
            }
        });
    }

    public VirtioNet(byte[] mac, Backend port) {
        super(DEVICE_ID, 12, 2, QUEUE_SIZE, port);
        if (mac == null || mac.length != 6) throw new IllegalArgumentException("a MAC address has 6 bytes");
        this.mac = mac.clone();
        config.put(0, this.mac);                 // mac
        config.putShort(6, (short) S_LINK_UP);  // status
        config.putShort(8, (short) 1);          // max_virtqueue_pairs (MQ is not offered)
        config.putShort(10, (short) 1500);      // mtu (MTU is not offered)
    }

    /** The host side of the link. */
    public Backend port() {
        return backend;
    }

    public byte[] mac() {
        return mac.clone();
    }

    @Override
    public String snapshotRefusal() {
        return "virtio-net is not saved yet: frames waiting for receive buffers and the tap's or passt's connections live outside the snapshot";
    }

    @Override
    public long deviceFeatures() {
        return (1L << F_MAC) | (1L << F_STATUS);
    }

    /** Counts a host frame dropped before it reached {@link #deliver} (e.g. the backlog was full). */
    public void countRxDrop() {
        rxDropped.incrementAndGet();
        stats.errors.incrementAndGet();
    }

    /**
     * Places one packet ({@code packet[0, len)}: a header, whose contents are replaced, and a frame)
     * in the guest's next receive buffer. Returns {@link #DELIVERED}; {@link #NO_BUFFER} when the device
     * is not active or the guest has no receive buffer available (keep the packet and retry); or
     * {@link #DROPPED} (counted as an error) when the packet is shorter than a header and Ethernet header,
     * longer than {@link #MAX_PACKET}, or larger than the receive buffer (which goes back empty).
     */
    public synchronized int deliver(byte[] packet, int len) {
        if (len < MIN_PACKET || len > MAX_PACKET || len > packet.length) {
            countRxDrop();
            return DROPPED;
        }
        if (transport == null) return NO_BUFFER;
        int result;
        try {
            DescriptorChain chain = nextReceiveBuffer(RECEIVEQ);
            if (chain == null) return NO_BUFFER;
            if (chain.writableLength() < len) {
                receiveDone(RECEIVEQ, chain, 0, 0); // Linux counts a short packet and reuses the buffer
                countRxDrop();
                result = DROPPED;
            } else {
                // No GUEST_CSUM or GUEST_* offloads: flags and GSO fields must be zero; one buffer per packet.
                java.util.Arrays.fill(rxHeader, (byte) 0);
                rxHeader[10] = 1; // num_buffers, little-endian u16
                chain.write(0, rxHeader, 0, HDR_BYTES);
                chain.write(HDR_BYTES, packet, HDR_BYTES, len - HDR_BYTES);
                receiveDone(RECEIVEQ, chain, len, len - HDR_BYTES);
                rxPackets.incrementAndGet();
                result = DELIVERED;
            }
        } catch (VirtqueueException e) {
            stats.errors.incrementAndGet();
            transport.queueBroken(e);
            return NO_BUFFER;
        }
        transport.signalUsed(RECEIVEQ);
        return result;
    }

    /**
     * The back end has room again after {@link Backend#sendReady} said no: the transmit queue is
     * served again (in a later turn of the transport's executor). Any thread.
     */
    public synchronized void transmitReady() {
        if (transport != null && queue(TRANSMITQ) != null) transport.continueLater(TRANSMITQ);
    }

    /** Whether the link is up in the STATUS field. */
    public synchronized boolean linkUp() {
        return (config.getShort(6) & S_LINK_UP) != 0;
    }

    /**
     * Sets the link state the driver reads (VIRTIO_NET_S_LINK_UP) and tells it with a configuration
     * change interrupt: a back end that went away takes the link down rather than the run. Any thread.
     */
    public synchronized void setLinkUp(boolean up) {
        if (linkUp() == up) return;
        config.putShort(6, (short) (up ? S_LINK_UP : 0));
        if (transport != null) transport.configChanged();
    }

    @Override
    public synchronized void notify(int queueIndex) throws VirtqueueException {
        if (receiveNotified(queueIndex, RECEIVEQ) || queueIndex != TRANSMITQ) return;
        serve(TRANSMITQ, backend::sendReady, chain -> {
            long total = chain.readableLength();
            if (total < MIN_PACKET || total > MAX_PACKET) {
                txDropped.incrementAndGet();
                stats.errors.incrementAndGet();
                return 0;
            }
            int n = (int) total;
            chain.read(0, txBuf, 0, n);
            // No offloads were offered: a driver asking for checksum or segmentation is wrong; send plain.
            java.util.Arrays.fill(txBuf, 0, 10, (byte) 0);
            if (backend.send(txBuf, n) < 0) {
                txDropped.incrementAndGet();
                stats.errors.incrementAndGet();
            } else {
                txPackets.incrementAndGet();
                stats.bytes.addAndGet(n - HDR_BYTES);
            }
            return 0;
        });
    }
}
