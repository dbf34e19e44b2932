package dev.jvmm.vmm;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TimelineTest {
    @Test
    void processAgeFromStatAndUptime() {
        // field 22 (starttime) is 150 ticks = 1.5 s after boot; the command name has spaces and a ')'
        String stat = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 150 1000 200 0";
        assertEquals(2_250_000_000L, Timeline.processAgeNanos(stat, "3.75 10.00\n"));
        assertEquals(0, Timeline.processAgeNanos(stat, "1.00 1.00\n"), "never negative");
    }

    @Test
    void thisProcessHasAnAge() {
        long age = Timeline.processAgeNanos();
        assertTrue(age > 0 && age < 3_600_000_000_000L, "age " + age);
    }

    @Test
    void timeoutsCountFromTheProcessStartOnlyWhenMainStartedIt() {
        long before = System.nanoTime();
        Timeline inProcess = Timeline.startingAt(before - 3_600_000_000_000L); // a JVM up for an hour
        assertTrue(inProcess.timeoutOrigin() >= before, "a caller in a long-lived JVM counts from its own start");
        inProcess.mark(Timeline.Mark.MAIN, before - 1_000);
        assertEquals(before - 3_600_000_000_000L, inProcess.timeoutOrigin(), "jvmm's own process counts from its start");
    }

    @Test
    void firstMarkWinsAndUnreachedMarksAreLeftOut() {
        Timeline t = Timeline.startingAt(1_000_000_000L);
        t.mark(Timeline.Mark.KERNEL_LOADED, 1_020_000_000L);
        t.mark(Timeline.Mark.KERNEL_LOADED, 1_090_000_000L); // a restarted guest: the first boot's mark stays
        t.mark(Timeline.Mark.VM_CREATED, 1_030_500_000L);
        t.mark(Timeline.Mark.FIRST_CONSOLE_BYTE, 0); // the guest printed nothing
        assertEquals(20.0, t.millis(Timeline.Mark.KERNEL_LOADED));
        assertEquals(-1, t.millis(Timeline.Mark.FIRST_CONSOLE_BYTE));
        assertEquals("kernel_loaded 20.0, vm_created 30.5", t.line());
        assertEquals("{\"process_start\": 0, \"kernel_loaded\": 20.000, \"vm_created\": 30.500}",
                t.json());
    }
}
