package dev.jvmm.device.virtio;

/**
 * What every device model fixes when it is made: its virtio device id and how many queues it has, of
 * which size at most. The jvmm-served devices ({@link AbstractVirtioDevice}) and those a vhost-user back
 * end serves both build on it.
 */
public abstract class BaseVirtioDevice implements VirtioDevice {
    private final int deviceId;
    private final int queueCount;
    private final int queueSize;

    protected BaseVirtioDevice(int deviceId, int queueCount, int queueSize) {
        this.deviceId = deviceId;
        this.queueCount = queueCount;
        this.queueSize = queueSize;
    }

    @Override
    public int deviceId() {
        return deviceId;
    }

    @Override
    public int queueCount() {
        return queueCount;
    }

    @Override
    public int queueMaxSize(int queue) {
        return queueSize;
    }
}
