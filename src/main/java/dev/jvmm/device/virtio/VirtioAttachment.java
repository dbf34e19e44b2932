package dev.jvmm.device.virtio;

import dev.jvmm.device.DeviceFailure;
import dev.jvmm.event.EventLoop;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.function.IntConsumer;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * What a virtio device gets when it is wired into a VM.
 *
 * @param loop            the VM's event loop (watch host descriptors, timers); loop thread only
 * @param queueEventFds   one eventfd per queue that KVM signals when the guest notifies that queue
 *                        (an ioeventfd on QueueNotify: no exit to jvmm); non-blocking
 * @param notifyQueue     what serves a notification of queue n (the transport's {@code notify(n)});
 *                        call it on one thread at a time
 * @param resumeQueue     serves queue n again when the device stopped with work left (not counted as a
 *                        notification)
 * @param failure         ends the run when the device's host side fails for good
 * @param interruptFd     the device's irqfd: a write to it interrupts the guest (KVM injects it with no
 *                        exit to jvmm); a back-end process can be given it to signal used buffers
 *                        itself; -1 when there is none (tests)
 * @param memory          guest RAM (shared memory when the device's spec asked for it), or null
 */
public record VirtioAttachment(EventLoop loop, int[] queueEventFds, IntConsumer notifyQueue, IntConsumer resumeQueue,
                               DeviceFailure failure, int interruptFd, GuestMemory memory) {
    public VirtioAttachment {
        queueEventFds = queueEventFds.clone();
    }

    /** An attachment without an irqfd or memory for the device (devices that need neither). */
    public VirtioAttachment(EventLoop loop, int[] queueEventFds, IntConsumer notifyQueue, IntConsumer resumeQueue,
                            DeviceFailure failure) {
        this(loop, queueEventFds, notifyQueue, resumeQueue, failure, -1, null);
    }

    @Override
    public int[] queueEventFds() {
        return queueEventFds.clone();
    }

    /** The default wiring: the event loop reads each queue's eventfd and serves the queue. */
    public void serveNotificationsOnLoop() {
        MemorySegment drain = Arena.ofAuto().allocate(JAVA_LONG);
        for (int q = 0; q < queueEventFds.length; q++) {
            int queue = q;
            loop.watch(queueEventFds[q], (fd, revents) -> {
                LibC.read(fd, drain, 8);
                notifyQueue.accept(queue);
            });
        }
    }
}
