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

    /** A held loop serves no descriptor, task or timer; released, it serves them all, a cancelled timer still not. */
    @Test
    void aHeldLoopServesNothingUntilReleased() {
        try (EventLoop loop = new EventLoop(); Arena arena = Arena.ofConfined()) {
            int efd = LibC.eventfd(0, LibC.EFD_NONBLOCK);
            assertTrue(efd >= 0);
            List<String> ran = new ArrayList<>();
            loop.watch(efd, (fd, revents) -> {
                LibC.read(fd, arena.allocate(JAVA_LONG), 8);
                ran.add("fd");
            });
            loop.hold(true);
            loop.runOnce(0);
            assertTrue(loop.holding());
            loop.schedule(0, () -> ran.add("timer"));
            EventLoop.Timer cancelled = loop.schedule(0, () -> ran.add("cancelled"));
            loop.execute(() -> ran.add("task"));
            MemorySegment one = arena.allocate(JAVA_LONG);
            one.set(JAVA_LONG, 0, 1L);
            LibC.write(efd, one, 8);
            for (int i = 0; i < 5; i++) loop.runOnce(10);
            assertEquals(List.of(), ran, "nothing ran while held");
            cancelled.cancel(); // cancelling still works on a held (and later moved) timer
            loop.hold(false);
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (ran.size() < 3 && System.nanoTime() < deadline) loop.runOnce(100);
            assertEquals(List.of("fd", "task", "timer"), ran);
            assertTrue(!loop.holding());
            LibC.close(efd);
        }
    }

    /** A device thread's turn keeps a hold from being complete; a thread asked to stop does not wait for the release. */
    @Test
    void deviceTurnsDelayTheHoldAndAreHeldByIt() throws Exception {
        try (EventLoop loop = new EventLoop()) {
            assertTrue(loop.enterTurn(() -> false), "not held: enters at once");
            loop.hold(true);
            loop.runOnce(0);
            assertTrue(!loop.holding(), "a turn in progress: the hold is not complete");
            loop.exitTurn();
            assertTrue(loop.holding());
            assertTrue(!loop.enterTurn(() -> true), "held, and the thread is stopping: it does not enter");
            AtomicInteger entered = new AtomicInteger();
            Thread t = new Thread(() -> {
                if (loop.enterTurn(() -> false)) {
                    entered.incrementAndGet();
                    loop.exitTurn();
                }
            });
            t.start();
            loop.hold(false);
            t.join(30_000);
            assertEquals(1, entered.get(), "released: the waiting turn goes ahead");
        }
    }
}
