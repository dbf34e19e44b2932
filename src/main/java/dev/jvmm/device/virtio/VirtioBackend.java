package dev.jvmm.device.virtio;

import dev.jvmm.device.DeviceFailure;
import dev.jvmm.event.EventLoop;

import java.util.Map;

/**
 * The host side of a {@link BackedVirtioDevice} {@code D}: started on the event loop when the device
 * is attached, its counters reported after the device's, closed with the device.
 */
public interface VirtioBackend<D> extends AutoCloseable {
    /** Starts serving {@code device}: watch the host descriptors on {@code loop}. On the loop, from attach. */
    void start(D device, EventLoop loop, DeviceFailure failure);

    /** The back end's own counters for --stats (merged into the device's). */
    default Map<String, Long> counters() {
        return Map.of();
    }

    @Override
    void close();
}
