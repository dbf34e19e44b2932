package dev.jvmm.device.legacy;

import dev.jvmm.arch.x86.PcPlatform;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.device.BusDevice;

import java.time.Clock;
import java.time.LocalDateTime;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.Objects;

/**
 * The MC146818 real-time clock and its 128 bytes of CMOS RAM, as on a PC.
 *
 * <p>Register it at base 0x70, length 2: offset 0 (port 0x70) selects a register (bit 7, the NMI
 * disable, is ignored; reads return 0xff as the port is write-only), offset 1 (port 0x71) reads or
 * writes it.
 *
 * <p>The clock shows the host's wall-clock time in UTC from the injected {@link Clock}, in the
 * format register B asks for: BCD (default) or binary (bit 2), 24-hour (bit 1, default) or 12-hour
 * with bit 7 of the hours meaning PM. Register 0x32 holds the century. A guest that writes a time
 * register moves its clock: jvmm keeps the difference to the host clock, so the guest's time goes on
 * from what it set. Writes made while register B's SET bit (7) is on are collected and take effect
 * when it is cleared, as on the chip (this also lets a guest set a date field by field without
 * passing through invalid dates); outside SET each write applies at once, an impossible day of
 * month being clamped to the month's last day. The day of the week is derived from the date; writes
 * to it are ignored.
 *
 * <p>Register A's UIP bit always reads 0 (an update is never in progress); its divider and rate
 * bits are stored. Register C reads 0: the model raises no interrupts (no periodic, alarm or
 * update-ended interrupt on IRQ 8). Register D reads 0x80 (valid RAM and time). The alarm registers
 * and the rest of the RAM (0x0e-0x7f) are plain storage, initialised with the memory-size bytes a
 * BIOS leaves there: 0x15/0x16 base memory in KiB (640), 0x17/0x18 and 0x30/0x31 extended memory
 * above 1 MiB in KiB (at most 63 MiB), 0x34/0x35 memory above 16 MiB in 64 KiB units, 0x5b-0x5d
 * memory above 4 GiB in 64 KiB units.
 */
public final class CmosRtc implements BusDevice, dev.jvmm.device.DeviceState {
    public static final int BASE_PORT = PcPlatform.RTC_PORT;
    public static final int LENGTH = 2;

    static final int SECONDS = 0x00, MINUTES = 0x02, HOURS = 0x04, DAY_OF_WEEK = 0x06, DAY_OF_MONTH = 0x07,
            MONTH = 0x08, YEAR = 0x09, STATUS_A = 0x0a, STATUS_B = 0x0b, STATUS_C = 0x0c, STATUS_D = 0x0d,
            CENTURY = 0x32;
    static final int B_SET = 0x80, B_BINARY = 0x04, B_24H = 0x02;

    private static final long KIB = 1024, MIB = 1024 * KIB;

    private final Clock clock;
    private final byte[] ram = new byte[128];
    private int index;
    /** Guest time minus host time, in seconds. */
    private long offsetSeconds;
    /** While SET is on: the time being written (see {@link #fields}), else null. */
    private int[] pending;

    /**
     * @param memSize guest RAM in bytes, as given to the VM (split by {@link Layout} into RAM below the
     *     MMIO hole and RAM from 4 GiB)
     * @param clock the host's wall clock ({@code Clock.systemUTC()} in production)
     */
    public CmosRtc(long memSize, Clock clock) {
        this.clock = Objects.requireNonNull(clock, "clock");
        if (memSize < 0) {
            throw new IllegalArgumentException("negative memory size");
        }
        ram[STATUS_A] = 0x26;             // 32.768 kHz time base, 1024 Hz rate
        ram[STATUS_B] = B_24H;
        ram[STATUS_D] = (byte) 0x80;

        long low = Layout.lowRamSize(memSize), high = Layout.highRamSize(memSize);
        put16(0x15, 640);
        long ext = Math.min(Math.max(0, low - MIB) / KIB, 63 * 1024);
        put16(0x17, ext);
        put16(0x30, ext);
        long above16 = Math.min(Math.max(0, low - 16 * MIB) / (64 * KIB), 0xffff);
        put16(0x34, above16);
        long above4g = Math.min(high / (64 * KIB), 0xffffff);
        put16(0x5b, above4g);
        ram[0x5d] = (byte) (above4g >>> 16);
    }

    private void put16(int at, long value) {
        ram[at] = (byte) value;
        ram[at + 1] = (byte) (value >>> 8);
    }

    @Override
    public long read(long offset, int size) {
        if (offset != 1) {
            return 0xff;
        }
        synchronized (this) {
            return readRegister(index);
        }
    }

    @Override
    public void write(long offset, int size, long value) {
        int v = (int) (value & 0xff);
        synchronized (this) {
            if (offset == 0) {
                index = v & 0x7f;
            } else if (offset == 1) {
                writeRegister(index, v);
            }
        }
    }

    // ---- registers -------------------------------------------------------------------------

    private int readRegister(int reg) {
        return switch (reg) {
            case SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY -> readTime(reg);
            case STATUS_A -> ram[STATUS_A] & 0x7f;
            case STATUS_C -> 0;
            case STATUS_D -> 0x80;
            default -> ram[reg] & 0xff;
        };
    }

    private void writeRegister(int reg, int v) {
        switch (reg) {
            case SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY -> writeTime(reg, v);
            case STATUS_A -> ram[STATUS_A] = (byte) (v & 0x7f);
            case STATUS_B -> {
                boolean wasSet = (ram[STATUS_B] & B_SET) != 0, set = (v & B_SET) != 0;
                if (set && !wasSet) {
                    pending = fields(guestNow());
                } else if (!set && wasSet && pending != null) {
                    commit(pending);
                    pending = null;
                }
                ram[STATUS_B] = (byte) v;
            }
            case STATUS_C, STATUS_D -> { }   // read-only
            default -> ram[reg] = (byte) v;
        }
    }

