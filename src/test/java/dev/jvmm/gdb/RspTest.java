package dev.jvmm.gdb;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RspTest {
    /** What a decoder reported, one string per event. */
    static final class Events implements RspDecoder.Listener {
        final List<String> seen = new ArrayList<>();

        @Override public void packet(byte[] data) { seen.add("packet:" + new String(data, StandardCharsets.ISO_8859_1)); }
        @Override public void badPacket(String why) { seen.add("bad"); }
        @Override public void ack(boolean positive) { seen.add(positive ? "+" : "-"); }
        @Override public void interrupt() { seen.add("interrupt"); }
        @Override public void oversized() { seen.add("oversized"); }
    }

    private static List<String> decode(String stream, int max) {
        Events e = new Events();
        RspDecoder d = new RspDecoder(max, e);
        byte[] b = stream.getBytes(StandardCharsets.ISO_8859_1);
        d.feed(b, 0, b.length);
        return e.seen;
    }

    @Test
    void checksumIsTheByteSumModulo256() {
        byte[] g = "g".getBytes();
        assertEquals(0x67, Rsp.checksum(g, 0, 1));
        byte[] q = "qSupported".getBytes();
        assertEquals(0x37, Rsp.checksum(q, 0, q.length));
    }

    @Test
    void framesWithChecksumAndEscapes() {
        assertEquals("$OK#9a", new String(Rsp.frame("OK"), StandardCharsets.ISO_8859_1));
        // $ # } * are escaped as } then the byte XOR 0x20, and the checksum covers the escaped bytes
        String f = new String(Rsp.frame("a$b#c}d*"), StandardCharsets.ISO_8859_1);
        assertTrue(f.startsWith("$a}\u0004b}\u0003c}]d}\n#"), f);
        byte[] body = f.substring(1, f.indexOf('#', 2 + 8)).getBytes(StandardCharsets.ISO_8859_1);
        assertEquals(String.format("%02x", Rsp.checksum(body, 0, body.length)), f.substring(f.length() - 2));
    }

    @Test
    void decodesPacketsAcksAndInterrupts() {
        assertEquals(List.of("+", "packet:g", "-", "interrupt", "packet:OK"), decode("+$g#67-\u0003$OK#9a", 100));
        // Ctrl-C inside a packet is data, not an interrupt
        assertEquals(List.of("bad"), decode("$a\u0003b#00", 100));
    }

    @Test
    void aBadChecksumIsReportedNotDelivered() {
        assertEquals(List.of("bad"), decode("$g#68", 100));
        assertEquals(List.of("bad"), decode("$g#zz", 100));
        assertEquals(List.of("bad", "packet:g"), decode("$g#6z$g#67", 100));
    }

    @Test
    void roundTripsEscapedData() {
        byte[] data = new byte[256];
        for (int i = 0; i < 256; i++) data[i] = (byte) i;
        Events e = new Events();
        List<byte[]> got = new ArrayList<>();
        RspDecoder d = new RspDecoder(1024, new RspDecoder.Listener() {
            @Override public void packet(byte[] p) { got.add(p); }
            @Override public void badPacket(String why) { e.badPacket(why); }
            @Override public void interrupt() { }
            @Override public void oversized() { }
        });
        byte[] f = Rsp.frame(data);
        d.feed(f, 0, f.length);
        assertEquals(1, got.size(), e.seen.toString());
        assertArrayEquals(data, got.get(0));
    }

    @Test
    void expandsRunLengthEncoding() throws Exception {
        // "0* " is '0' then 32 - 29 = 3 more: four zeros
        byte[] raw = "0* 1".getBytes(StandardCharsets.ISO_8859_1);
        assertEquals("00001", new String(Rsp.unescape(raw, 0, raw.length, 100), StandardCharsets.ISO_8859_1));
        String p = "X*\"";
        int cs = Rsp.checksum(p.getBytes(StandardCharsets.ISO_8859_1), 0, p.length());
        assertEquals(List.of("packet:XXXXXX"), decode("$" + p + "#" + String.format("%02x", cs), 100));
        byte[] bad = "*a".getBytes(StandardCharsets.ISO_8859_1);
        assertThrows(Rsp.RspException.class, () -> Rsp.unescape(bad, 0, bad.length, 100));
        byte[] end = "a}".getBytes(StandardCharsets.ISO_8859_1);
        assertThrows(Rsp.RspException.class, () -> Rsp.unescape(end, 0, end.length, 100));
        byte[] tooLong = "a*~".getBytes(StandardCharsets.ISO_8859_1); // 'a' + 97 more
        assertThrows(Rsp.RspException.class, () -> Rsp.unescape(tooLong, 0, tooLong.length, 50));
    }

    @Test
    void anOversizedPacketIsReportedAndNotBuffered() {
        String big = "$" + "a".repeat(200) + "#00";
        List<String> seen = decode(big + "$g#67", 100);
        // the rest of the long packet is noise until the next '$'
        assertEquals(List.of("oversized", "packet:g"), seen);
    }

    @Test
    void hexNumbersAreChecked() throws Exception {
        assertEquals(0xffffffffffffffffL, Rsp.parseHex("ffffffffffffffff"));
        assertThrows(Rsp.RspException.class, () -> Rsp.parseHex("10000000000000000"));
        assertThrows(Rsp.RspException.class, () -> Rsp.parseHex(""));
        assertThrows(Rsp.RspException.class, () -> Rsp.parseHex("12g"));
        assertThrows(Rsp.RspException.class, () -> Rsp.parseHexInt("ffffffff", Integer.MAX_VALUE));
        assertThrows(Rsp.RspException.class, () -> Rsp.unhex("abc", 10));
        assertThrows(Rsp.RspException.class, () -> Rsp.unhex("zz", 10));
        assertThrows(Rsp.RspException.class, () -> Rsp.unhex("0011", 1));
        assertArrayEquals(new byte[] {0x12, (byte) 0xab}, Rsp.unhex("12AB", 10));
        assertEquals(-1, Rsp.parseThread("-1"));
        assertEquals("3412", Rsp.hexLe(0x1234, 2));
    }

    @Test
    void garbageNeverThrows() {
        java.util.Random r = new java.util.Random(11);
        Events e = new Events();
        RspDecoder d = new RspDecoder(64, e);
        byte[] b = new byte[100_000];
        r.nextBytes(b);
        d.feed(b, 0, b.length);
        assertFalse(e.seen.isEmpty());
    }
}
