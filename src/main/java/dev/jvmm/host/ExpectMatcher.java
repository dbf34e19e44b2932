package dev.jvmm.host;

import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

/**
 * Watches the console output, line by line, for a regular expression (--expect, --fail-on, a kernel
 * panic), on the console's writer thread, never on the vCPU exit path. A line is matched when it is
 * complete and, unless only whole lines are wanted, also while it is still being written (so a prompt
 * without a newline matches too). Lines longer than {@link #MAX_LINE} are matched by their last
 * {@code MAX_LINE} characters.
 */
public final class ExpectMatcher {
    static final int MAX_LINE = 16 * 1024;

    private final Pattern pattern;
    private final java.util.function.Consumer<String> onMatch;
    private final StringBuilder line = new StringBuilder();
    private final boolean wholeLines;
    private boolean matched;

    /** Matches lines, complete or still being written (--expect). */
    public ExpectMatcher(Pattern pattern, Runnable onMatch) {
        this(pattern, false, line -> onMatch.run());
    }

    /**
     * @param wholeLines match complete lines only (a report is named by its whole line)
     * @param onMatch    gets the matching line (its last {@link #MAX_LINE} characters)
     */
    public ExpectMatcher(Pattern pattern, boolean wholeLines, java.util.function.Consumer<String> onMatch) {
        this.pattern = pattern;
        this.wholeLines = wholeLines;
        this.onMatch = onMatch;
    }

    /** Feeds bytes just written to the console. */
    public void accept(byte[] buf, int off, int len) {
        if (matched) return;
        String text = new String(buf, off, len, StandardCharsets.ISO_8859_1);
        int start = 0;
        for (int nl; (nl = text.indexOf('\n', start)) >= 0; start = nl + 1) {
            append(text, start, nl);
            if (test()) return;
            line.setLength(0);
        }
        append(text, start, text.length());
        if (!wholeLines) test();
    }

    private void append(String text, int from, int to) {
        line.append(text, from, to);
        if (line.length() > MAX_LINE) line.delete(0, line.length() - MAX_LINE);
        int cr = line.length() - 1;
        if (cr >= 0 && line.charAt(cr) == '\r') line.setLength(cr);
    }

    private boolean test() {
        if (!matched && pattern.matcher(line).find()) {
            matched = true;
            onMatch.accept(line.toString());
        }
        return matched;
    }

    public boolean matched() {
        return matched;
    }
}
