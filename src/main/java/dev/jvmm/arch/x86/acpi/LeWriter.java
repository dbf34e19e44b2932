package dev.jvmm.arch.x86.acpi;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** A growable little-endian byte sink for building tables, with field patching and checksums. */
final class LeWriter {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    LeWriter u8(int v) {
        out.write(v);
        return this;
    }

    LeWriter u16(int v) {
        return u8(v).u8(v >>> 8);
    }

    LeWriter u32(long v) {
        return u16((int) v).u16((int) (v >>> 16));
    }

    LeWriter u64(long v) {
        return u32(v).u32(v >>> 32);
    }

    LeWriter bytes(byte[] b) {
        out.writeBytes(b);
        return this;
    }

    LeWriter zeros(int n) {
        for (int i = 0; i < n; i++) out.write(0);
        return this;
    }

    /** {@code s} in ASCII, space-padded (or cut) to exactly {@code width} bytes. */
    LeWriter ascii(String s, int width) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < width; i++) out.write(i < b.length ? b[i] : ' ');
        return this;
    }

    int size() {
        return out.size();
    }

    byte[] toBytes() {
        return out.toByteArray();
    }

    static void put8(byte[] b, int off, int v) {
        b[off] = (byte) v;
    }

    static void put16(byte[] b, int off, int v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >>> 8);
    }

    static void put32(byte[] b, int off, long v) {
        put16(b, off, (int) v);
        put16(b, off + 2, (int) (v >>> 16));
    }

    static void put64(byte[] b, int off, long v) {
        put32(b, off, v);
        put32(b, off + 4, v >>> 32);
    }

    static int u8(byte[] b, int off) {
        return b[off] & 0xff;
    }

    static int u16(byte[] b, int off) {
        return u8(b, off) | u8(b, off + 1) << 8;
    }

    static long u32(byte[] b, int off) {
        return (u16(b, off) | (long) u16(b, off + 2) << 16) & 0xffff_ffffL;
    }

    static long u64(byte[] b, int off) {
        return u32(b, off) | u32(b, off + 4) << 32;
    }

    /** The byte that makes {@code b[off, off+len)} sum to 0 modulo 256, given that it is 0 now. */
    static byte checksum(byte[] b, int off, int len) {
        int sum = 0;
        for (int i = off; i < off + len; i++) sum += b[i];
        return (byte) -sum;
    }

    /** Sum of {@code b[off, off+len)} modulo 256 (0 for a correctly checksummed range). */
    static int sum(byte[] b, int off, int len) {
        int sum = 0;
        for (int i = off; i < off + len; i++) sum += b[i];
        return sum & 0xff;
    }
}
