package dev.jvmm.gdb;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The GDB remote serial protocol's encoding: packets {@code $data#cs} with a modulo-256 checksum of
 * the bytes between {@code $} and {@code #}, escaping ({@code }} then the byte XOR 0x20) of
 * {@code $ # } *}, run-length decoding ({@code X*n}: X repeated n - 29 more times), and the hex
 * helpers the commands use. Pure functions; bad input is an {@link RspException}, never anything else.
 */
public final class Rsp {
    private Rsp() { }

    /** The packet size this stub advertises (qSupported's PacketSize) and the most it buffers of one packet. */
    public static final int PACKET_SIZE = 0x4000;

    /** Malformed protocol input: a bad hex digit, a number out of range, a packet that does not parse. */
    public static final class RspException extends Exception {
        public RspException(String message) {
            super(message, null, false, false);
        }
    }

    public static int checksum(byte[] data, int off, int len) {
        int sum = 0;
        for (int i = 0; i < len; i++) sum += data[off + i] & 0xff;
        return sum & 0xff;
    }

    /** {@code $payload#cs} with the payload's special bytes escaped. */
    public static byte[] frame(byte[] payload) {
        ByteArrayOutputStream body = new ByteArrayOutputStream(payload.length + 8);
        for (byte b : payload) {
            if (b == '$' || b == '#' || b == '}' || b == '*') {
                body.write('}');
                body.write(b ^ 0x20);
            } else {
                body.write(b);
            }
        }
        byte[] data = body.toByteArray();
        int cs = checksum(data, 0, data.length);
        byte[] out = new byte[data.length + 4];
        out[0] = '$';
        System.arraycopy(data, 0, out, 1, data.length);
        out[data.length + 1] = '#';
        out[data.length + 2] = (byte) HEX[cs >> 4];
        out[data.length + 3] = (byte) HEX[cs & 15];
        return out;
    }

    public static byte[] frame(String payload) {
        return frame(payload.getBytes(StandardCharsets.ISO_8859_1));
    }

    /**
     * The packet's data as the sender meant it: escapes undone and run-length encoding expanded, at
     * most {@code max} bytes.
     */
    public static byte[] unescape(byte[] raw, int off, int len, int max) throws RspException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(Math.min(len, max));
        int last = -1;
        for (int i = off; i < off + len; i++) {
            int b = raw[i] & 0xff;
            if (b == '}') {
                if (++i >= off + len) throw new RspException("escape at the end of a packet");
                last = (raw[i] & 0xff) ^ 0x20;
                out.write(last);
            } else if (b == '*') {
                if (last < 0) throw new RspException("run-length marker without a byte to repeat");
                if (++i >= off + len) throw new RspException("run-length marker at the end of a packet");
                int n = (raw[i] & 0xff) - 29;
                if (n < 3 || n > 97) throw new RspException("bad run length");
                for (int k = 0; k < n; k++) out.write(last);
                last = -1; // a run is not repeated again
            } else {
                last = b;
                out.write(b);
            }
            if (out.size() > max) throw new RspException("packet longer than " + max + " bytes");
        }
        return out.toByteArray();
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    public static String hex(byte[] data) {
        StringBuilder sb = new StringBuilder(data.length * 2);
        for (byte b : data) sb.append(HEX[(b >> 4) & 15]).append(HEX[b & 15]);
        return sb.toString();
    }

    public static String hex(String s) {
        return hex(s.getBytes(StandardCharsets.UTF_8));
    }

    public static int digit(int c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    /** Hex pairs to bytes; at most {@code max} bytes. */
    public static byte[] unhex(String s, int max) throws RspException {
        if ((s.length() & 1) != 0) throw new RspException("odd number of hex digits");
        if (s.length() / 2 > max) throw new RspException("too much data");
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) {
            int hi = digit(s.charAt(2 * i)), lo = digit(s.charAt(2 * i + 1));
            if (hi < 0 || lo < 0) throw new RspException("bad hex digit");
            out[i] = (byte) (hi << 4 | lo);
        }
        return out;
    }

    /** An unsigned hex number of 1 to 16 digits (a 64-bit value). */
    public static long parseHex(String s) throws RspException {
        if (s.isEmpty() || s.length() > 16) throw new RspException("bad hex number '" + abbreviate(s) + "'");
        long v = 0;
        for (int i = 0; i < s.length(); i++) {
            int d = digit(s.charAt(i));
            if (d < 0) throw new RspException("bad hex number '" + abbreviate(s) + "'");
            v = v << 4 | d;
        }
        return v;
    }

    /** A hex number that must lie in [0, max]. */
    public static int parseHexInt(String s, int max) throws RspException {
        long v = parseHex(s);
        if (v < 0 || v > max) throw new RspException("number 0x" + abbreviate(s) + " out of range");
        return (int) v;
    }

    /** A thread id: -1 (all), 0 (any) or a positive hex number. */
    public static int parseThread(String s) throws RspException {
        if (s.equals("-1")) return -1;
        if (s.startsWith("p")) throw new RspException("multiprocess thread ids are not supported");
        return parseHexInt(s, Integer.MAX_VALUE);
    }

    static String abbreviate(String s) {
        return s.length() > 20 ? s.substring(0, 20) + "..." : s;
    }

    /** A little-endian value of {@code size} bytes as hex, as registers travel. */
    public static String hexLe(long v, int size) {
        byte[] b = new byte[size];
        for (int i = 0; i < size && i < 8; i++) b[i] = (byte) (v >>> (8 * i));
        return hex(b);
    }
}
