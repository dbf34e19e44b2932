package dev.jvmm.host.vhost;

import dev.jvmm.device.virtio.TestDriver;
import dev.jvmm.event.EventLoop;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.memory.RamRange;
import dev.jvmm.sys.LibC;
import org.junit.jupiter.api.AfterEach;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a vhost-user device under test is attached to: an event loop, memfd-backed guest memory (a
 * back end maps it), eventfds for its kicks and irqfd, and the failures it reports. All closed after
 * each test, after the subclass's own clean-up.
 */
abstract class AttachedDeviceTest {
    final List<String> failures = Collections.synchronizedList(new ArrayList<>());
    private final List<Integer> fds = new ArrayList<>();
    final EventLoop loop = new EventLoop();
    final GuestMemory mem = GuestMemory.allocateShared(List.of(new RamRange(0, TestDriver.MEM_SIZE)));

    @AfterEach
    void closeAttachment() {
        for (int fd : fds) LibC.close(fd);
        mem.close();
        loop.close();
    }

    /** A non-blocking eventfd, closed after the test. */
    int eventfd() {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        assertTrue(fd >= 0);
        fds.add(fd);
        return fd;
    }
}
