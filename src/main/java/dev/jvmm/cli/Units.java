package dev.jvmm.cli;

import java.time.Duration;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Parsing of sizes ("512M") and durations ("2s"), with messages fit for one line on stderr. */
public final class Units {
    private Units() { }

    private static final Pattern SIZE = Pattern.compile("(\\d{1,19})([KMGT]?)(i?B)?", Pattern.CASE_INSENSITIVE);
    private static final Pattern DURATION = Pattern.compile("(\\d{1,12})(ms|s|m|h)?");

    /** "64K", "512M", "2G", "1T"; a bare number means MiB, as in QEMU's -m. */
    public static long parseSize(String text) {
        Matcher m = SIZE.matcher(text.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException("invalid size '" + text + "': use a number with K, M, G or T, e.g. 512M");
        }
        int shift = switch (m.group(2).toUpperCase(Locale.ROOT)) {
            case "K" -> 10;
            case "", "M" -> 20;
            case "G" -> 30;
            case "T" -> 40;
            default -> throw new IllegalArgumentException("invalid size '" + text + "'");
        };
        long n;
        try {
            n = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("size '" + text + "' is too large");
        }
        if (n > (Long.MAX_VALUE >> shift)) throw new IllegalArgumentException("size '" + text + "' is too large");
        return n << shift;
    }

    /** "500ms", "2s", "1m", "1h"; a bare number means seconds, as in timeout(1). */
    public static Duration parseDuration(String text) {
        Matcher m = DURATION.matcher(text.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException("invalid duration '" + text + "': use a number with ms, s, m or h, e.g. 30s");
        }
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "s" : m.group(2);
        return switch (unit) {
            case "ms" -> Duration.ofMillis(n);
            case "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            default -> Duration.ofHours(n);
        };
    }

    /** "512M", "1G", "64K" or a byte count: the shortest exact spelling. */
    public static String formatSize(long bytes) {
        if (bytes > 0 && bytes % (1L << 30) == 0) return (bytes >> 30) + "G";
        if (bytes > 0 && bytes % (1L << 20) == 0) return (bytes >> 20) + "M";
        if (bytes > 0 && bytes % (1L << 10) == 0) return (bytes >> 10) + "K";
        return bytes + " bytes";
    }
}
