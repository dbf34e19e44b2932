package dev.jvmm.device.legacy;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static dev.jvmm.device.legacy.I8254.nanosFor;
import static dev.jvmm.device.legacy.I8254.ticksIn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class I8254Test {
    private static final int CONTROL = 3;
    /** An arbitrary start, so nothing depends on the clock starting at 0. */
    private static final long T0 = 5_000_000_000L;

    private long now = T0;
    private final List<Boolean> irq = new ArrayList<>();
    private int deadlineChanges;
    private final I8254 pit = new I8254(() -> now, irq::add);

    {
        pit.setDeadlineListener(() -> deadlineChanges++);
    }

    private void at(long ticks) {
        now = T0 + nanosFor(ticks);
    }

    /** The clock moves to the next deadline, where the channel's output has an edge: {@code total} so far. */
    private void edgeAtNextDeadline(int total) {
        now = pit.nextDeadlineNanos();
        assertTrue(pit.advance());
        assertEquals(total, edges());
    }

    private void control(int v) {
        pit.write(CONTROL, 1, v);
    }

    private void out(int channel, int v) {
        pit.write(channel, 1, v);
    }

    private int in(int channel) {
        return (int) pit.read(channel, 1);
    }

    private void loadWord(int channel, int count) {
        out(channel, count & 0xff);
        out(channel, count >> 8);
    }

    private int readWord(int channel) {
        int lo = in(channel);
        return lo | in(channel) << 8;
    }

    private int edges() {
        assertEquals(0, irq.size() % 2, "edges come as set(true), set(false)");
        for (int i = 0; i < irq.size(); i++) {
            assertEquals(i % 2 == 0, irq.get(i));
        }
        return irq.size() / 2;
    }

    @Test
    void tickConversionsAreConsistentAndDoNotOverflow() {
        assertEquals(I8254.FREQUENCY_HZ, ticksIn(1_000_000_000L));
        assertEquals(0, ticksIn(838));
        assertEquals(1, ticksIn(839));
        for (long t : new long[] {0, 1, 2, 1000, 65536, 1_193_181, 1_193_182, 123_456_789_012L, 9_000_000_000_000L}) {
            long n = nanosFor(t);
            assertEquals(t, ticksIn(n), "ticks " + t);
            if (n > 0) {
                assertTrue(ticksIn(n - 1) < t, "nanosFor is the least such time for " + t);
            }
        }
        assertTrue(ticksIn(Long.MAX_VALUE) > 0);
    }

    @Test
    void wordAccessCountsDownOverTime() {
        control(0x30);                        // channel 0, LSB then MSB, mode 0
        loadWord(0, 5000);
        assertEquals(5000, readWord(0));
        at(1234);
        assertEquals(5000 - 1234, readWord(0));
        at(4999);
        assertEquals(1, readWord(0));
    }

    @Test
    void lsbOnlyAndMsbOnlyAccess() {
        control(0x50);                        // channel 1, LSB only, mode 0
        out(1, 200);
        at(30);
        assertEquals(170, in(1));
        assertEquals(170, in(1), "every read returns the LSB");

        control(0x60);                        // channel 1, MSB only, mode 0
        now = T0;
        out(1, 0x10);                         // count 0x1000
        at(0x100);
        assertEquals(0x0f, in(1));
        at(0x100 + 0x0f00);
        assertEquals(0x00, in(1));
    }

    @Test
    void mode0IsAOneShotThatRaisesIrq0Once() {
        control(0x30);
        loadWord(0, 1193);                    // about 1 ms
        assertFalse(pit.output(0), "output low while counting");
        long deadline = pit.nextDeadlineNanos();
        assertEquals(T0 + nanosFor(1193), deadline);

        now = deadline - 1;
        assertFalse(pit.advance());
        assertEquals(0, edges());
        assertFalse(pit.output(0));

        now = deadline;
        assertTrue(pit.output(0));
        assertTrue(pit.advance());
        assertEquals(1, edges());
        assertEquals(Long.MAX_VALUE, pit.nextDeadlineNanos(), "one-shot: nothing more");
        now += 1_000_000_000L;
        assertFalse(pit.advance());
        assertEquals(1, edges());
        assertTrue(pit.output(0), "output stays high");

        at(1193 + 5);
        assertEquals(65536 - 5, readWord(0), "the counter wraps and keeps counting");
    }

    @Test
    void mode0ReprogrammingRearms() {
        control(0x30);
        loadWord(0, 100);
        at(100);
        assertTrue(pit.advance());
        long t1 = now;
        loadWord(0, 50);                      // a new count restarts the shot
        assertFalse(pit.output(0));
        assertEquals(t1 + nanosFor(50), pit.nextDeadlineNanos());
        edgeAtNextDeadline(2);
    }

    @Test
    void mode2IsPeriodicWithOneCatchUpEdge() {
        control(0x34);                        // channel 0, word, mode 2 (what Linux uses for HZ ticks)
        loadWord(0, 1000);
        assertTrue(pit.output(0));
        assertEquals(T0 + nanosFor(1000), pit.nextDeadlineNanos());

        at(999);
        assertFalse(pit.output(0), "low for the clock where the count is 1");
        assertEquals(1, readWord(0));
        at(1000);
        assertTrue(pit.output(0));
        assertEquals(1000, readWord(0), "reloaded");
        assertTrue(pit.advance());
        assertEquals(T0 + nanosFor(2000), pit.nextDeadlineNanos());
        assertFalse(pit.advance(), "not again for the same period");

        at(5500);                             // the loop was late: periods 2 to 5 elapsed
        assertEquals(500, readWord(0));
        assertTrue(pit.advance());
        assertEquals(2, edges(), "late periods collapse into one edge");
        assertFalse(pit.advance());
        assertEquals(T0 + nanosFor(6000), pit.nextDeadlineNanos());
        edgeAtNextDeadline(3);
    }

    @Test
    void mode3IsASquareWave() {
        control(0x36);                        // channel 0, word, mode 3
        loadWord(0, 1000);
        at(0);
        assertTrue(pit.output(0));
        assertEquals(1000, readWord(0));
        at(100);
        assertTrue(pit.output(0));
        assertEquals(800, readWord(0), "counts down by two");
        at(499);
        assertTrue(pit.output(0));
        at(500);
        assertFalse(pit.output(0));
        at(999);
        assertFalse(pit.output(0));
        assertEquals(T0 + nanosFor(1000), pit.nextDeadlineNanos());
        at(1000);
        assertTrue(pit.output(0));
        assertTrue(pit.advance());
        assertEquals(T0 + nanosFor(2000), pit.nextDeadlineNanos());
        assertEquals(1, edges());
    }

    @Test
    void modes6And7AliasModes2And3() {
        control(0x3c);                        // mode 6 = 2
        pit.write(CONTROL, 1, 0xe2);          // read back status of channel 0
        assertEquals(0x34, in(0) & 0x3f);
        control(0x3e);                        // mode 7 = 3
        pit.write(CONTROL, 1, 0xe2);
        assertEquals(0x36, in(0) & 0x3f);
    }

    @Test
    void noDeadlineUntilProgrammed() {
        assertEquals(Long.MAX_VALUE, pit.nextDeadlineNanos());
        assertFalse(pit.advance());
        control(0x34);
        assertEquals(Long.MAX_VALUE, pit.nextDeadlineNanos(), "control word without a count");
        out(0, 0x10);
        assertEquals(Long.MAX_VALUE, pit.nextDeadlineNanos(), "half a count");
        out(0, 0x00);
        assertEquals(T0 + nanosFor(0x10), pit.nextDeadlineNanos());
    }

    @Test
    void channel0WritesNotifyTheDeadlineListener() {
        control(0x34);
        loadWord(0, 1000);
        assertEquals(3, deadlineChanges);
        control(0xb0);                        // channel 2
        loadWord(2, 1000);
        in(0);
        assertEquals(3, deadlineChanges);
    }

    @Test
    void counterLatchFreezesTheReadValue() {
        control(0x30);
        loadWord(0, 5000);
        at(100);
        control(0x00);                        // latch channel 0
        at(300);
        control(0x00);                        // a second latch before reading changes nothing
        assertEquals(4900, readWord(0));
        assertEquals(4700, readWord(0), "unlatched after both bytes were read");
    }

    @Test
    void latchWithLsbAccessReleasesAfterOneByte() {
        control(0x50);                        // channel 1, LSB, mode 0
        out(1, 200);
        at(10);
        control(0x40);                        // latch channel 1
        at(50);
        assertEquals(190, in(1));
        assertEquals(150, in(1));
    }

    @Test
    void readBackLatchesStatusAndCount() {
        control(0x30);                        // channel 0, word, mode 0
        pit.write(CONTROL, 1, 0xe2);          // status only, channel 0
        assertEquals(0x70, in(0), "output low, null count, word access, mode 0");

        loadWord(0, 0x1234);
        at(0x34);
        pit.write(CONTROL, 1, 0xc2);          // count and status, channel 0
        at(0x100);
        assertEquals(0x30, in(0), "status first: count loaded, output low");
        assertEquals(0x1200, readWord(0), "then the latched count");
        assertEquals(0x1234 - 0x100, readWord(0), "then live");

        at(0x1234);
        pit.write(CONTROL, 1, 0xe2);
        assertEquals(0xb0, in(0), "output high after the terminal count");
    }

    @Test
    void readBackOfSeveralChannelsAndCountOnly() {
        control(0x34);
        loadWord(0, 1000);
        control(0x74);                        // channel 1, word, mode 2
        loadWord(1, 2000);
        control(0xb6);                        // channel 2, word, mode 3, gate still low
        loadWord(2, 3000);
        at(10);
        pit.write(CONTROL, 1, 0xde);          // count only, channels 0-2
        at(500);
        assertEquals(990, readWord(0));
        assertEquals(1990, readWord(1));
        assertEquals(3000, readWord(2), "channel 2 does not count with its gate low");
        assertEquals(500, readWord(0));
    }

    @Test
    void bcdBitIsReportedButCountingIsBinary() {
        control(0x31);
        pit.write(CONTROL, 1, 0xe2);
        assertEquals(0x71, in(0));
        loadWord(0, 0x100);
        at(1);
        assertEquals(0xff, readWord(0));
    }

    @Test
    void linuxTscCalibrationThroughPort61() {
        SystemControlPortB portB = new SystemControlPortB(pit);
        // outb((inb(0x61) & ~0x02) | 0x01, 0x61): gate high, speaker off
        int v = (int) portB.read(0, 1);
        portB.write(0, 1, (v & ~0x02) | 0x01);
        assertTrue(pit.gate(2));
        assertFalse(portB.speakerEnabled());
        // outb(0xb0, 0x43); outb(latch & 0xff, 0x42); outb(latch >> 8, 0x42): channel 2, mode 0, 50 ms
        control(0xb0);
        int latch = (int) (I8254.FREQUENCY_HZ / 20);
        loadWord(2, latch);
        assertEquals(0, portB.read(0, 1) & 0x20);
        now = T0 + nanosFor(latch) - 1;
        assertEquals(0, portB.read(0, 1) & 0x20, "not yet");
        now = T0 + nanosFor(latch);
        assertEquals(0x20, portB.read(0, 1) & 0x20, "output high at terminal count");
        assertEquals(0x01, portB.read(0, 1) & 0x0f, "written bits read back");
        assertEquals(Long.MAX_VALUE, pit.nextDeadlineNanos(), "channel 2 never interrupts");
        assertEquals(0, edges());
    }

    @Test
    void quickPitCalibrationReadsTheMsbWithoutLatching() {
        SystemControlPortB portB = new SystemControlPortB(pit);
        portB.write(0, 1, 0x01);
        control(0xb0);
        out(2, 0xff);
        out(2, 0xff);
        at(10);
        in(2);                                // pit_verify_msb: LSB, then MSB
        assertEquals(0xff, in(2));
        at(256 * 3);
        in(2);
        assertEquals(0xfc, in(2));
    }

    @Test
    void channel2GateLowPausesMode0() {
        SystemControlPortB portB = new SystemControlPortB(pit);
        control(0xb0);
        loadWord(2, 1000);                    // gate low: loaded, not counting
        now += nanosFor(500);
        assertEquals(1000, readWord(2));
        portB.write(0, 1, 0x01);
        now += nanosFor(200);
        assertEquals(800, readWord(2));
        portB.write(0, 1, 0x00);
        now += nanosFor(4300);
        assertEquals(800, readWord(2));
        assertEquals(0, portB.read(0, 1) & 0x20);
        portB.write(0, 1, 0x01);
        long resumed = now;
        now = resumed + nanosFor(799);
        assertEquals(0, portB.read(0, 1) & 0x20);
        now = resumed + nanosFor(800);
        assertEquals(0x20, portB.read(0, 1) & 0x20);
    }

    @Test
    void channel2Mode1IsTriggeredByTheGate() {
        control(0xb2);                        // channel 2, word, mode 1
        loadWord(2, 100);
        assertTrue(pit.output(2), "high until triggered");
        pit.setGate(2, true);
        assertFalse(pit.output(2));
        at(99);
        assertFalse(pit.output(2));
        at(100);
        assertTrue(pit.output(2));
        pit.setGate(2, false);
        pit.setGate(2, true);                 // retrigger
        assertFalse(pit.output(2));
    }

    @Test
    void refreshBitTogglesOnEveryRead() {
        SystemControlPortB portB = new SystemControlPortB(pit);
        int a = (int) portB.read(0, 1) & 0x10, b = (int) portB.read(0, 1) & 0x10, c = (int) portB.read(0, 1) & 0x10;
        assertEquals(0x10, a ^ b);
        assertEquals(a, c);
        portB.write(0, 1, 0x03);
        assertTrue(portB.speakerEnabled());
        assertEquals(0x03, portB.read(0, 1) & 0xcf);
    }

    @Test
    void controlPortReadsAllOnes() {
        assertEquals(0xff, pit.read(CONTROL, 1));
    }
}
