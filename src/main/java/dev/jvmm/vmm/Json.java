package dev.jvmm.vmm;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.jr.ob.JSON;
import com.fasterxml.jackson.jr.ob.JacksonJrExtension;
import com.fasterxml.jackson.jr.ob.api.ExtensionContext;
import com.fasterxml.jackson.jr.ob.api.ReaderWriterProvider;
import com.fasterxml.jackson.jr.ob.api.ValueWriter;
import com.fasterxml.jackson.jr.ob.impl.JSONWriter;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * jvmm's JSON: jackson-jr (a few dozen small classes, no reflection-heavy start-up), one compact and
 * one pretty-printed writer. Used for --stats-json, the control socket and the snapshot's config.
 */
public final class Json {
    private Json() { }

    /**
     * A number written as exactly this decimal text ({@code 81.945}, {@code 0.000}): fixed decimals
     * without {@link java.math.BigDecimal}, whose class initialisation (tables of powers of ten, built
     * with BigInteger in the interpreter) was about a fifth of a trivial run with --stats-json in a
     * profile of 2026-12-04. A reader gets an ordinary JSON number.
     */
    public record Decimal(String text) {
        /** @throws IllegalArgumentException if {@code text} is not a finite JSON number (it is written as it is) */
        public Decimal {
            if (!isNumber(text)) throw new IllegalArgumentException("not a finite JSON number: " + text);
        }

        /**
         * {@code value} with {@code digits} decimals (0 to 9), rounded half up.
         * @throws IllegalArgumentException for NaN or an infinity, which JSON has no number for
         */
        public static Decimal of(double value, int digits) {
            return new Decimal(format(value, digits));
        }

        /** -?D+(.D+)?(E-?D+)? with D a digit: what {@link #format} writes for a finite value. */
        static boolean isNumber(String t) {
            int i = 0, n = t.length();
            if (i < n && t.charAt(i) == '-') i++;
            int start = i;
            while (i < n && Character.isDigit(t.charAt(i))) i++;
            if (i == start) return false;
            if (i < n && t.charAt(i) == '.') {
                start = ++i;
                while (i < n && Character.isDigit(t.charAt(i))) i++;
                if (i == start) return false;
            }
            if (i < n && t.charAt(i) == 'E') {
                if (++i < n && t.charAt(i) == '-') i++;
                start = i;
                while (i < n && Character.isDigit(t.charAt(i))) i++;
                if (i == start) return false;
            }
            return i == n;
        }

        private static final long[] POWERS_OF_TEN = {1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000};

        /**
         * {@code value} with {@code digits} decimals (0 to 9), rounded half up on its magnitude: what
         * {@code %.Nf} prints, without a Formatter or BigDecimal. Values too large for fixed point here
         * (beyond 10^9, never a timing) and non-finite ones are written as Double.toString writes them.
         * Here, not in Json itself, so that text output (--stats) does not set up the JSON writers.
         */
        public static String format(double value, int digits) {
            if (digits < 0 || digits >= POWERS_OF_TEN.length) throw new IllegalArgumentException("digits " + digits);
            if (!Double.isFinite(value) || Math.abs(value) >= 1e9) return Double.toString(value);
            long scale = POWERS_OF_TEN[digits];
            long units = Math.round(Math.abs(value) * scale);
            StringBuilder sb = new StringBuilder(24);
            if (value < 0 && units != 0) sb.append('-');
            sb.append(units / scale);
            if (digits > 0) {
                String fraction = Long.toString(units % scale);
                sb.append('.').repeat('0', digits - fraction.length()).append(fraction);
            }
            return sb.toString();
        }

        @Override
        public String toString() {
            return text;
        }
    }

    /** Writes a {@link Decimal} as a bare JSON number. */
    private static final JacksonJrExtension DECIMALS = new JacksonJrExtension() {
        @Override
        protected void register(ExtensionContext context) {
            ValueWriter writer = new ValueWriter() {
                @Override
                public void writeValue(JSONWriter json, JsonGenerator g, Object value) throws IOException {
                    g.writeNumber(((Decimal) value).text());
                }

                @Override
                public Class<?> valueType() {
                    return Decimal.class;
                }
            };
            context.insertProvider(new ReaderWriterProvider() {
                @Override
                public ValueWriter findValueWriter(JSONWriter json, Class<?> type) {
                    return type == Decimal.class ? writer : null;
                }
            });
        }
    };

    /** One object per line (the control socket's replies). */
    public static final JSON COMPACT = JSON.builder().register(DECIMALS).build();
    /** Indented, for files a person reads (--stats-json). */
    public static final JSON PRETTY = COMPACT.with(JSON.Feature.PRETTY_PRINT_OUTPUT);

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
