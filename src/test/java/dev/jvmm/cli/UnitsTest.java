package dev.jvmm.cli;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class UnitsTest {
    @Test
    void sizes() {
        assertEquals(64L << 10, Units.parseSize("64K"));
        assertEquals(512L << 20, Units.parseSize("512M"));
        assertEquals(512L << 20, Units.parseSize("512m"));
        assertEquals(2L << 30, Units.parseSize("2G"));
        assertEquals(2L << 30, Units.parseSize("2GiB"));
        assertEquals(128L << 20, Units.parseSize("128"), "a bare number is MiB");
        assertEquals(0, Units.parseSize("0"));
    }

    @Test
    void badSizes() {
        for (String s : new String[] {"12Q", "", "M", "-1M", "1.5G", "99999999999999999999G"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Units.parseSize(s), s);
            assertTrue(e.getMessage().contains("size"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Units.parseSize("9000000000T"));
    }

    @Test
    void durations() {
        assertEquals(Duration.ofMillis(500), Units.parseDuration("500ms"));
        assertEquals(Duration.ofSeconds(2), Units.parseDuration("2s"));
        assertEquals(Duration.ofSeconds(7), Units.parseDuration("7"));
        assertEquals(Duration.ofMinutes(3), Units.parseDuration("3m"));
        assertEquals(Duration.ofHours(1), Units.parseDuration("1h"));
        assertThrows(IllegalArgumentException.class, () -> Units.parseDuration("2 weeks"));
        assertThrows(IllegalArgumentException.class, () -> Units.parseDuration("1.5s"));
    }

    @Test
    void formatting() {
        assertEquals("2G", Units.formatSize(2L << 30));
        assertEquals("1536M", Units.formatSize(1536L << 20));
        assertEquals("3K", Units.formatSize(3072));
        assertEquals("1000 bytes", Units.formatSize(1000));
    }
}
