package dev.jvmm.device.virtio;

import dev.jvmm.sys.Counters;

import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/** Per-device statistics; safe to read from any thread. */
public final class VirtioCounters {
    /** The common counters, then the device's own in the order it made them. */
    private final Counters all = new Counters();
    /** Requests (descriptor chains) completed. */
    public final AtomicLong requests = all.counter("requests");
    /** Payload bytes moved between guest memory and the backend. */
    public final AtomicLong bytes = all.counter("bytes");
    /** Failed requests and malformed queues. */
    public final AtomicLong errors = all.counter("errors");
    /** Queue notifications from the driver (ioeventfd or QueueNotify writes). */
    public final AtomicLong notifications = all.counter("notifications");
    /** Interrupts raised to the guest. */
    public final AtomicLong interrupts = all.counter("interrupts");

    /** A counter of the device's own, which {@link #snapshot} reports as {@code name} after the common ones. */
    public AtomicLong counter(String name) {
        return all.counter(name);
    }

    public Map<String, Long> snapshot() {
        return all.snapshot();
    }

    /** {@link #snapshot}, then a back end's {@code counters} (which replace any of the same name). */
    public Map<String, Long> snapshotWith(Map<String, Long> counters) {
        Map<String, Long> m = snapshot();
        m.putAll(counters);
        return m;
    }
}
