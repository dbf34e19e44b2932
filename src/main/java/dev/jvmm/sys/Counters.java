package dev.jvmm.sys;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/** Named counters in the order they were made, read together as one map; safe to use from any thread. */
public final class Counters {
    private final Map<String, LongSupplier> all = new LinkedHashMap<>();

    /** A new counter that {@link #snapshot} reports as {@code name}. */
    public AtomicLong counter(String name) {
        AtomicLong c = new AtomicLong();
        add(name, c::get);
        return c;
    }

    /** A value kept elsewhere that {@link #snapshot} reports as {@code name}. */
    public synchronized void add(String name, LongSupplier value) {
        if (all.putIfAbsent(name, value) != null) throw new IllegalArgumentException("counter " + name + " exists");
    }

    /** Every counter's value now, in the order they were made. */
    public synchronized Map<String, Long> snapshot() {
        Map<String, Long> m = new LinkedHashMap<>();
        all.forEach((name, c) -> m.put(name, c.getAsLong()));
        return m;
    }
}
