package dev.jvmm.vmm;

import com.fasterxml.jackson.jr.ob.JSON;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * jvmm's JSON: jackson-jr (a few dozen small classes, no reflection-heavy start-up), one compact and
 * one pretty-printed writer. Used for --stats-json, the control socket and the snapshot's config.
 */
public final class Json {
    private Json() { }

    /** One object per line (the control socket's replies). */
    public static final JSON COMPACT = JSON.std;
    /** Indented, for files a person reads (--stats-json). */
    public static final JSON PRETTY = JSON.std.with(JSON.Feature.PRETTY_PRINT_OUTPUT);

    /** An object with these members in this order: {@code keysAndValues} is key, value, key, value... (values may be null). */
    public static Map<String, Object> fields(Object... keysAndValues) {
        if (keysAndValues.length % 2 != 0) throw new IllegalArgumentException("a key without a value");
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        return m;
    }

    /** {@code value} as one line of JSON. */
    public static String line(Object value) {
        try {
            return COMPACT.asString(value);
        } catch (IOException e) {
            throw new IllegalStateException("cannot write JSON: " + e.getMessage(), e);
        }
    }

    /**
     * Parses {@code text} as one JSON object.
     * @throws IllegalArgumentException with a one-line reason when it is not valid JSON or not an object
     */
    public static Map<String, Object> object(String text) {
        Object v;
        try {
            v = COMPACT.anyFrom(text);
        } catch (IOException | RuntimeException e) {
            String m = String.valueOf(e.getMessage());
            int nl = m.indexOf('\n');
            throw new IllegalArgumentException("not valid JSON: " + (nl < 0 ? m : m.substring(0, nl)));
        }
        if (!(v instanceof Map<?, ?> map)) throw new IllegalArgumentException("not a JSON object");
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) map;
        return m;
    }
}
