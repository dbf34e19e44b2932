package dev.jvmm.device.virtio;

import java.util.Map;

/**
 * A device whose host side is a {@link VirtioBackend}: attaching serves the device's notifications on
 * the event loop and starts the back end there; the back end's counters follow the device's; closing
 * the device closes it.
 */
public abstract class BackedVirtioDevice<D extends BackedVirtioDevice<D, B>, B extends VirtioBackend<D>> extends AbstractVirtioDevice {
    protected final B backend;

    protected BackedVirtioDevice(int deviceId, int configSize, int queueCount, int queueSize, B backend) {
        super(deviceId, configSize, queueCount, queueSize);
        this.backend = backend;
    }

    @Override
    @SuppressWarnings("unchecked") // D is the subclass itself
    public void attach(VirtioAttachment attachment) {
        attachment.serveNotificationsOnLoop();
        backend.start((D) this, attachment.loop(), attachment.failure());
    }

    @Override
    public void close() {
        backend.close();
    }

    @Override
    public Map<String, Long> counters() {
        return stats.snapshotWith(backend.counters());
    }
}
