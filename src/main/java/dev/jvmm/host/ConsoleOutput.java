package dev.jvmm.host;

import dev.jvmm.device.ByteSink;

import java.io.IOException;
import java.io.OutputStream;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The guest's console output on its way to stdout or a log file, written by a thread of its own from
 * a bounded buffer, so a reader that stalls (a pipe nobody reads, a slow terminal) never stalls the
 * event loop or the stop path.
 *
 * <p>Producers (a vCPU thread in the UART, the event loop in the virtio console) append under a lock;
 * the writer thread takes what has gathered a couple of milliseconds after the first byte, so 100,000
 * bytes cost 100,000 appends and a handful of write(2)s instead of one system call per byte. When the
 * buffer is full, {@link #offer} refuses (the caller keeps its data and waits for {@link #onSpace}) and
 * {@link #put} waits: the guest is slowed, nothing it wrote is dropped while the run goes on.
 *
 * <p>A failed write (EPIPE, ENOSPC) is reported once through the failure callback, with the reason;
 * later output is discarded. {@link #close} writes out what is left, waiting a bounded time.
 */
public final class ConsoleOutput implements ByteSink, AutoCloseable {
    /** Bytes that may wait for the writer: 256 KiB, beyond which the guest waits instead. */
    static final int CAPACITY = 256 * 1024;
    /** How long output may gather before it is written: short enough to feel immediate at a terminal. */
    static final long FLUSH_DELAY_MS = 2;
    /** How long a waiting {@link #put} sleeps between looks at whether the run is ending. */
    private static final long PUT_WAIT_MS = 50;

    /** Told once when the output cannot be written; {@code reason} names the destination and the error. */
    @FunctionalInterface
    public interface Failure {
        void failed(String reason);
    }

    /** Sees every chunk of output after it was written (or discarded after a failure): --expect. */
    @FunctionalInterface
    public interface Watcher {
        void accept(byte[] buf, int off, int len);
    }

    private final OutputStream out;
    private final String what;
    private final String destination;
    private final Failure failure;
    private final List<Watcher> watchers = new CopyOnWriteArrayList<>();
    private final List<Runnable> spaceListeners = new CopyOnWriteArrayList<>();
    /** Waiting for everything offered so far to be written ({@link #whenWritten}); guarded by this. */
    private final List<Runnable> writtenListeners = new java.util.ArrayList<>();
    private final Thread writer;
    private byte[] buf = new byte[CAPACITY];
    private byte[] spare = new byte[CAPACITY];
    private int len;
    private long bytes;
    private long firstByteAt;
    private boolean refused;
    private boolean closing;
    private boolean released;
    private boolean failed;
    private boolean writing;
    private String failedBecause;

    /**
     * @param destination what {@code out} is, for the failure message ("stdout", "--serial-log FILE")
     */
    public ConsoleOutput(OutputStream out, String destination, Failure failure) {
        this(out, "the guest's console output", destination, failure, "console output");
    }

    /**
     * @param what        what the bytes are, for the failure message and the writer thread's name
     *                    ("the command's stdout")
     * @param destination what {@code out} is ("stdout")
     */
    public ConsoleOutput(OutputStream out, String what, String destination, Failure failure) {
        this(out, what, destination, failure, "output: " + what);
    }

    private ConsoleOutput(OutputStream out, String what, String destination, Failure failure, String threadName) {
        this.out = out;
        this.what = what;
        this.destination = destination;
        this.failure = failure;
        this.writer = Thread.ofPlatform().name(threadName).daemon(true).unstarted(this::writeLoop);
        writer.start();
    }

    /**
     * Runs {@code done} once everything offered so far has been written (or can no longer be: the
     * output failed): at once on this thread when nothing is waiting, else on the writer thread. It
     * must be quick. The end of a command's run waits for this, so its last output is not cut off by
     * {@link #close}'s bounded wait when the reader is slow.
     */
    public void whenWritten(Runnable done) {
        synchronized (this) {
            if (!failed && (len > 0 || writing)) {
                writtenListeners.add(done);
                return;
            }
        }
        done.run();
    }

    /** The listeners due now that the buffer is empty or the output failed; called with the lock held. */
    private List<Runnable> takeWrittenListeners() {
        if (writtenListeners.isEmpty() || (!failed && (len > 0 || writing))) return List.of();
        List<Runnable> due = List.copyOf(writtenListeners);
        writtenListeners.clear();
        return due;
    }

    /** Also shows every written chunk to {@code w}, on the writer thread. */
    public void watch(Watcher w) {
        watchers.add(w);
    }

    @Override
    public void onSpace(Runnable listener) {
        spaceListeners.add(listener);
    }

    @Override
    public synchronized boolean offer(byte[] b, int off, int n) {
        if (failed || released) return true; // the output is gone or the run is over: take and drop
        if (n > buf.length - len) {
            refused = true;
            return false;
        }
        System.arraycopy(b, off, buf, len, n);
        appended(n);
        return true;
    }

    @Override
    public synchronized void put(int b) {
        while (len == buf.length && !failed && !released) {
            refused = true;
            try {
                wait(PUT_WAIT_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        if (failed || released) return;
        buf[len] = (byte) b;
        appended(1);
    }

    private void appended(int n) {
        if (bytes == 0) firstByteAt = System.nanoTime();
        boolean wasEmpty = len == 0;
        len += n;
        bytes += n;
        if (wasEmpty || len == buf.length) notifyAll(); // wake the writer: once per batch, or when full
    }

    /** Why the output could not be written, or null while it could. */
    public synchronized String failure() {
        return failedBecause;
    }

    /** Bytes the guest wrote to the console. */
    public synchronized long bytesWritten() {
        return bytes;
    }

    /** When the guest's first byte came ({@link System#nanoTime()}), or 0 if none did. */
    public synchronized long firstByteAt() {
        return firstByteAt;
    }

    private void writeLoop() {
        while (true) {
            byte[] chunk;
            int n;
            boolean notifySpace;
            synchronized (this) {
                try {
                    while (len == 0 && !closing) wait();
                    if (len == 0) return; // closing and nothing left
                    long until = System.nanoTime() + FLUSH_DELAY_MS * 1_000_000;
                    long left;
                    while (!closing && len < buf.length / 2 && (left = until - System.nanoTime()) > 0) {
                        wait(Math.max(1, left / 1_000_000));
                    }
                } catch (InterruptedException e) {
                    return;
                }
                chunk = buf;
                n = len;
                buf = spare;
                spare = chunk;
                len = 0;
                notifySpace = refused;
                refused = false;
                writing = true;
                notifyAll(); // producers waiting in put()
            }
            if (notifySpace) for (Runnable r : spaceListeners) r.run();
            write(chunk, n);
            List<Runnable> written;
            synchronized (this) {
                writing = false;
                notifyAll(); // close() waits for the last write
                written = takeWrittenListeners();
            }
            for (Runnable r : written) r.run();
        }
    }

    private void write(byte[] chunk, int n) {
        boolean failedNow = false;
        String why = null;
        synchronized (this) {
            if (failed) chunk = null;
        }
        if (chunk != null) {
            try {
                out.write(chunk, 0, n);
                out.flush();
            } catch (IOException e) {
                why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
                synchronized (this) { // reason and flag together: close() returns as soon as it sees the flag
                    failedNow = !failed;
                    if (failedNow) failedBecause = "cannot write " + what + " to " + destination + ": " + why;
                    failed = true;
                    notifyAll();
                }
            }
        }
        if (failedNow) failure.failed(failure());
        if (chunk != null) {
            for (Watcher w : watchers) {
                try {
                    w.accept(chunk, 0, n);
                } catch (RuntimeException e) { // a watcher's bug must not silence the console
                    failure.failed("watching the console output failed: " + e);
                }
            }
        }
    }

    /** The run is ending: producers waiting for room give up (their byte is dropped) instead of waiting. */
    public synchronized void release() {
        released = true;
        notifyAll();
    }

    /**
     * Writes out what is buffered and ends the writer, waiting at most {@code waitMillis} (a reader
     * that never reads does not hold jvmm up). Returns whether everything was written.
     */
    public boolean close(long waitMillis) {
        long deadline = System.nanoTime() + waitMillis * 1_000_000;
        synchronized (this) {
            released = true;
            closing = true;
            notifyAll();
            long left;
            while ((len > 0 || writing) && !failed && (left = deadline - System.nanoTime()) > 0) {
                try {
                    wait(Math.max(1, left / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            return len == 0 && !writing && !failed;
        }
    }

    @Override
    public void close() {
        close(1000);
    }
}
