package dev.jvmm.vmm;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The control socket's request lines: what parses, what each bad line's error code is, and jvmm ctl's lines. */
class ApiRequestTest {
    private static String code(String line) {
        return assertThrows(ApiRequest.Error.class, () -> ApiRequest.parse(line), line).code();
    }

    /** Each of {@code lines} is refused with the error code {@code expected}. */
    private static void assertCodes(String expected, String... lines) {
        for (String line : lines) assertEquals(expected, code(line), line);
    }

    @Test
    void everyRequestParsesWithItsDefaults() throws ApiRequest.Error {
        for (String name : List.of("info", "stats", "pause")) {
            ApiRequest r = ApiRequest.parse("{\"request\": \"" + name + "\"}");
            assertEquals(name, r.name());
            assertNull(r.id());
            assertEquals(Map.of(), r.args());
        }
        assertEquals(Map.of("advance_clock", false), ApiRequest.parse("{\"request\":\"resume\"}").args());
        assertEquals(Map.of("advance_clock", true), ApiRequest.parse("{\"request\":\"resume\",\"advance_clock\":true}").args());
        assertEquals(Map.of("status", 0), ApiRequest.parse("{\"request\":\"stop\"}").args());
        assertEquals(Map.of("dir", "/tmp/s"), ApiRequest.parse("{\"request\":\"snapshot\",\"dir\":\"/tmp/s\"}").args());
        assertEquals(Map.of("status", 255), ApiRequest.parse("{\"status\": 255, \"request\": \"stop\"}").args());
    }

    @Test
    void theIdIsKeptForTheReply() throws ApiRequest.Error {
        assertEquals("a-1", ApiRequest.parse("{\"request\":\"info\",\"id\":\"a-1\"}").id());
        assertEquals(7, ((Number) ApiRequest.parse("{\"request\":\"info\",\"id\":7}").id()).intValue());
        ApiRequest.Error e = assertThrows(ApiRequest.Error.class, () -> ApiRequest.parse("{\"request\":\"nope\",\"id\":\"x\"}"));
        assertEquals("x", e.id(), "an error reply repeats the id too");
        assertEquals("bad_argument", code("{\"request\":\"info\",\"id\":[1]}"));
        assertEquals("bad_argument", code("{\"request\":\"info\",\"id\":{\"a\":1}}"));
    }

    @Test
    void malformedLinesGetTheirOwnCodes() {
        assertCodes("malformed_json",
                "not json",
                "{\"request\": \"info\"",
                "{request: info}",
                "\u0000\u0001\u00ff");
        assertCodes("not_an_object",
                "[1, 2]",
                "42",
                "\"info\"",
                "null");
        assertCodes("missing_request",
                "{}",
                "{\"id\": 1}");
        assertCodes("bad_argument",
                "{\"request\": 42}",
                "{\"request\": null}".replace("null", "[\"info\"]"));
        assertCodes("unknown_request",
                "{\"request\": \"reboot\"}",
                "{\"request\": \"INFO\"}");
    }

    @Test
    void argumentsAreChecked() {
        assertCodes("bad_argument",
                "{\"request\":\"info\",\"verbose\":true}",
                "{\"request\":\"pause\",\"status\":1}",
                "{\"request\":\"stop\",\"status\":256}",
                "{\"request\":\"stop\",\"status\":-1}",
                "{\"request\":\"stop\",\"status\":1.5}",
                "{\"request\":\"stop\",\"status\":\"3\"}",
                "{\"request\":\"stop\",\"status\":99999999999999999999999}",
                "{\"request\":\"resume\",\"advance_clock\":\"yes\"}",
                "{\"request\":\"snapshot\"}",
                "{\"request\":\"snapshot\",\"dir\":7}",
                "{\"request\":\"snapshot\",\"dir\":\"\"}");
    }

    @Test
    void aHostileLineIsAnErrorNotACrash() {
        String deep = "[".repeat(30_000) + "]".repeat(30_000); // under the 64 KiB line limit
        String c = code(deep);
        assertTrue(c.equals("malformed_json") || c.equals("not_an_object"), c);
        String longName = "{\"request\":\"" + "x".repeat(50_000) + "\"}";
        ApiRequest.Error e = assertThrows(ApiRequest.Error.class, () -> ApiRequest.parse(longName));
        assertEquals("unknown_request", e.code());
        assertTrue(e.getMessage().length() < 300, "the message quotes a bounded part of what came: " + e.getMessage().length());
    }

    @Test
    void ctlArgumentsBecomeOneLineOfJson() throws ApiRequest.Error {
        assertEquals("{\"request\":\"info\"}", ApiRequest.line("info", List.of()));
        String stop = ApiRequest.line("stop", List.of("status=3"));
        assertEquals(Map.of("status", 3), ApiRequest.parse(stop).args());
        assertEquals(Map.of("advance_clock", true), ApiRequest.parse(ApiRequest.line("resume", List.of("advance_clock=true"))).args());
        assertEquals("abc", ApiRequest.parse(ApiRequest.line("info", List.of("id=abc"))).id());
        assertEquals("{\"request\":\"stop\",\"status\":\"x=y\"}", ApiRequest.line("stop", List.of("status=x=y")));
        assertEquals("{\"anything\": [1]}", ApiRequest.line("{\"anything\": [1]}", List.of()), "a JSON request is sent as it is");
        assertThrows(IllegalArgumentException.class, () -> ApiRequest.line("stop", List.of("status")));
        assertThrows(IllegalArgumentException.class, () -> ApiRequest.line("stop", List.of("=3")));
        assertThrows(IllegalArgumentException.class, () -> ApiRequest.line("stop", List.of("request=info")));
        assertThrows(IllegalArgumentException.class, () -> ApiRequest.line("{\"request\":\"info\"}", List.of("a=b")));
        assertThrows(IllegalArgumentException.class, () -> ApiRequest.line("{\n}", List.of()));
    }

    @Test
    void errorRepliesNameTheCodeAndMessage() {
        Map<String, Object> m = ApiRequest.error("stop", 5, "wrong_state", "the VM is stopping");
        assertEquals("{\"ok\":false,\"request\":\"stop\",\"id\":5,\"error\":\"wrong_state\",\"message\":\"the VM is stopping\"}", Json.line(m));
        assertEquals("{\"ok\":false,\"error\":\"line_too_long\",\"message\":\"m\"}", Json.line(ApiRequest.error(null, null, "line_too_long", "m")));
    }
}
