package dev.jvmm.host.vsock;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** Firecracker's {@code CONNECT <port>\n}, and the lines a confused or hostile client sends instead. */
class ConnectCommandTest {
    static ConnectCommand.Parsed parse(String s) {
        byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
        return ConnectCommand.parse(b, b.length);
    }

    @Test
    void goodLines() {
        assertEquals(52, parse("CONNECT 52\n").port());
        assertEquals(0, parse("CONNECT 0\n").port());
        assertEquals(4294967295L, parse("CONNECT 4294967295\n").port());
        assertEquals(1024, parse("connect 1024\n").port(), "the word is case-insensitive, as Firecracker's");
        assertEquals(7, parse("Connect   7 \r\n").port());
        assertEquals(7, parse("CONNECT\t7\n").port());
    }

    @Test
    void badLinesAreRefusedWithAReason() {
        String[] bad = {"CONNECT\n", "CONNECT \n", "CONNECT abc\n", "CONNECT -1\n", "CONNECT 4294967296\n", "CONNECT 99999999999\n",
                "CONNECT 5 6\n", "CONNEC 5\n", "OK 5\n", "\n", "5\n", "CONNECT 5", "CONNECT 0x10\n", "CONNECT +5\n",
                "CONNECT 5\0\n", "CONNECT \u00e9\n", "CONNECT 1_000\n"};
        for (String s : bad) {
            ConnectCommand.Parsed p = parse(s);
            assertFalse(p.ok(), () -> "accepted " + s.replace("\n", "\\n"));
            assertNotNull(p.error());
        }
        assertTrue(parse("CONNECT 5").error().contains("no newline"));
        assertTrue(parse("CONNECT 4294967296\n").error().contains("larger"));
        assertTrue(parse("GET / HTTP/1.0\n").error().contains("not CONNECT"));
        assertEquals(-1, ConnectCommand.parse(new byte[0], 0).port());
    }
}
