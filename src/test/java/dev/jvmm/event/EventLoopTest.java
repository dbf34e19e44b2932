package dev.jvmm.event;

import dev.jvmm.sys.LibC;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EventLoopTest {
    @Test
    void timersRunInDeadlineOrderAndCancelledOnesDoNot() {
        try (EventLoop loop = new EventLoop()) {
            List<String> ran = new ArrayList<>();
            loop.schedule(30_000_000, () -> ran.add("late"));
            loop.schedule(1_000_000, () -> ran.add("early"));
            EventLoop.Timer cancelled = loop.schedule(2_000_000, () -> ran.add("cancelled"));
            cancelled.cancel();
            loop.run(() -> ran.size() >= 2);
            assertEquals(List.of("early", "late"), ran);
        }
    }

    /** Repeated: a lost wake-up shows up as a loop that never returns (a hang, caught by the timeout). */
    @RepeatedTest(50)
    @Timeout(10)
    void tasksFromOtherThreadsWakeTheLoop() throws Exception {
        try (EventLoop loop = new EventLoop()) {
            AtomicInteger count = new AtomicInteger();
            Thread t = new Thread(() -> {
                for (int i = 0; i < 1000; i++) loop.execute(count::incrementAndGet);
            });
            t.start();
            loop.run(() -> count.get() == 1000);
            t.join();
            assertEquals(1000, count.get());
        }
    }

    @Test
    void watchedEventfdIsDispatchedWithItsCounter() {
        try (EventLoop loop = new EventLoop(); Arena arena = Arena.ofConfined()) {
            int efd = LibC.eventfd(0, LibC.EFD_NONBLOCK);
            assertTrue(efd >= 0);
            MemorySegment buf = arena.allocate(JAVA_LONG);
            AtomicLong seen = new AtomicLong();
            loop.watch(efd, (fd, revents) -> {
                MemorySegment b = Arena.ofAuto().allocate(JAVA_LONG);
                assertEquals(8, LibC.read(fd, b, 8));
                seen.addAndGet(b.get(JAVA_LONG, 0));
            });
            for (int i = 0; i < 5; i++) {
                buf.set(JAVA_LONG, 0, 3);
                assertEquals(8, LibC.write(efd, buf, 8));
            }
            loop.run(() -> seen.get() > 0);
            assertEquals(15, seen.get(), "eventfd counts writes; one wake-up saw them all");
            loop.unwatch(efd);
            LibC.close(efd);
        }
    }
}
