package dev.jvmm.device;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** A {@link ByteSink} for tests: keeps what it gets, and refuses offers beyond {@code capacity} until {@link #drain}. */
public final class CollectingSink implements ByteSink {
    private final ByteArrayOutputStream all = new ByteArrayOutputStream();
    private final int capacity;
    private int held;
    private Runnable space = () -> { };

    public CollectingSink() {
        this(Integer.MAX_VALUE);
    }

    public CollectingSink(int capacity) {
        this.capacity = capacity;
    }

    @Override
    public synchronized boolean offer(byte[] b, int off, int len) {
        if (len > capacity - held) return false;
        all.write(b, off, len);
        held += len;
        return true;
    }

    @Override
    public synchronized void put(int b) {
        all.write(b);
    }

    @Override
    public void onSpace(Runnable listener) {
        space = listener;
    }

    /** The host side read everything held: room again, and the listener runs. */
    public void drain() {
        synchronized (this) {
            held = 0;
        }
        space.run();
    }

    public synchronized byte[] bytes() {
        return all.toByteArray();
    }

    @Override
    public synchronized String toString() {
        return all.toString(StandardCharsets.ISO_8859_1);
    }
}
