package dev.jvmm.device.virtio;

import dev.jvmm.event.EventLoop;
import dev.jvmm.sys.Errno;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SyscallException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A device's own I/O thread: it waits (poll) on the queues' notification eventfds and serves each
 * notified queue there, off the event loop, so slow host I/O (a disk) delays neither timers nor stop
 * requests. A device that stopped with work left calls {@link #again} and is served again at once,
 * after the thread has checked for a stop request.
 */
final class QueueThread {
    private static final long FD = LibC.POLLFD.byteOffset(MemoryLayout.PathElement.groupElement("fd"));
    private static final long EVENTS = LibC.POLLFD.byteOffset(MemoryLayout.PathElement.groupElement("events"));
    private static final long REVENTS = LibC.POLLFD.byteOffset(MemoryLayout.PathElement.groupElement("revents"));
    /** How long {@link #stop} waits for a request in progress. */
    static final long STOP_WAIT_MS = 2000;

    private final VirtioAttachment attachment;
    private final int[] fds;
    private final int stopFd;
    private final boolean[] again;
    private final Runnable afterServing;
    private final Thread thread;
    private volatile boolean stopping;

    private QueueThread(String name, VirtioAttachment attachment, Runnable afterServing) {
        this.attachment = attachment;
        this.afterServing = afterServing;
        this.fds = attachment.queueEventFds();
        this.again = new boolean[fds.length];
        this.stopFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (stopFd < 0) throw new SyscallException("eventfd", LibC.errno());
        this.thread = Thread.ofPlatform().name(name).daemon(true).unstarted(this::run);
    }

    static QueueThread start(String name, VirtioAttachment attachment) {
        return start(name, attachment, () -> { });
    }

    /**
     * Like {@link #start(String, VirtioAttachment)}; {@code afterServing} runs in every turn after the
     * notified queues were served, still inside the turn (a pause waits for it) but outside the device
     * lock: where a device finishes the work its queues gave it.
     */
    static QueueThread start(String name, VirtioAttachment attachment, Runnable afterServing) {
        QueueThread t = new QueueThread(name, attachment, afterServing);
        t.thread.start();
        return t;
    }

    /** Whether the caller is this I/O thread. */
    boolean isCurrent() {
        return Thread.currentThread() == thread;
    }

    /** Queue {@code queue} has work left: serve it again in the next turn. The I/O thread only. */
    void again(int queue) {
        if (queue >= 0 && queue < again.length) again[queue] = true;
    }

    boolean ended() {
        return !thread.isAlive();
    }

    /** Ends the thread after the request it is serving; waits a bounded time for that. Any thread. */
    void stop() {
        stopping = true;
        try (Arena arena = Arena.ofConfined()) {
            LibC.write(stopFd, arena.allocateFrom(JAVA_LONG, 1L), 8);
        }
        try {
            thread.join(STOP_WAIT_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!thread.isAlive()) LibC.close(stopFd);
    }

    private void run() {
        try (Arena arena = Arena.ofConfined()) {
            long size = LibC.POLLFD.byteSize();
            MemorySegment pollFds = arena.allocate(LibC.POLLFD, fds.length + 1);
            MemorySegment drain = arena.allocate(JAVA_LONG);
            for (int i = 0; i <= fds.length; i++) {
                pollFds.set(JAVA_INT, i * size + FD, i < fds.length ? fds[i] : stopFd);
                pollFds.set(JAVA_SHORT, i * size + EVENTS, LibC.POLLIN);
            }
            while (!stopping) {
                boolean busy = false;
                for (boolean a : again) busy |= a;
                int rc = LibC.poll(pollFds, fds.length + 1, busy ? 0 : -1);
                if (rc < 0 && LibC.errno() != Errno.EINTR) {
                    attachment.failure().failed(thread.getName() + ": poll failed: " + Errno.describe(LibC.errno()));
                    return;
                }
                EventLoop loop = attachment.loop(); // a paused VM holds this thread's turns too
                if (loop != null && !loop.enterTurn(() -> stopping)) break;
                try {
                    for (int q = 0; q < fds.length && !stopping; q++) {
                        boolean notified = rc > 0 && pollFds.get(JAVA_SHORT, q * size + REVENTS) != 0;
                        if (notified) LibC.read(fds[q], drain, 8);
                        if (notified) {
                            again[q] = false;
                            attachment.notifyQueue().accept(q);
                        } else if (again[q]) {
                            again[q] = false;
                            attachment.resumeQueue().accept(q);
                        }
                    }
                    afterServing.run();
                } finally {
                    if (loop != null) loop.exitTurn();
                }
            }
        } catch (RuntimeException | Error e) { // a bug here must end the run, not just this thread
            attachment.failure().failed(thread.getName() + " failed: " + e);
        }
    }
}
