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

    public Map<String, Long> snapshot() {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("requests", requests.get());
        m.put("bytes", bytes.get());
        m.put("errors", errors.get());
        m.put("notifications", notifications.get());
        m.put("interrupts", interrupts.get());
        return m;
    }
}
