package dev.jvmm.vmm;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One control-socket request, parsed from one line of JSON: {@code {"request": "stop", "status": 3}}.
 * Every request may carry an {@code id} (a string, a number or null), which its reply repeats; other
 * fields are the request's arguments, and a field a request does not take is an error, as is a
 * wrong type or range.
 *
 * @param name  the request: info, stats, pause, resume, stop or snapshot
 * @param id    the request's id (String, Number or null), or null when it had none
 * @param args  the request's arguments, checked
 */
public record ApiRequest(String name, Object id, Map<String, Object> args) {
    /** The requests and the arguments each takes. */
    static final Map<String, List<String>> REQUESTS = orderedRequests();

    private static Map<String, List<String>> orderedRequests() {
        Map<String, List<String>> m = new LinkedHashMap<>();
        m.put("info", List.of());
        m.put("stats", List.of());
        m.put("pause", List.of());
        m.put("resume", List.of("advance_clock"));
        m.put("stop", List.of("status"));
        m.put("snapshot", List.of("dir"));
        return java.util.Collections.unmodifiableMap(m);
    }

    /** A request that gets an error reply: a machine-readable code and a one-line message. */
    public static final class Error extends Exception {
        private final String code;
        private final Object id;

        Error(String code, String message, Object id) {
            super(message, null, false, false);
            this.code = code;
            this.id = id;
        }

        public String code() {
            return code;
        }

        /** The id of the request, when it could be read. */
        public Object id() {
            return id;
        }
    }

    /**
     * Parses one request line (without its newline).
     * @throws Error malformed_json, not_an_object, missing_request, unknown_request or bad_argument
     */
    public static ApiRequest parse(String line) throws Error {
        Map<String, Object> m;
        try {
            m = Json.object(line);
        } catch (IllegalArgumentException e) {
            boolean notObject = "not a JSON object".equals(e.getMessage());
            throw new Error(notObject ? "not_an_object" : "malformed_json",
                    notObject ? "a request is a JSON object, e.g. {\"request\": \"info\"}" : e.getMessage(), null);
        }
        Object id = m.get("id");
        if (id != null && !(id instanceof String) && !(id instanceof Number)) {
            throw new Error("bad_argument", "id must be a string or a number", null);
        }
        Object name = m.get("request");
        if (name == null) throw new Error("missing_request", "no \"request\" field; requests: " + String.join(", ", REQUESTS.keySet()), id);
        if (!(name instanceof String s)) throw new Error("bad_argument", "\"request\" must be a string", id);
        List<String> allowed = REQUESTS.get(s);
        if (allowed == null) {
            throw new Error("unknown_request", "unknown request '" + clip(s) + "'; requests: " + String.join(", ", REQUESTS.keySet()), id);
        }
        Map<String, Object> args = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : m.entrySet()) {
            String k = e.getKey();
            if (k.equals("request") || k.equals("id")) continue;
            if (!allowed.contains(k)) {
                throw new Error("bad_argument", s + " takes " + (allowed.isEmpty() ? "no arguments" : "only " + String.join(", ", allowed))
                        + ", not '" + clip(k) + "'", id);
            }
            args.put(k, e.getValue());
        }
        switch (s) {
            case "stop" -> {
                Object st = args.getOrDefault("status", 0);
                if (!(st instanceof Integer || st instanceof Long) || ((Number) st).longValue() < 0 || ((Number) st).longValue() > 255) {
                    throw new Error("bad_argument", "stop's status must be a whole number from 0 to 255", id);
                }
                args.put("status", ((Number) st).intValue());
            }
            case "snapshot" -> {
                Object d = args.get("dir");
                if (!(d instanceof String dir) || dir.isEmpty() || dir.indexOf('\0') >= 0) {
                    throw new Error("bad_argument", "snapshot needs dir, the directory to write (absolute, empty or not there yet)", id);
                }
            }
            case "resume" -> {
                Object a = args.getOrDefault("advance_clock", false);
                if (!(a instanceof Boolean)) throw new Error("bad_argument", "resume's advance_clock must be true or false", id);
                args.put("advance_clock", a);
            }
            default -> { }
        }
        return new ApiRequest(s, id, args);
    }

    /**
     * The request line {@code jvmm ctl} sends for {@code REQUEST [KEY=VALUE...]}: a VALUE of true,
     * false, null or a whole number is sent as that JSON value, anything else as a string. A REQUEST
     * starting with '{' is sent as it is (one line of JSON of the caller's own).
     * @throws IllegalArgumentException for an argument without '=' or a line with a newline in it
     */
    public static String line(String request, List<String> args) {
        if (request.startsWith("{")) {
            if (!args.isEmpty()) throw new IllegalArgumentException("a request given as JSON takes no KEY=VALUE arguments");
            if (request.indexOf('\n') >= 0) throw new IllegalArgumentException("a request is one line");
            return request;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("request", request);
        for (String a : args) {
            int eq = a.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("argument '" + a + "' is not KEY=VALUE");
            String k = a.substring(0, eq), v = a.substring(eq + 1);
            if (k.equals("request")) throw new IllegalArgumentException("the request is given as REQUEST, not request=");
            m.put(k, value(v));
        }
        return Json.line(m);
    }

    private static Object value(String v) {
        return switch (v) {
            case "true" -> Boolean.TRUE;
            case "false" -> Boolean.FALSE;
            case "null" -> null;
            default -> {
                if (v.matches("-?[0-9]{1,18}")) yield Long.parseLong(v);
                yield v;
            }
        };
    }

    /** At most 64 characters of what a client sent, for an error message. */
    static String clip(String s) {
        return s.length() <= 64 ? s : s.substring(0, 64) + "...";
    }

    /** The start of every reply: {@code ok}, the request's name and id (when known). */
    static Map<String, Object> reply(boolean ok, String request, Object id) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", ok);
        if (request != null) m.put("request", request);
        if (id != null) m.put("id", id);
        return m;
    }

    /** An error reply: {@code {"ok": false, "error": CODE, "message": TEXT}}. */
    static Map<String, Object> error(String request, Object id, String code, String message) {
        Map<String, Object> m = reply(false, request, id);
        m.put("error", code);
        m.put("message", message);
        return m;
    }
}
