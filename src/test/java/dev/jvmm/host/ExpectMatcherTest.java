package dev.jvmm.host;

import dev.jvmm.cli.LinuxKernels;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ExpectMatcherTest {
    private static void feed(ExpectMatcher m, String s) {
        byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
        m.accept(b, 0, b.length);
    }

    @Test
    void matchesALineSplitAcrossWritesOnce() {
        AtomicInteger hits = new AtomicInteger();
        ExpectMatcher m = new ExpectMatcher(Pattern.compile("^login: $"), hits::incrementAndGet);
        feed(m, "booting\r\nlog");
        assertFalse(m.matched());
        feed(m, "in: ");
        assertTrue(m.matched(), "a prompt without newline matches while being written");
        feed(m, "\nlogin: \n");
        assertEquals(1, hits.get());
    }

    @Test
    void doesNotMatchAcrossLines() {
        ExpectMatcher m = new ExpectMatcher(Pattern.compile("a\nb"), () -> { });
        feed(m, "a\nb\n");
        assertFalse(m.matched());
    }

    @Test
    void carriageReturnsAreNotPartOfTheLine() {
        ExpectMatcher m = new ExpectMatcher(Pattern.compile("ready$"), () -> { });
        feed(m, "ready\r\n");
        assertTrue(m.matched());
    }

    @Test
    void veryLongLinesKeepTheirTail() {
        ExpectMatcher m = new ExpectMatcher(Pattern.compile("END"), () -> { });
        feed(m, "x".repeat(ExpectMatcher.MAX_LINE * 3));
        feed(m, "END");
        assertTrue(m.matched());
    }
}
