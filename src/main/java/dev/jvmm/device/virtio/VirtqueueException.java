package dev.jvmm.device.virtio;

/**
 * The driver put something malformed in a virtqueue (a descriptor loop, an index past the end, a
 * buffer outside guest RAM, ...). The queue is broken from then on: the transport answers with
 * DEVICE_NEEDS_RESET and a configuration-change interrupt, and only a device reset repairs it.
 */
public class VirtqueueException extends Exception {
    public VirtqueueException(String message) {
        super(message);
    }
}
