package dev.jvmm.device.legacy;

import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;

import static org.junit.jupiter.api.Assertions.assertEquals;

class CmosRtcTest {
    private static final long MIB = 1L << 20, GIB = 1L << 30;

    /** A clock the test moves. */
    static final class TestClock extends Clock {
        Instant instant;

        TestClock(String iso) {
            instant = Instant.parse(iso);
        }

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return instant;
        }
    }

    // Saturday, 9 March 2024, 21:05:07 UTC
    private final TestClock clock = new TestClock("2024-03-09T21:05:07.600Z");
    private final CmosRtc rtc = new CmosRtc(256 * MIB, clock);

    private static int read(CmosRtc rtc, int reg) {
        rtc.write(0, 1, reg);
        return (int) rtc.read(1, 1);
    }

    private int read(int reg) {
        return read(rtc, reg);
    }

    private void write(int reg, int value) {
        rtc.write(0, 1, reg);
        rtc.write(1, 1, value);
    }

    /** The seconds, minutes, hours, day of the month, month, year and century registers, as the guest reads them at {@code when}. */
    private void assertDateAndTime(String when, int seconds, int minutes, int hours, int day, int month, int year, int century) {
        assertEquals(seconds, read(0x00), when);
        assertEquals(minutes, read(0x02), when);
        assertEquals(hours, read(0x04), when);
        assertEquals(day, read(0x07), when);
        assertEquals(month, read(0x08), when);
        assertEquals(year, read(0x09), when);
        assertEquals(century, read(0x32), when);
    }

    @Test
    void defaultsAreBcdAnd24Hour() {
        assertEquals(0x02, read(0x0b));
        assertDateAndTime("2024-03-09 21:05:07, BCD", 0x07, 0x05, 0x21, 0x09, 0x03, 0x24, 0x20);
        assertEquals(7, read(0x06), "Saturday; Sunday is 1");
    }

    @Test
    void binaryMode() {
        write(0x0b, 0x06);
        assertDateAndTime("2024-03-09 21:05:07, binary", 7, 5, 21, 9, 3, 24, 20);
    }

    @Test
    void twelveHourMode() {
        write(0x0b, 0x00);                    // BCD, 12-hour
        assertEquals(0x80 | 0x09, read(0x04), "9 PM");
        write(0x0b, 0x04);                    // binary, 12-hour
        assertEquals(0x80 | 9, read(0x04));

        clock.instant = Instant.parse("2024-03-09T00:30:00Z");
        write(0x0b, 0x00);
        assertEquals(0x12, read(0x04), "half past midnight is 12 AM");
        clock.instant = Instant.parse("2024-03-09T12:30:00Z");
        assertEquals(0x80 | 0x12, read(0x04), "half past noon is 12 PM");
        clock.instant = Instant.parse("2024-03-09T11:30:00Z");
        assertEquals(0x11, read(0x04));
    }

    @Test
    void nmiBitOfTheIndexIsIgnored() {
        rtc.write(0, 1, 0x80 | 0x09);
        assertEquals(0x24, rtc.read(1, 1));
        assertEquals(0xff, rtc.read(0, 1), "index port is write-only");
    }

    @Test
    void statusRegisters() {
        assertEquals(0x26, read(0x0a));
        write(0x0a, 0xa6);
        assertEquals(0x26, read(0x0a), "UIP always reads 0");
        write(0x0a, 0x2f);
        assertEquals(0x2f, read(0x0a), "divider and rate are stored");
        assertEquals(0, read(0x0c));
        write(0x0c, 0xff);
        assertEquals(0, read(0x0c));
        assertEquals(0x80, read(0x0d));
        write(0x0d, 0);
        assertEquals(0x80, read(0x0d));
    }

    @Test
    void ramIsStorage() {
        write(0x40, 0x5a);
        write(0x7f, 0xa5);
        write(0x01, 0x33);                    // alarm seconds
        assertEquals(0x5a, read(0x40));
        assertEquals(0xa5, read(0x7f));
        assertEquals(0x33, read(0x01));
    }

    private static int word(CmosRtc rtc, int reg) {
        return read(rtc, reg) | read(rtc, reg + 1) << 8;
    }

    @Test
    void memorySize64M() {
        CmosRtc c = new CmosRtc(64 * MIB, clock);
        assertEquals(640, word(c, 0x15));
        assertEquals(63 * 1024, word(c, 0x17));
        assertEquals(63 * 1024, word(c, 0x30));
        assertEquals(48 * 16, word(c, 0x34), "48 MiB above 16 MiB in 64 KiB units");
        assertEquals(0, word(c, 0x5b));
        assertEquals(0, read(c, 0x5d));
    }

    @Test
    void memorySizeSmall() {
        CmosRtc c = new CmosRtc(8 * MIB, clock);
        assertEquals(7 * 1024, word(c, 0x17));
        assertEquals(7 * 1024, word(c, 0x30));
        assertEquals(0, word(c, 0x34));
    }

    @Test
    void memorySize3G() {
        CmosRtc c = new CmosRtc(3 * GIB, clock);
        assertEquals(640, word(c, 0x15));
        assertEquals(0xfc00, word(c, 0x17));
        assertEquals(0xfc00, word(c, 0x30));
        assertEquals((int) ((3 * GIB - 16 * MIB) >> 16), word(c, 0x34));
        assertEquals(0xbf00, word(c, 0x34));
        assertEquals(0, word(c, 0x5b));
        assertEquals(0, read(c, 0x5d));
    }

    @Test
    void memorySize5G() {
        CmosRtc c = new CmosRtc(5 * GIB, clock);   // 3 GiB below the hole, 2 GiB from 4 GiB
        assertEquals(0xfc00, word(c, 0x17));
        assertEquals(0xbf00, word(c, 0x34));
        assertEquals(0x00, read(c, 0x5b));
        assertEquals(0x80, read(c, 0x5c));
        assertEquals(0x00, read(c, 0x5d));
        CmosRtc big = new CmosRtc(3 * GIB + 512 * GIB, clock);
        assertEquals(0x80, read(big, 0x5d), "512 GiB above 4 GiB = 0x800000 units");
        CmosRtc huge = new CmosRtc(3 * GIB + 2048 * GIB, clock);
        assertEquals(0xffff, word(huge, 0x5b), "capped at 24 bits");
        assertEquals(0xff, read(huge, 0x5d));
    }

    @Test
    void guestWriteKeepsAnOffsetFromTheHostClock() {
        write(0x09, 0x30);                    // year 2030
        assertEquals(0x30, read(0x09));
        assertEquals(0x20, read(0x32));
        assertEquals(0x07, read(0x00));
        clock.instant = clock.instant.plusSeconds(10);
        assertEquals(0x17, read(0x00), "the set clock runs on");
        assertEquals(0x30, read(0x09));
        write(0x04, 0x08);                    // 08 h
        assertEquals(0x08, read(0x04));
        assertEquals(0x05, read(0x02));
        clock.instant = clock.instant.plusSeconds(3600);
        assertEquals(0x09, read(0x04));
        assertEquals(0x30, read(0x09));
    }

    @Test
    void writesUnderSetApplyTogether() {
        write(0x0b, 0x86);                    // SET, binary, 24-hour
        write(0x09, 24);
        write(0x08, 1);
        write(0x07, 31);
        write(0x08, 2);                       // 31 February while SET: kept as written for now
        write(0x07, 29);                      // 29 February 2024 is valid
        write(0x04, 23);
        write(0x02, 59);
        write(0x00, 50);
        clock.instant = clock.instant.plusSeconds(100);
        assertEquals(50, read(0x00), "the time does not advance while SET");
        write(0x0b, 0x06);                    // release SET
        assertEquals(29, read(0x07));
        assertEquals(2, read(0x08));
        assertEquals(5, read(0x06), "29 Feb 2024 is a Thursday");
        clock.instant = clock.instant.plusSeconds(15);
        assertDateAndTime("1 March 2024 00:00:05", 5, 0, 0, 1, 3, 24, 20);
    }

    @Test
    void twelveHourWrites() {
        write(0x0b, 0x00);                    // BCD, 12-hour
        write(0x04, 0x80 | 0x12);             // 12 PM
        write(0x0b, 0x02);
        assertEquals(0x12, read(0x04));
        write(0x0b, 0x00);
        write(0x04, 0x12);                    // 12 AM
        write(0x0b, 0x02);
        assertEquals(0x00, read(0x04));
    }
}
