package dev.jvmm.device.legacy;

import dev.jvmm.arch.x86.PcPlatform;

import dev.jvmm.device.BusDevice;
import dev.jvmm.device.IrqLine;

import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * An Intel 8254 programmable interval timer, for runs where KVM's in-kernel PIT is not used.
 *
 * <p>Register it at base 0x40, length 4: offsets 0-2 are the counters of channels 0-2 (ports
 * 0x40-0x42), offset 3 the control word register (port 0x43). The input clock is
 * {@value #FREQUENCY_HZ} Hz. Channel 0 drives IRQ 0; channel 1 (DRAM refresh on old PCs) counts but
 * drives nothing; channel 2's gate and output are wired to port 0x61 through
 * {@link SystemControlPortB}. The gates of channels 0 and 1 are tied high.
 *
 * <h2>Time instead of ticks</h2>
 * Nothing ticks: each counter remembers the time its count was loaded (or its gate last rose) and
 * derives its count and output pin from the injected nanosecond clock. Because the model is never
 * ticked, the VMM's event loop asks {@link #nextDeadlineNanos()} when channel 0's output next rises
 * (the edge that interrupts), sleeps until then and calls {@link #advance()}, which raises IRQ 0 as
 * an edge ({@code set(true)} then {@code set(false)}). A guest write that reprograms channel 0 calls
 * the {@linkplain #setDeadlineListener deadline listener} so the loop can re-arm its timer.
 *
 * <p>{@code advance()} raises <em>at most one</em> edge per call: if the loop ran late and several
 * periods of a periodic mode (2 or 3) elapsed since the last edge, they collapse into one and the
 * next deadline is the first period boundary after now. A guest that counts timer interrupts to
 * keep time loses the missed ones, as on an overloaded real machine; Linux keeps time from its
 * clocksource, not from the tick count, so it does not care.
 *
 * <h2>What is modelled</h2>
 * Control words with the three access modes (LSB, MSB, LSB then MSB), modes 0-5 (6 and 7 are
 * aliases of 2 and 3), the counter latch command, the read-back command (count and/or status of any
 * set of channels), the status byte (output pin, null count, access mode, mode, BCD bit). The BCD
 * bit is stored and reported in the status byte, but counting is always binary (no known guest
 * uses BCD counting). Simplifications: a count is taken over at once instead of on the next clock
 * edge (so the null-count flag clears at once, except in modes 1 and 5 where it clears when the
 * gate triggers), and a new count written in modes 2 and 3 restarts the period immediately rather
 * than at the end of the current one. In mode 3 with an odd count the read-back count is
 * approximate; the output's duty cycle is right.
 *
 * <p>Thread safety: port accesses come from vCPU threads and {@code advance()} from the event
 * loop; all state is guarded by this object's monitor. The IRQ line and the deadline listener are
 * called without the lock held.
 */
public final class I8254 implements BusDevice {
    /** Where a PC has it, and how long to register it. */
    public static final int BASE_PORT = PcPlatform.PIT_PORT;
    public static final int LENGTH = 4;
    /** The PIT's input clock, in Hz. */
    public static final long FREQUENCY_HZ = 1_193_182L;
    /** The IRQ channel 0 drives. */
    public static final int IRQ = PcPlatform.PIT_IRQ;

    static final int CONTROL = 3;
    static final long NANOS_PER_SECOND = 1_000_000_000L;

    /** Access modes (bits 5-4 of the control word). */
    static final int ACCESS_LATCH = 0, ACCESS_LSB = 1, ACCESS_MSB = 2, ACCESS_WORD = 3;

    private final LongSupplier nanoTime;
    private final IrqLine irq0;
    private final Channel[] channels = {new Channel(), new Channel(), new Channel()};
    private volatile Runnable deadlineListener = () -> { };

    /**
     * @param nanoTime a monotonic nanosecond clock ({@code System::nanoTime} in production); the same
     *     clock the event loop uses for {@link #nextDeadlineNanos()}
     * @param irq0 the line channel 0's output drives (IRQ 0)
     */
    public I8254(LongSupplier nanoTime, IrqLine irq0) {
        this.nanoTime = Objects.requireNonNull(nanoTime, "nanoTime");
        this.irq0 = Objects.requireNonNull(irq0, "irq0");
        channels[0].gate = true;
        channels[1].gate = true;
    }

    /**
     * Called (on the vCPU thread, without the lock) after a guest write that may change
     * {@link #nextDeadlineNanos()}: typically {@code () -> loop.execute(this::rearm)}.
     */
    public void setDeadlineListener(Runnable listener) {
        deadlineListener = Objects.requireNonNull(listener, "listener");
    }

    // ---- time conversion -------------------------------------------------------------------

    /** Whole PIT clock periods in {@code nanos} (nanos >= 0), without overflow for any long. */
    static long ticksIn(long nanos) {
        return nanos / NANOS_PER_SECOND * FREQUENCY_HZ + nanos % NANOS_PER_SECOND * FREQUENCY_HZ / NANOS_PER_SECOND;
    }

    /** The least number of nanoseconds {@code n} with {@code ticksIn(n) >= ticks}. */
    static long nanosFor(long ticks) {
        return ticks / FREQUENCY_HZ * NANOS_PER_SECOND
                + Math.ceilDiv(ticks % FREQUENCY_HZ * NANOS_PER_SECOND, FREQUENCY_HZ);
    }

    // ---- one counter -----------------------------------------------------------------------

    private static final class Channel {
        int mode;
        int access = ACCESS_WORD;
        boolean bcd;
        /** The count register as written; 0 means 65536 (binary). */
        int reload;
        boolean gate;
        /** Set by a control word or count write, cleared when the count is loaded into the counter. */
        boolean nullCount;

        /** Word access: the LSB has been written and the MSB is awaited. */
        boolean msbWriteNext;
        int pendingLsb;
        /** Word access: the next read returns the MSB (shared by live and latched reads, as on the chip). */
        boolean msbReadNext;

        boolean countLatched;
        int latchedCount;
        boolean statusLatched;
        int latchedStatus;

        /**
         * A count is loaded and counting has started (modes 0, 2, 3, 4: count written; modes 1, 5:
         * triggered by a rising gate after the count was written).
         */
        boolean armed;
        /** A complete count has been written since the last control word. */
        boolean countWritten;
        /** When the current run of counting started (while counting). */
        long start;
        /** Clocks counted before a pause (modes 0 and 4 pause while the gate is low). */
        long pausedTicks;
        /** Interrupt edges delivered since counting started (channel 0). */
        long edges;

        long period() {
            return reload == 0 ? 0x10000 : reload;
        }

        /** Whether the counter is counting now. */
        boolean counting() {
            return armed && (gate || mode == 1 || mode == 5);
        }

        /** Clocks counted since the count was loaded (or the gate triggered). */
        long ticks(long now) {
            if (!armed) {
                return 0;
            }
            return pausedTicks + (counting() ? ticksIn(Math.max(0, now - start)) : 0);
        }

        int count(long now) {
            if (!armed) {
                return reload & 0xffff;
            }
            long n = period(), t = ticks(now);
            return switch (mode) {
                case 2 -> (int) ((n - t % n) & 0xffff);
                case 3 -> {
                    long p = t % n, high = (n + 1) / 2;
                    long half = p < high ? p : p - high;
                    yield (int) (((n & ~1L) - 2 * half) & 0xffff);
                }
                default -> (int) Math.floorMod(n - t, 0x10000L);
            };
        }

        boolean output(long now) {
            long n = period();
            return switch (mode) {
                case 0 -> armed && ticks(now) >= n;
                case 1 -> !armed || ticks(now) >= n;
                case 2 -> !counting() || (n > 1 && ticks(now) % n != n - 1);
                case 3 -> !counting() || ticks(now) % n < (n + 1) / 2;
                default -> !armed || ticks(now) != n;           // 4 and 5: one clock low at terminal count
            };
        }

        /** The clock count at which the output next rises with an interrupt edge, or -1. */
        long nextEdgeTick() {
            if (!counting()) {
                return -1;
            }
            long n = period();
            return switch (mode) {
                case 0, 1 -> edges == 0 ? n : -1;
                case 2, 3 -> (edges + 1) * n;
                default -> edges == 0 ? n + 1 : -1;            // 4, 5: rises after the low clock
            };
        }

        int status(long now) {
            return (output(now) ? 0x80 : 0) | (nullCount ? 0x40 : 0) | access << 4 | mode << 1 | (bcd ? 1 : 0);
        }

        void control(int v) {
            int m = (v >> 1) & 7;
            mode = m >= 6 ? m - 4 : m;
            access = (v >> 4) & 3;
            bcd = (v & 1) != 0;
            msbWriteNext = false;
            msbReadNext = false;
            countLatched = false;
            statusLatched = false;
            nullCount = true;
            armed = false;
            countWritten = false;
            edges = 0;
            pausedTicks = 0;
        }

        void writeCount(int v, long now) {
            switch (access) {
                case ACCESS_LSB -> load(v, now);
                case ACCESS_MSB -> load(v << 8, now);
                default -> {
                    if (!msbWriteNext) {
                        pendingLsb = v;
                        msbWriteNext = true;
                        if (mode == 0) {
                            armed = false;         // writing the first byte stops a mode 0 count
                        }
                        nullCount = true;
                    } else {
                        msbWriteNext = false;
                        load(pendingLsb | v << 8, now);
                    }
                }
            }
        }

        private void load(int value, long now) {
            reload = value & 0xffff;
            countWritten = true;
            if (mode == 1 || mode == 5) {
                nullCount = !armed;        // taken over at the next trigger; a running shot uses it now
                return;
            }
            arm(now);
        }

        /** The reload value becomes the count now (a load, or a trigger in modes 1 and 5) and counting starts. */
        private void arm(long now) {
            nullCount = false;
            armed = true;
            restart(now);
        }

        /** Counting (re)starts now: no clocks paused, no output edges yet. */
        private void restart(long now) {
            start = now;
            pausedTicks = 0;
            edges = 0;
        }

        void setGate(boolean high, long now) {
            if (high == gate) {
                return;
            }
            if (!high) {
                if ((mode == 0 || mode == 4) && armed) {
                    pausedTicks += ticksIn(Math.max(0, now - start));
                }
                gate = false;
                return;
            }
            gate = true;
            switch (mode) {
                case 0, 4 -> start = now;                  // resume
                case 1, 5 -> {                             // trigger (or retrigger)
                    if (countWritten) arm(now);
                }
                default -> restart(now);                   // 2, 3: restart the period
            }
        }

        int readByte(long now) {
            if (statusLatched) {
                statusLatched = false;
                return latchedStatus;
            }
            int value = countLatched ? latchedCount : count(now);
            int b;
            switch (access) {
                case ACCESS_LSB -> {
                    b = value & 0xff;
                    countLatched = false;
                }
                case ACCESS_MSB -> {
                    b = value >>> 8 & 0xff;
                    countLatched = false;
                }
                default -> {
                    if (msbReadNext) {
                        b = value >>> 8 & 0xff;
                        countLatched = false;
                    } else {
                        b = value & 0xff;
                    }
                    msbReadNext = !msbReadNext;
                }
            }
            return b;
        }

        void latchCount(long now) {
            if (!countLatched) {
                countLatched = true;
                latchedCount = count(now);
            }
        }

        void latchStatus(long now) {
            if (!statusLatched) {
                statusLatched = true;
                latchedStatus = status(now);
            }
        }
    }

    // ---- bus interface ---------------------------------------------------------------------

    @Override
    public long read(long offset, int size) {
        if (offset < 0 || offset >= CONTROL) {
            return 0xff;                                   // the control register is write-only
        }
        synchronized (this) {
            return channels[(int) offset].readByte(nanoTime.getAsLong());
        }
    }

    @Override
    public void write(long offset, int size, long value) {
        int v = (int) (value & 0xff);
        boolean notify;
        synchronized (this) {
            long now = nanoTime.getAsLong();
            if (offset >= 0 && offset < CONTROL) {
                channels[(int) offset].writeCount(v, now);
                notify = offset == 0;
            } else if (offset == CONTROL) {
                notify = controlWord(v, now);
            } else {
                notify = false;
            }
        }
        if (notify) {
            deadlineListener.run();
        }
    }

    /** Returns whether channel 0's programming changed. */
    private boolean controlWord(int v, long now) {
        int select = v >> 6;
        if (select == 3) {                                 // read-back
            boolean count = (v & 0x20) == 0, status = (v & 0x10) == 0;
            for (int i = 0; i < 3; i++) {
                if ((v & (2 << i)) != 0) {
                    if (count) {
                        channels[i].latchCount(now);
                    }
                    if (status) {
                        channels[i].latchStatus(now);
                    }
                }
            }
            return false;
        }
        Channel ch = channels[select];
        if (((v >> 4) & 3) == ACCESS_LATCH) {
            ch.latchCount(now);
            return false;
        }
        ch.control(v);
        return select == 0;
    }

    // ---- channel 2 (port 0x61) and inspection ----------------------------------------------

    /** Sets the gate input of {@code channel} (0-2); only channel 2's is wired to anything on a PC. */
    public synchronized void setGate(int channel, boolean high) {
        channels[Objects.checkIndex(channel, 3)].setGate(high, nanoTime.getAsLong());
    }

    public synchronized boolean gate(int channel) {
        return channels[Objects.checkIndex(channel, 3)].gate;
    }

    /** The output pin of {@code channel} (0-2) now. */
    public synchronized boolean output(int channel) {
        return channels[Objects.checkIndex(channel, 3)].output(nanoTime.getAsLong());
    }

    // ---- driving IRQ 0 from the event loop -------------------------------------------------

    /**
     * When channel 0's output next rises (in {@code nanoTime}'s time base): the terminal count of a
     * mode 0 or 4 one-shot, the next period boundary in modes 2 and 3; {@link Long#MAX_VALUE} when
     * nothing is pending (not programmed, one-shot already delivered).
     */
    public synchronized long nextDeadlineNanos() {
        Channel ch = channels[0];
        long tick = ch.nextEdgeTick();
        if (tick < 0) {
            return Long.MAX_VALUE;
        }
        return ch.start + nanosFor(Math.max(0, tick - ch.pausedTicks));
    }

    /**
     * Delivers channel 0's interrupt if its deadline has passed: raises IRQ 0 as one edge. At most
     * one edge per call; periods missed because the call came late are dropped (see the class
     * comment). Harmless to call early or repeatedly.
     *
     * @return whether an edge was raised
     */
    public boolean advance() {
        synchronized (this) {
            Channel ch = channels[0];
            long tick = ch.nextEdgeTick();
            if (tick < 0) {
                return false;
            }
            long t = ch.ticks(nanoTime.getAsLong());
            if (t < tick) {
                return false;
            }
            ch.edges = ch.mode == 2 || ch.mode == 3 ? t / ch.period() : 1;
        }
        irq0.set(true);
        irq0.set(false);
        return true;
    }
}
