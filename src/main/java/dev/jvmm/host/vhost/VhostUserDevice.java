package dev.jvmm.host.vhost;

import dev.jvmm.device.virtio.BaseVirtioDevice;
import dev.jvmm.device.virtio.SplitVirtqueue;
import dev.jvmm.device.virtio.VirtioAttachment;
import dev.jvmm.device.virtio.VirtioCounters;
import dev.jvmm.device.virtio.VirtioFs;
import dev.jvmm.host.HelperProcess;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A virtio device whose queues a vhost-user back end serves (virtiofsd for virtio-fs): jvmm keeps the
 * control path (registers, feature negotiation, configuration space, ring validation in the
 * transport) and hands the data path to the back end, so no jvmm thread touches a request.
 *
 * <ul>
 * <li><b>Features.</b> What the guest is offered comes from the back end's GET_FEATURES, asked once
 *     when the device is made: VERSION_1 (required), INDIRECT_DESC and EVENT_IDX if the back end has
 *     them, and the device-specific bits the model allows. The transport adds nothing of its own
 *     ({@link #transportFeatures()} is 0). Packed rings, IOMMU and everything else are withheld: the
 *     transport validates split rings only.
 * <li><b>DRIVER_OK</b> sends SET_FEATURES (the guest's features and, if offered,
 *     VHOST_USER_F_PROTOCOL_FEATURES), SET_MEM_TABLE for every RAM region, and for each queue the driver
 *     made ready SET_VRING_NUM, BASE (0), ADDR (the rings' addresses in jvmm's mapping), CALL, KICK and
 *     ENABLE. KICK is the queue's KVM ioeventfd, so the guest's notifications go straight to the back end;
 *     CALL is the device's irqfd, so its interrupts go straight to KVM, and the transport reports
 *     INT_USED_BUFFER for the device ({@link #interruptsFromBackEnd()}).
 * <li><b>Reset</b> (status 0) and close stop every started queue (GET_VRING_BASE), so a driver that
 *     initialises the device again finds it as new.
 * <li><b>Failures.</b> The socket is watched on the event loop for a hang-up, and every request has the
 *     front end's timeout; either failure ends the run through the attachment's {@code failure()}
 *     with one line (the back end's own last words when jvmm started it).
 * </ul>
 */
public final class VhostUserDevice extends BaseVirtioDevice {
    /** Feature bits any vhost-user device passes through: VERSION_1 and the split-ring features. */
    public static final long RING_FEATURES = 1L << VhostUserProtocol.VIRTIO_F_VERSION_1
            | 1L << SplitVirtqueue.F_INDIRECT_DESC | 1L << SplitVirtqueue.F_EVENT_IDX;
    private static final long PROTOCOL_FEATURES_BIT = 1L << VhostUserProtocol.VHOST_USER_F_PROTOCOL_FEATURES;

    /** The process behind the back end, when jvmm started it: closed with the device. */
    public interface BackEndProcess extends AutoCloseable {
        /** How it ended, one line ("virtiofsd exited with status 1; its last output: ..."). */
        String describeEnd();

        @Override
        void close();

        /** A helper jvmm started (virtiofsd): how it ended is what it says within half a second of its socket closing. */
        static BackEndProcess of(HelperProcess helper) {
            return new BackEndProcess() {
                @Override
                public String describeEnd() {
                    return helper.describeEnd(Duration.ofMillis(500));
                }

                @Override
                public void close() {
                    helper.close();
                }
            };
        }
    }

    private final String kind;
    private final byte[] config;
    private final VhostUserFrontend backEnd;
    private final BackEndProcess process;
    private final long backEndFeatures;
    private final long offered;
    private final VirtioCounters stats = new VirtioCounters();
    private final AtomicLong activations = new AtomicLong();
    private final AtomicLong resets = new AtomicLong();
    private final AtomicLong queuesStarted = new AtomicLong();
    private final boolean[] started;

    /** Set once the run was told the back end failed: one line per device, and no more requests to a dead peer. */
    private volatile boolean failedForGood;
    private VirtioAttachment attachment;
    private int[] kickFds;
    private int watchFd = -1;
    private boolean closed;

    private VhostUserDevice(String kind, int deviceId, byte[] config, int queueCount, int queueSize,
                            VhostUserFrontend backEnd, BackEndProcess process, long backEndFeatures, long offered) {
        super(deviceId, queueCount, queueSize);
        this.kind = kind;
        this.config = config.clone();
        this.backEnd = backEnd;
        this.process = process;
        this.backEndFeatures = backEndFeatures;
        this.offered = offered;
        this.started = new boolean[queueCount];
    }

    /**
     * Opens the session with the back end (GET_FEATURES, SET_OWNER, protocol features, and GET_QUEUE_NUM
     * when it has MQ) and makes the device. On failure closes {@code backEnd} and {@code process}.
     * @param kind           what messages call the device ("virtio-fs 'tag'")
     * @param deviceFeatures device-specific feature bits the model may offer when the back end has them
     * @param process        the back end's process if jvmm started it, or null
     */
    public static VhostUserDevice open(String kind, int deviceId, byte[] config, int queueCount, int queueSize,
                                       long deviceFeatures, VhostUserFrontend backEnd, BackEndProcess process)
            throws VhostUserException {
        if (queueCount < 1 || queueCount > VhostUserProtocol.VRING_INDEX_MASK + 1) throw new IllegalArgumentException("queue count " + queueCount);
        try {
            long features = backEnd.handshake();
            if (!VhostUserProtocol.has(features, VhostUserProtocol.VIRTIO_F_VERSION_1)) {
                throw new VhostUserException(VhostUserException.Kind.PROTOCOL, backEnd + " does not offer VIRTIO_F_VERSION_1 (features 0x"
                        + Long.toHexString(features) + "); jvmm's virtio-mmio devices need it");
            }
            if (VhostUserProtocol.has(backEnd.protocolFeatures(), VhostUserProtocol.PROTOCOL_F_MQ)) {
                long n = backEnd.getQueueNum();
                if (n < queueCount) {
                    throw new VhostUserException(VhostUserException.Kind.PROTOCOL, backEnd + " serves " + n + " queue(s); " + kind
                            + " needs " + queueCount);
                }
            }
            long offered = features & (RING_FEATURES | deviceFeatures) & ~PROTOCOL_FEATURES_BIT;
            return new VhostUserDevice(kind, deviceId, config, queueCount, queueSize, backEnd, process, features, offered);
        } catch (VhostUserException e) {
            backEnd.close();
            // a back end we started that closed the connection at once: how it ended says why
            String how = process == null || e.kind() != VhostUserException.Kind.CLOSED ? "" : " (" + process.describeEnd() + ")";
            if (process != null) process.close();
            throw how.isEmpty() ? e : new VhostUserException(e.kind(), e.getMessage() + how, e);
        } catch (RuntimeException e) {
            backEnd.close();
            if (process != null) process.close();
            throw e;
        }
    }

    /** A virtio-fs device with tag {@code tag} (see {@link VirtioFs}) over {@code backEnd}. */
    public static VhostUserDevice virtioFs(String tag, VhostUserFrontend backEnd, BackEndProcess process) throws VhostUserException {
        byte[] config;
        try {
            config = VirtioFs.config(tag);
        } catch (IllegalArgumentException e) {
            backEnd.close();
            if (process != null) process.close();
            throw e;
        }
        return open("virtio-fs '" + tag + "'", VirtioFs.DEVICE_ID, config, VirtioFs.QUEUE_COUNT, VirtioFs.QUEUE_SIZE, 0, backEnd, process);
    }

    /** The back end's features as it offered them (GET_FEATURES at creation). */
    public long backEndFeatures() {
        return backEndFeatures;
    }

    public VhostUserFrontend backEnd() {
        return backEnd;
    }

    @Override
    public String snapshotRefusal() {
        return kind + " is not saved: its " + backEnd + " serves its queues in another process and holds their state";
    }

    @Override
    public long deviceFeatures() {
        return offered;
    }

    @Override
    public long transportFeatures() {
        return 0; // only what the back end offered: it, not the transport, runs the rings
    }

    @Override
    public boolean interruptsFromBackEnd() {
        return true;
    }

    @Override
    public int configSize() {
        return config.length;
    }

    @Override
    public synchronized long readConfig(int offset, int size) {
        long v = 0;
        for (int i = size - 1; i >= 0; i--) {
            int at = offset + i;
            v = (v << 8) | (at >= 0 && at < config.length ? config[at] & 0xff : 0);
        }
        return v;
    }

    @Override
    public synchronized void writeConfig(int offset, int size, long value) {
        // read-only: virtio-fs's configuration has no writable field
    }

    /**
     * Takes the queues' notification eventfds for the back end and watches the socket for a hang-up.
     * @throws IllegalStateException when the VM's RAM is not shared memory or the attachment has no irqfd
     */
    @Override
    public synchronized void attach(VirtioAttachment a) {
        if (a.memory() == null || a.interruptFd() < 0) {
            throw new IllegalStateException(kind + " needs the VM's memory and an irqfd in its attachment");
        }
        try {
            VhostUserFrontend.memTable(a.memory());
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException(kind + ": " + e.getMessage(), e);
        }
        if (a.queueEventFds().length != queueCount()) {
            throw new IllegalStateException(kind + ": " + a.queueEventFds().length + " notification eventfds for " + queueCount() + " queues");
        }
        attachment = a;
        kickFds = a.queueEventFds();
        watchFd = backEnd.duplicateSocket();
        // events 0: poll reports only POLLHUP/POLLERR, never the replies the front end is waiting for
        a.loop().watch(watchFd, (short) 0, (fd, revents) -> hungUp(fd));
    }

    private void hungUp(int fd) {
        attachment.loop().unwatch(fd);
        if (failedForGood) return;
        failedForGood = true;
        String how = process == null ? "" : " (" + process.describeEnd() + ")";
        attachment.failure().failed(backEnd + ": hung up" + how);
    }

    /** Ends the run: the back end failed. The device lock may be held; failure() only requests a stop. */
    private void failed(VhostUserException e) {
        stats.errors.incrementAndGet();
        if (failedForGood) return;
        failedForGood = true;
        String how = process == null || e.kind() != VhostUserException.Kind.CLOSED ? "" : " (" + process.describeEnd() + ")";
        if (attachment != null) attachment.failure().failed(e.getMessage() + how);
    }

    @Override
    public synchronized void activate(Transport transport, List<SplitVirtqueue> queues, long features) {
        if (attachment == null) throw new IllegalStateException(kind + " was activated before it was attached");
        activations.incrementAndGet();
        try {
            // the transport let the driver accept only offered bits
            backEnd.setFeatures((features & offered) | (backEndFeatures & PROTOCOL_FEATURES_BIT));
            GuestMemory memory = attachment.memory();
            backEnd.setMemTable(memory);
            for (int q = 0; q < queueCount() && q < queues.size(); q++) {
                SplitVirtqueue v = queues.get(q);
                if (v == null) continue; // the driver did not set this queue up
                backEnd.startQueue(q, v.size(), 0, v.descriptorTable().address(), v.availableRing().address(),
                        v.usedRing().address(), kickFds[q], attachment.interruptFd(), -1);
                started[q] = true;
                queuesStarted.incrementAndGet();
            }
        } catch (VhostUserException e) {
            failed(e);
            throw new IllegalStateException(e.getMessage(), e); // the transport sets DEVICE_NEEDS_RESET
        }
    }

    /**
     * A QueueNotify write that reached the transport instead of the ioeventfd: passed on to the back end
     * through the same eventfd.
     */
    @Override
    public synchronized void notify(int queue) {
        if (kickFds == null || queue < 0 || queue >= kickFds.length || !started[queue]) return;
        try (Arena arena = Arena.ofConfined()) {
            LibC.write(kickFds[queue], arena.allocateFrom(JAVA_LONG, 1L), 8);
        }
    }

    @Override
    public synchronized void reset() {
        resets.incrementAndGet();
        stopQueues();
    }

    /** GET_VRING_BASE for each started queue; after a failure the rest are given up (the run is ending). */
    private void stopQueues() {
        for (int q = 0; q < queueCount(); q++) {
            if (!started[q]) continue;
            started[q] = false;
            if (failedForGood || backEnd.broken() != null) continue;
            try {
                backEnd.stopQueue(q);
            } catch (VhostUserException e) {
                failed(e);
            }
        }
    }

    @Override
    public VirtioCounters stats() {
        return stats;
    }

    /**
     * The transport's counters, then the front end's: vhost-user requests sent, activations (DRIVER_OK),
     * resets, queues started. The data path bypasses jvmm, so requests and bytes stay 0, notifications
     * count only QueueNotify writes that missed the ioeventfd, and interrupts only those jvmm raised
     * itself (configuration changes, DEVICE_NEEDS_RESET), not the back end's.
     */
    @Override
    public Map<String, Long> counters() {
        Map<String, Long> m = stats.snapshot();
        m.put("vhost_requests", backEnd.requestsSent());
        m.put("activations", activations.get());
        m.put("resets", resets.get());
        m.put("queues_started", queuesStarted.get());
        return m;
    }

    /** Stops the queues, stops watching the socket (event-loop thread), closes the connection and the back end's process. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        stopQueues();
        if (watchFd >= 0) {
            attachment.loop().unwatch(watchFd);
            LibC.close(watchFd);
            watchFd = -1;
        }
        backEnd.close();
        if (process != null) process.close();
    }

    /** The back end maps guest RAM from its own descriptor: unmapping jvmm's view cannot hurt it, nor it jvmm. */
    @Override
    public boolean quiesced() {
        return true;
    }

    @Override
    public String toString() {
        return kind + " on " + backEnd;
    }
}
