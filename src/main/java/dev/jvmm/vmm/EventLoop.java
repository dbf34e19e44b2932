package dev.jvmm.vmm;

import dev.jvmm.sys.Errno;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SyscallException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The main thread's loop: poll(2) over file descriptors (stdin, eventfds such as virtio ioeventfds),
 * timers, and tasks handed over from other threads. Everything asynchronous in the VMM runs here, one
 * thing at a time, so handlers need no locks among themselves.
 *
 * <p>Only {@link #execute} and {@link #wake} may be called from other threads.
 */
public final class EventLoop implements AutoCloseable {
    /** Handler for a readable (or hung-up, or errored) descriptor; gets poll's revents. */
    @FunctionalInterface
    public interface FdHandler {
        void ready(int fd, short revents);
    }

    /** A scheduled task; {@link #cancel()} it to stop it running. */
    public static final class Timer implements Comparable<Timer> {
        final long deadline;
        final Runnable task;
        boolean cancelled;

        Timer(long deadline, Runnable task) {
            this.deadline = deadline;
            this.task = task;
        }

        public void cancel() {
            cancelled = true;
        }

        @Override
        public int compareTo(Timer o) {
            return Long.compare(deadline, o.deadline);
        }
    }

    private record Watch(int fd, FdHandler handler) { }

    private final Arena arena = Arena.ofShared();
    private final int wakeFd;
    private final MemorySegment wakeBuf = arena.allocate(JAVA_LONG);
    private final MemorySegment drainBuf = arena.allocate(JAVA_LONG);
    private final List<Watch> watches = new ArrayList<>();
    private final PriorityQueue<Timer> timers = new PriorityQueue<>();
    private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean wakePending = new AtomicBoolean();
    private MemorySegment pollFds = MemorySegment.NULL;
    private int pollCapacity;
    private boolean watchesChanged = true;

    public EventLoop() {
        wakeFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (wakeFd < 0) throw new SyscallException("eventfd", LibC.errno());
        wakeBuf.set(JAVA_LONG, 0, 1L);
    }

    /** Watches {@code fd} for input. Loop thread only (or before {@link #run}). */
    public void watch(int fd, FdHandler handler) {
        watches.add(new Watch(fd, handler));
        watchesChanged = true;
    }

    public void unwatch(int fd) {
        watches.removeIf(w -> w.fd() == fd);
        watchesChanged = true;
    }

    /** Runs {@code task} on the loop after {@code delayNanos}. Loop thread only. */
    public Timer schedule(long delayNanos, Runnable task) {
        Timer t = new Timer(System.nanoTime() + delayNanos, task);
        timers.add(t);
        return t;
    }

    /** Hands {@code task} to the loop thread. Any thread; allocation-free apart from the queue node. */
    public void execute(Runnable task) {
        tasks.add(task);
        wake();
    }

    /** Makes a blocked poll return. Any thread; at most one eventfd write until the loop drains it. */
    public void wake() {
        if (wakePending.compareAndSet(false, true)) {
            LibC.write(wakeFd, wakeBuf, 8);
        }
    }

    /** Loops until {@code done} is true, checked after every round of work. */
    public void run(BooleanSupplier done) {
        while (!done.getAsBoolean()) {
            runOnce(-1);
        }
    }

    /** One round: wait for fds/timers/tasks (at most {@code maxWaitMs}, -1 = no limit) and dispatch. */
    public void runOnce(int maxWaitMs) {
        int timeout = maxWaitMs;
        Timer next = timers.peek();
        if (next != null) {
            long ms = Math.max(0, (next.deadline - System.nanoTime() + 999_999) / 1_000_000);
            timeout = timeout < 0 ? (int) Math.min(ms, Integer.MAX_VALUE) : (int) Math.min(ms, timeout);
        }
        if (!tasks.isEmpty()) timeout = 0;
        int n = preparePollSet();
        int rc = LibC.poll(pollFds, n, timeout);
        if (rc < 0) {
            int errno = LibC.errno();
            if (errno != Errno.EINTR) throw new SyscallException("poll", errno);
        } else if (rc > 0) {
            dispatch(n);
        }
        runTasks();
        runTimers();
    }

    private int preparePollSet() {
        int n = watches.size() + 1;
        if (watchesChanged || n > pollCapacity) {
            if (n > pollCapacity) {
                pollCapacity = Math.max(8, n * 2);
                pollFds = arena.allocate(LibC.POLLFD, pollCapacity);
            }
            setPollFd(0, wakeFd);
            for (int i = 0; i < watches.size(); i++) setPollFd(i + 1, watches.get(i).fd());
            watchesChanged = false;
        }
        for (int i = 0; i < n; i++) pollFds.set(JAVA_SHORT, i * 8L + 6, (short) 0);
        return n;
    }

    private void setPollFd(int index, int fd) {
        long base = index * LibC.POLLFD.byteSize();
        pollFds.set(JAVA_INT, base, fd);
        pollFds.set(JAVA_SHORT, base + 4, LibC.POLLIN);
        pollFds.set(JAVA_SHORT, base + 6, (short) 0);
    }

    private void dispatch(int n) {
        if (pollFds.get(JAVA_SHORT, 6) != 0) {
            // Drain first, then clear the flag: the other order lets a wake() land in between, be
            // drained, and leave the flag set with the eventfd empty, so no later wake() would write.
            LibC.read(wakeFd, drainBuf, 8);
            wakePending.set(false);
        }
        // Copy: a handler may watch or unwatch.
        List<Watch> current = List.copyOf(watches);
        for (int i = 1; i < n && i - 1 < current.size(); i++) {
            short revents = pollFds.get(JAVA_SHORT, i * 8L + 6);
            if (revents != 0) {
                Watch w = current.get(i - 1);
                w.handler().ready(w.fd(), revents);
            }
        }
    }

    private void runTasks() {
        Runnable r;
        while ((r = tasks.poll()) != null) r.run();
    }

    private void runTimers() {
        long now = System.nanoTime();
        Timer t;
        while ((t = timers.peek()) != null && t.deadline - now <= 0) {
            timers.poll();
            if (!t.cancelled) t.task.run();
        }
    }

    @Override
    public void close() {
        LibC.close(wakeFd);
        arena.close();
    }
}
