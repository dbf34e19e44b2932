package dev.jvmm.event;

import dev.jvmm.sys.Errno;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SyscallException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The main thread's loop: poll(2) over file descriptors (stdin, eventfds such as virtio ioeventfds,
 * back-end sockets), timers, and tasks handed over from other threads. Everything asynchronous in the
 * VMM runs here, one thing at a time, so handlers need no locks among themselves.
 *
 * <p><b>Fairness.</b> One round serves each ready descriptor once, then the tasks that were queued
 * when the round began, then the timers that were due when it began. Work a handler queues for itself
 * (a device continuing a long queue with {@link #execute}) waits for the next round, so no source can
 * keep the others (a stop request, the timeout timer, stdin) waiting for more than one round; handlers
 * keep their own work per call bounded.
 *
 * <p>Only {@link #execute} and {@link #wake} may be called from other threads.
 */
public final class EventLoop implements AutoCloseable {
    /** Handler for a ready (or hung-up, or errored) descriptor; gets poll's revents. */
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

    private record Watch(int fd, short events, FdHandler handler) { }

    private static final long FD = LibC.POLLFD.byteOffset(MemoryLayout.PathElement.groupElement("fd"));
    private static final long EVENTS = LibC.POLLFD.byteOffset(MemoryLayout.PathElement.groupElement("events"));
    private static final long REVENTS = LibC.POLLFD.byteOffset(MemoryLayout.PathElement.groupElement("revents"));

    private final Arena arena = Arena.ofShared();
    private final int wakeFd;
    private final MemorySegment wakeBuf = arena.allocate(JAVA_LONG);
    private final MemorySegment drainBuf = arena.allocate(JAVA_LONG);
    private final List<Watch> watches = new ArrayList<>();
    private final PriorityQueue<Timer> timers = new PriorityQueue<>();
    private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
    private final AtomicInteger taskCount = new AtomicInteger();
    private final AtomicBoolean wakePending = new AtomicBoolean();
    private MemorySegment pollFds = MemorySegment.NULL;
    private int pollCapacity;
    private boolean watchesChanged = true;
    private List<Watch> polled = List.of();

    public EventLoop() {
        wakeFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (wakeFd < 0) throw new SyscallException("eventfd", LibC.errno());
        wakeBuf.set(JAVA_LONG, 0, 1L);
    }

    /** Watches {@code fd} for input. Loop thread only (or before {@link #run}). */
    public void watch(int fd, FdHandler handler) {
        watch(fd, LibC.POLLIN, handler);
    }

    /** Watches {@code fd} for the poll {@code events} given (POLLIN, POLLOUT). Loop thread only. */
    public void watch(int fd, short events, FdHandler handler) {
        watches.removeIf(w -> w.fd() == fd);
        watches.add(new Watch(fd, events, handler));
        watchesChanged = true;
    }

    public void unwatch(int fd) {
        watches.removeIf(w -> w.fd() == fd);
        watchesChanged = true;
    }

    /** Runs {@code task} on the loop after {@code delayNanos}. Loop thread only. */
    public Timer schedule(long delayNanos, Runnable task) {
        Timer t = new Timer(System.nanoTime() + Math.max(0, delayNanos), task);
        timers.add(t);
        return t;
    }

    /** Hands {@code task} to the loop thread (its next round). Any thread. */
    public void execute(Runnable task) {
        tasks.add(task);
        taskCount.incrementAndGet();
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
        int queued = taskCount.get();
        if (queued > 0) timeout = 0;
        int n = preparePollSet();
        int rc = LibC.poll(pollFds, n, timeout);
        long polledAt = System.nanoTime();
        if (rc < 0) {
            int errno = LibC.errno();
            if (errno != Errno.EINTR) throw new SyscallException("poll", errno);
        } else if (rc > 0) {
            dispatch(n);
        }
        runTasks(queued);
        runTimers(polledAt);
    }

    private int preparePollSet() {
        int n = watches.size() + 1;
        if (watchesChanged || n > pollCapacity) {
            if (n > pollCapacity) {
                pollCapacity = Math.max(8, n * 2);
                pollFds = arena.allocate(LibC.POLLFD, pollCapacity);
            }
            setPollFd(0, wakeFd, LibC.POLLIN);
            for (int i = 0; i < watches.size(); i++) setPollFd(i + 1, watches.get(i).fd(), watches.get(i).events());
            polled = List.copyOf(watches); // a handler may watch or unwatch while we dispatch
            watchesChanged = false;
        }
        for (int i = 0; i < n; i++) pollFds.set(JAVA_SHORT, i * LibC.POLLFD.byteSize() + REVENTS, (short) 0);
        return n;
    }

    private void setPollFd(int index, int fd, short events) {
        long base = index * LibC.POLLFD.byteSize();
        pollFds.set(JAVA_INT, base + FD, fd);
        pollFds.set(JAVA_SHORT, base + EVENTS, events);
        pollFds.set(JAVA_SHORT, base + REVENTS, (short) 0);
    }

    private void dispatch(int n) {
        if (pollFds.get(JAVA_SHORT, REVENTS) != 0) {
            // Drain first, then clear the flag: the other order lets a wake() land in between, be
            // drained, and leave the flag set with the eventfd empty, so no later wake() would write.
            LibC.read(wakeFd, drainBuf, 8);
            wakePending.set(false);
        }
        List<Watch> current = polled;
        for (int i = 1; i < n && i - 1 < current.size(); i++) {
            short revents = pollFds.get(JAVA_SHORT, i * LibC.POLLFD.byteSize() + REVENTS);
            if (revents == 0) continue;
            Watch w = current.get(i - 1);
            if (stillWatched(w)) w.handler().ready(w.fd(), revents); // not unwatched by an earlier handler
        }
    }

    /** Whether {@code w} itself is still watched (identity: a record's equals costs a bootstrap at start-up). */
    private boolean stillWatched(Watch w) {
        for (int i = 0; i < watches.size(); i++) {
            if (watches.get(i) == w) return true;
        }
        return false;
    }

    private void runTasks(int max) {
        Runnable r;
        for (int i = 0; i < max && (r = tasks.poll()) != null; i++) {
            taskCount.decrementAndGet();
            r.run();
        }
    }

    private void runTimers(long now) {
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
