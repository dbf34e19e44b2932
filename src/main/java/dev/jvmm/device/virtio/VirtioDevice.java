package dev.jvmm.device.virtio;

import java.util.List;
import java.util.Map;

/**
 * A virtio device model behind a transport ({@link VirtioMmioTransport}).
 *
 * <p><b>Locking.</b> The transport calls every method here while holding the device's monitor
 * ({@code synchronized (device)}): register accesses from vCPU threads and {@link #notify(int)} from
 * the event loop are serialised. Device methods called by the VMM from other threads (console input)
 * synchronise on the device too, so one lock guards device, queues and transport.
 *
 * <p><b>Wiring.</b> A device wires itself into the VM in {@link #attach}: which thread serves its queue
 * notifications, which host descriptors the event loop watches for it, and it releases what it holds
 * in {@link #close}. Adding a device therefore touches the device, its spec and its option, not the
 * VM's plumbing.
 */
public interface VirtioDevice extends AutoCloseable {
    /** What the transport does for the device. Call only with the device lock held. */
    interface Transport {
        /** Used buffers were added to queue {@code queue}: interrupt the guest if the driver wants it. */
        void signalUsed(int queue);

        /** A queue is malformed: the device needs a reset (DEVICE_NEEDS_RESET plus a config interrupt). */
        void queueBroken(VirtqueueException e);

        /** The device configuration changed: bump ConfigGeneration and send a config interrupt. */
        void configChanged();

        /**
         * The device stopped serving queue {@code queue} with work left (its budget for one turn was
         * used up): the transport calls {@link #notify} for it again later, after other event sources
         * have had their turn.
         */
        void continueLater(int queue);
    }

    /** The virtio device id (1 net, 2 block, 3 console, 4 entropy). */
    int deviceId();

    /** Device-specific feature bits offered; the transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX. */
    long deviceFeatures();

    /**
     * The transport's own features ({@link VirtioMmioTransport#TRANSPORT_FEATURES}: VERSION_1, and the
     * ring features its queue code implements) that the transport may add to {@link #deviceFeatures}.
     * A device whose rings another process serves returns 0 and offers in {@link #deviceFeatures}
     * only what that process supports, VERSION_1 included.
     */
    default long transportFeatures() {
        return VirtioMmioTransport.TRANSPORT_FEATURES;
    }

    /**
     * Whether another process (a vhost-user back end) signals the device's used buffers straight into
     * its irqfd, so the transport never learns of them: while the device is active the transport then
     * reports INT_USED_BUFFER in InterruptStatus at every read (a driver checks its rings on that bit;
     * a spurious one costs it a look), and it never reads the rings itself after activation.
     */
    default boolean interruptsFromBackEnd() {
        return false;
    }

    int queueCount();

    /** The largest queue size (a power of 2, at most 32768) for queue {@code queue}. */
    int queueMaxSize(int queue);

    /** Size in bytes of the device configuration space. */
    int configSize();

    /** Reads {@code size} bytes (1, 2, 4 or 8) of configuration space at {@code offset}, little-endian. */
    long readConfig(int offset, int size);

    /** Writes configuration space; most devices ignore it. */
    void writeConfig(int offset, int size, long value);

    /**
     * The driver set DRIVER_OK. {@code queues} has one entry per queue, {@code null} for queues the
     * driver did not make ready; {@code features} are the negotiated ones.
     */
    void activate(Transport transport, List<SplitVirtqueue> queues, long features);

    /** The driver notified queue {@code queue} (only called after {@link #activate}, for a ready queue). */
    void notify(int queue) throws VirtqueueException;

    /** Drop all queue state and go back to the state before activation. */
    void reset();

    VirtioCounters stats();

    /** Counters: requests, bytes, errors, notifications, interrupts. */
    default Map<String, Long> counters() {
        return stats().snapshot();
    }

    /**
     * Why a snapshot cannot hold this device, or null when it can: then the transport saves its
     * registers and queues, and {@link #saveDeviceState} what the device keeps of its own. The
     * default refuses: a device must say that its state is all there.
     */
    default String snapshotRefusal() {
        return "its state is not saved yet";
    }

    /** The device's own state for a snapshot, beyond the transport's (empty: none). Device lock held. */
    default byte[] saveDeviceState() {
        return new byte[0];
    }

    /**
     * Checks {@code state} (what {@link #saveDeviceState} gave, from a file) and sets it, before the
     * transport activates the device again; a state the device cannot take is an
     * {@link IllegalArgumentException} and leaves the device as it was. Device lock held.
     */
    default void loadDeviceState(byte[] state) {
        if (state.length != 0) throw new IllegalArgumentException("device " + deviceId() + ": " + state.length + " bytes of state, it keeps none");
    }

    /**
     * Wires the device into a VM, on the event-loop thread before the vCPUs start. The default serves
     * the queue notifications on the event loop; a device with its own I/O thread, or whose queues a
     * back-end process serves, takes the notification descriptors itself.
     */
    default void attach(VirtioAttachment attachment) {
        attachment.serveNotificationsOnLoop();
    }

    /** Releases host resources (files, descriptors, threads, back ends), after the vCPUs have stopped. */
    @Override
    default void close() {
    }

    /** After {@link #close}: whether no thread of the device can still touch guest memory. */
    default boolean quiesced() {
        return true;
    }
}
