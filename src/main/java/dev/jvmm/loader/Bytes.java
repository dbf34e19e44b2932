package dev.jvmm.loader;

/** Little-endian field access on byte arrays (callers check bounds). */
final class Bytes {
    private Bytes() { }

    static int u16(byte[] b, int off) {
        return (b[off] & 0xff) | (b[off + 1] & 0xff) << 8;
    }

    static int u32(byte[] b, int off) {
        return (b[off] & 0xff) | (b[off + 1] & 0xff) << 8 | (b[off + 2] & 0xff) << 16 | (b[off + 3] & 0xff) << 24;
    }

    /** An unsigned 32-bit field as a long. */
    static long u32u(byte[] b, int off) {
        return u32(b, off) & 0xffff_ffffL;
    }

    static long u64(byte[] b, int off) {
        return u32u(b, off) | (long) u32(b, off + 4) << 32;
    }

    static void put16(byte[] b, int off, int v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >>> 8);
    }

    static void put32(byte[] b, int off, long v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >>> 8);
        b[off + 2] = (byte) (v >>> 16);
        b[off + 3] = (byte) (v >>> 24);
    }

    static void put64(byte[] b, int off, long v) {
        put32(b, off, v);
        put32(b, off + 4, v >>> 32);
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }
}
