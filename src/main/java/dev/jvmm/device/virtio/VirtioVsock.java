package dev.jvmm.device.virtio;

import dev.jvmm.event.EventLoop;

import java.util.concurrent.atomic.AtomicLong;

/**
 * virtio-vsock (id 19, virtio 1.2 section 5.10): stream sockets between the guest (CID
 * {@link #guestCid()}) and the host (CID 2). Queues: rx (0) carries packets to the guest, tx (1) the
 * guest's packets, event (2) is left alone (its only event, TRANSPORT_RESET, is for migration).
 * Configuration: {@code le64 guest_cid}. No feature bits: without VIRTIO_VSOCK_F_STREAM or
 * F_SEQPACKET offered, the spec says stream only.
 *
 * <p>This class is the virtqueue side only; connections are the {@link Backend}'s (the UNIX-socket
 * muxer). A transmit chain is judged by its length (a header must be there; shorter ones are dropped
 * and counted, there being nothing to answer) and handed over with the header decoded; the backend
 * judges the fields ({@link VsockPacket#check}). The backend fills receive buffers with
 * {@link #nextReceive}, {@link #receiveDone} and {@link #receiveFlush}.
 *
 * <p><b>Threads.</b> The backend runs on the event loop and expects every call there, with the device
 * lock held. Queue notifications come there through ioeventfds; one that arrives on a vCPU thread (a
 * QueueNotify write KVM did not match) is handed to the loop rather than served on the vCPU.
 */
public final class VirtioVsock extends BackedVirtioDevice<VirtioVsock, VirtioVsock.Backend> {
    public static final int DEVICE_ID = 19;
    public static final int RXQ = 0, TXQ = 1, EVENTQ = 2;
    public static final int QUEUE_SIZE = 256;
    /** Guest CIDs 0-2 are reserved (hypervisor, local, host); 0xffffffff is VMADDR_CID_ANY. */
    public static final long MIN_GUEST_CID = 3, MAX_GUEST_CID = 0xffff_fffeL;

    /** The host side of the device's connections. Everything is called on the event loop with the device lock held. */
    public interface Backend extends VirtioBackend<VirtioVsock> {

        /**
         * A packet from the guest: its header, and the chain whose readable bytes hold the header and
         * then {@code header.len()} payload bytes (at least the chain's readable length minus
         * {@link VsockPacket#HEADER_BYTES}, unchecked: see {@link VsockPacket#check}). Valid only during the call.
         */
        void fromGuest(VsockPacket header, DescriptorChain chain);

        /** The guest added receive buffers. */
        void receiveBuffersAdded();

        /** The driver went away (device reset): drop every connection. May be called on a vCPU thread. */
        void deviceReset();
    }

    private final long guestCid;
    private final AtomicLong shortChains = stats.counter("short_chains");
    private volatile Thread loopThread;
    private java.util.function.IntConsumer resume;
    private EventLoop loop;

    public VirtioVsock(long guestCid, Backend backend) {
        super(DEVICE_ID, 8, 3, QUEUE_SIZE, backend);
        if (guestCid < MIN_GUEST_CID || guestCid > MAX_GUEST_CID) {
            throw new IllegalArgumentException("guest CID " + guestCid + " is outside " + MIN_GUEST_CID + ".." + MAX_GUEST_CID);
        }
        this.guestCid = guestCid;
        config.putLong(0, guestCid);
    }

    public long guestCid() {
        return guestCid;
    }

    public Backend backend() {
        return backend;
    }

    @Override
    public String snapshotRefusal() {
        return "virtio-vsock is not saved yet: its connections to host programs cannot be carried into a restored VM";
    }

    @Override
    public long deviceFeatures() {
        return 0;
    }

    @Override
    public synchronized void notify(int queueIndex) throws VirtqueueException {
        if (loop != null && Thread.currentThread() != loopThread) {
            int q = queueIndex;
            loop.execute(() -> resume.accept(q)); // the backend's state is the loop's: serve it there
            return;
        }
        if (receiveNotified(queueIndex, RXQ)) {
            backend.receiveBuffersAdded();
            return;
        }
        if (queueIndex != TXQ) return; // the event queue's buffers wait for events that never come
        serve(TXQ, chain -> {
            long readable = chain.readableLength();
            if (readable < VsockPacket.HEADER_BYTES) {
                shortChains.incrementAndGet();
                stats.errors.incrementAndGet();
                return 0;
            }
            byte[] h = new byte[VsockPacket.HEADER_BYTES];
            chain.read(0, h, 0, h.length);
            backend.fromGuest(VsockPacket.decode(h, 0), chain);
            return 0;
        });
    }

    /** Whether the driver is there (DRIVER_OK and no reset since). */
    public synchronized boolean active() {
        return transport != null;
    }

    /**
     * The guest's next receive buffer, or null (no driver, none available, or the queue is broken: the
     * transport then asks the driver for a reset).
     */
    public synchronized DescriptorChain nextReceive() {
        if (transport == null) return null;
        try {
            return nextReceiveBuffer(RXQ);
        } catch (VirtqueueException e) {
            stats.errors.incrementAndGet();
            transport.queueBroken(e);
            return null;
        }
    }

    /** Returns receive buffer {@code chain} holding {@code used} bytes ({@code payload} of them data). */
    public synchronized void receiveDone(DescriptorChain chain, long used, long payload) {
        if (transport == null) return;
        try {
            receiveDone(RXQ, chain, used, payload);
        } catch (VirtqueueException e) {
            stats.errors.incrementAndGet();
            transport.queueBroken(e);
        }
    }

    /** Interrupts the guest for the receive buffers returned since the last flush (if it wants that). */
    public synchronized void receiveFlush() {
        if (transport != null) transport.signalUsed(RXQ);
    }

    /** Counts a guest error the backend found (malformed packet, receive buffer too small). */
    public void countError() {
        stats.errors.incrementAndGet();
    }

    @Override
    public synchronized void reset() {
        super.reset();
        backend.deviceReset();
    }

    @Override
    public void attach(VirtioAttachment attachment) {
        synchronized (this) {
            loopThread = Thread.currentThread();
            loop = attachment.loop();
            resume = attachment.resumeQueue();
        }
        super.attach(attachment);
    }
}
