package dev.jvmm.vmm;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.function.IntConsumer;

/**
 * The guest's console output on its way to stdout or a log file. A vCPU thread appends a byte under
 * a lock; the event loop writes the bytes out a couple of milliseconds later, so 100,000 bytes cost
 * 100,000 appends and a handful of write(2)s instead of one system call per byte. A full buffer is
 * written by the vCPU thread itself, so no output is ever dropped.
 */
public final class ConsoleOutput implements IntConsumer {
    /** How long output may wait before it is written: short enough to feel immediate at a terminal. */
    static final long FLUSH_DELAY_NANOS = 2_000_000;

    private final OutputStream out;
    private final EventLoop loop;
    private final Runnable scheduleFlush;
    private byte[] buf = new byte[64 * 1024];
    private byte[] spare = new byte[64 * 1024];
    private int len;
    private boolean flushScheduled;
    private long bytes;
    private volatile ExpectMatcher watcher;

    public ConsoleOutput(OutputStream out, EventLoop loop) {
        this.out = out;
        this.loop = loop;
        this.scheduleFlush = () -> loop.schedule(FLUSH_DELAY_NANOS, this::flush);
    }

    @Override
    public void accept(int b) {
        boolean wakeLoop = false;
        synchronized (this) {
            if (len == buf.length) writeOut(); // still under the lock: keeps the byte order
            buf[len++] = (byte) b;
            bytes++;
            if (!flushScheduled) {
                flushScheduled = true;
                wakeLoop = true;
            }
        }
        if (wakeLoop) loop.execute(scheduleFlush);
    }

    private void writeOut() {
        try {
            out.write(buf, 0, len);
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write guest console output", e);
        }
        ExpectMatcher w = watcher; // rare (a full buffer before the loop's flush): fine on the vCPU thread
        if (w != null) w.accept(buf, 0, len);
        len = 0;
    }

    /** Also shows every flushed byte to {@code w} (on the loop thread). */
    public void watch(ExpectMatcher w) {
        this.watcher = w;
    }

    /** Writes out what is buffered. Called on the loop thread by the timer and at the end of a run. */
    public void flush() {
        byte[] full;
        int n;
        synchronized (this) {
            flushScheduled = false;
            if (len == 0) return;
            full = buf;
            n = len;
            buf = spare;
            spare = full;
            len = 0;
            // The swapped-out buffer is written under the lock too: a vCPU writing meanwhile must not
            // overtake it, and the write is rare (every few milliseconds at most).
            try {
                out.write(full, 0, n);
                out.flush();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write guest console output", e);
            }
            ExpectMatcher w = watcher;
            if (w != null) w.accept(full, 0, n);
        }
    }

    public synchronized long bytesWritten() {
        return bytes;
    }
}
