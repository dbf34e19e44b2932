package dev.jvmm.loader;

import org.junit.jupiter.api.Test;

import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The names the loader writes by hand instead of with String.format (start-up cost): as %02d and %08x would. */
class FormattedNamesTest {
    @Test
    void bootProtocolVersionsHaveTwoMinorDigits() {
        assertEquals("2.06", BzImageHeader.protocol(0x0206));
        assertEquals("2.15", BzImageHeader.protocol(0x020f));
        assertEquals("10.00", BzImageHeader.protocol(0x0a00));
    }

    @Test
    void aCacheKeyHoldsTwoEightDigitChecksums() {
        String key = KernelCache.key(new byte[] {1, 2, 3, 4, 5}, 1, 3);
        assertTrue(Pattern.matches("v\\d+-3-[0-9a-f]{16}", key), key);
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(new byte[] {2, 3, 4});
        java.util.zip.CRC32 d = new java.util.zip.CRC32();
        d.update(new byte[] {2, 3, 4});
        assertTrue(key.endsWith(String.format("%08x%08x", c.getValue(), d.getValue())), key);
    }
}
