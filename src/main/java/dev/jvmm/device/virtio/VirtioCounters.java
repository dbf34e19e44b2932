package dev.jvmm.device.virtio;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/** Per-device statistics; safe to read from any thread. */
public final class VirtioCounters {
    /** Requests (descriptor chains) completed. */
    public final AtomicLong requests = new AtomicLong();
    /** Payload bytes moved between guest memory and the backend. */
    public final AtomicLong bytes = new AtomicLong();
    /** Failed requests and malformed queues. */
    public final AtomicLong errors = new AtomicLong();
    /** Queue notifications from the driver (ioeventfd or QueueNotify writes). */
    public final AtomicLong notifications = new AtomicLong();
    /** Interrupts raised to the guest. */
    public final AtomicLong interrupts = new AtomicLong();

    /** The device's own counters, in the order it made them. */
    private final Map<String, AtomicLong> own = new LinkedHashMap<>();

    /** A counter of the device's own, which {@link #snapshot} reports as {@code name} after the common ones. */
    public synchronized AtomicLong counter(String name) {
        AtomicLong c = new AtomicLong();
        if (own.putIfAbsent(name, c) != null) throw new IllegalArgumentException("counter " + name + " exists");
        return c;
    }

    public synchronized Map<String, Long> snapshot() {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("requests", requests.get());
        m.put("bytes", bytes.get());
        m.put("errors", errors.get());
        m.put("notifications", notifications.get());
        m.put("interrupts", interrupts.get());
        own.forEach((name, c) -> m.put(name, c.get()));
        return m;
    }
}