    private boolean binary() {
        return (ram[STATUS_B] & B_BINARY) != 0;
    }

    private boolean twentyFourHour() {
        return (ram[STATUS_B] & B_24H) != 0;
    }

    private int encode(int value) {
        return binary() ? value : (value / 10) << 4 | value % 10;
    }

    private int decode(int value) {
        return binary() ? value : (value >> 4) * 10 + (value & 0x0f);
    }

    private long hostSeconds() {
        return Math.floorDiv(clock.millis(), 1000);
    }

    private LocalDateTime guestNow() {
        return LocalDateTime.ofEpochSecond(hostSeconds() + offsetSeconds, 0, ZoneOffset.UTC);
    }

    /** {seconds, minutes, hours, day of month, month, year} of {@code t}. */
    private static int[] fields(LocalDateTime t) {
        return new int[] {t.getSecond(), t.getMinute(), t.getHour(), t.getDayOfMonth(), t.getMonthValue(), t.getYear()};
    }

    /** The time {@code f} names, an impossible day of month clamped to the month's last day. */
    private static LocalDateTime toTime(int[] f) {
        int day = Math.min(f[3], YearMonth.of(f[5], f[4]).lengthOfMonth());
        return LocalDateTime.of(f[5], f[4], day, f[2], f[1], f[0]);
    }

    private int readTime(int reg) {
        LocalDateTime t = pending != null ? toTime(pending) : guestNow();
        return switch (reg) {
            case SECONDS -> encode(t.getSecond());
            case MINUTES -> encode(t.getMinute());
            case HOURS -> {
                int h = t.getHour();
                if (twentyFourHour()) {
                    yield encode(h);
                }
                int h12 = h % 12 == 0 ? 12 : h % 12;
                yield encode(h12) | (h >= 12 ? 0x80 : 0);
            }
            case DAY_OF_WEEK -> encode(t.getDayOfWeek().getValue() % 7 + 1);   // Sunday = 1
            case DAY_OF_MONTH -> encode(t.getDayOfMonth());
            case MONTH -> encode(t.getMonthValue());
            case YEAR -> encode(t.getYear() % 100);
            default -> encode(t.getYear() / 100);                              // CENTURY
        };
    }

    private void writeTime(int reg, int v) {
        int[] f = pending != null ? pending : fields(guestNow());
        switch (reg) {
            case SECONDS -> f[0] = clamp(decode(v), 0, 59);
            case MINUTES -> f[1] = clamp(decode(v), 0, 59);
            case HOURS -> {
                if (twentyFourHour()) {
                    f[2] = clamp(decode(v), 0, 23);
                } else {
                    f[2] = clamp(decode(v & 0x7f), 1, 12) % 12 + ((v & 0x80) != 0 ? 12 : 0);
                }
            }
            case DAY_OF_WEEK -> {
                return;                     // derived from the date
            }
            case DAY_OF_MONTH -> f[3] = clamp(decode(v), 1, 31);
            case MONTH -> f[4] = clamp(decode(v), 1, 12);
            case YEAR -> f[5] = f[5] / 100 * 100 + clamp(decode(v), 0, 99);
            default -> f[5] = clamp(decode(v), 0, 99) * 100 + f[5] % 100;      // CENTURY
        }
        if (pending == null) {
            commit(f);
        }
    }

    private void commit(int[] f) {
        offsetSeconds = toTime(f).toEpochSecond(ZoneOffset.UTC) - hostSeconds();
    }

    private static int clamp(int v, int min, int max) {
        return Math.max(min, Math.min(max, v));
    }

    // ---- snapshot state ----

    private static final int STATE_VERSION = 1;

    /** The RAM and index, the guest's clock as an offset from the host's, a time being set (version 1). */
    @Override
    public synchronized byte[] saveState() {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 + ram.length + 4 + 8 + 1 + 6 * 4);
        b.put((byte) STATE_VERSION).put(ram).putInt(index).putLong(offsetSeconds).put((byte) (pending == null ? 0 : 1));
        for (int i = 0; i < 6; i++) b.putInt(pending == null ? 0 : pending[i]);
        return b.array();
    }

    @Override
    public void loadState(byte[] state) {
        byte[] r = new byte[128];
        int[] idx = new int[1];
        long[] off = new long[1];
        int[] p = new int[6];
        boolean[] hasPending = new boolean[1];
        dev.jvmm.device.DeviceState.read("rtc", state, STATE_VERSION, b -> {
            b.get(r);
            idx[0] = b.getInt();
            off[0] = b.getLong();
            hasPending[0] = dev.jvmm.device.DeviceState.check("rtc", "pending flag", b.get(), 0, 1) == 1;
            for (int i = 0; i < 6; i++) p[i] = b.getInt();
        });
        dev.jvmm.device.DeviceState.check("rtc", "index", idx[0], 0, 0x7f);
        // at most 10,000 years either way: a hostile offset must not overflow the clock arithmetic
        if (Math.abs(off[0]) > 10_000L * 366 * 86_400) throw new IllegalArgumentException("rtc: clock offset " + off[0] + " s is out of range");
        if (hasPending[0]) {
            try {
                toTime(p);
            } catch (java.time.DateTimeException e) {
                throw new IllegalArgumentException("rtc: the time being set is not a time: " + e.getMessage());
            }
        }
        synchronized (this) {
            System.arraycopy(r, 0, ram, 0, ram.length);
            index = idx[0];
            offsetSeconds = off[0];
            pending = hasPending[0] ? p : null;
        }
    }
}
