package dev.jvmm.loader;

import io.airlift.compress.zstd.ZstdInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.zip.GZIPInputStream;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import org.apache.commons.compress.compressors.lz4.BlockLZ4CompressorInputStream;
import org.tukaani.xz.LZMAInputStream;
import org.tukaani.xz.MemoryLimitException;
import org.tukaani.xz.SingleXZInputStream;

/**
 * Decompresses a bzImage payload on the host, in pure Java: gzip (java.util.zip), xz and lzma (XZ for
 * Java), bzip2 (Commons Compress), zstd (aircompressor), and LZ4 legacy frames (framing parsed here,
 * blocks by Commons Compress, whose LZ4 code, unlike aircompressor's, needs no sun.misc.Unsafe). The kernel build appends the uncompressed size as 4 little-endian bytes;
 * the decoders stop at the end of their stream, so that trailer is only used to size the output
 * buffer. Output is capped at {@code limit} bytes (a zip bomb is refused, not buffered), and so is the
 * memory a decoder may allocate for its dictionary or window (an xz or lzma header declaring a 1.5 GiB
 * dictionary is refused, not allocated).
 */
public final class PayloadDecompressor {
    private PayloadDecompressor() { }

    /** The payload compressions the Linux kernel build produces. */
    public enum Compression {
        GZIP("gzip", new byte[] {0x1f, (byte) 0x8b}),
        XZ("xz", new byte[] {(byte) 0xfd, '7', 'z', 'X', 'Z', 0}),
        LZMA("lzma", new byte[] {0x5d, 0, 0}),
        LZ4("lz4", new byte[] {0x02, 0x21, 0x4c, 0x18}),
        ZSTD("zstd", new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd}),
        BZIP2("bzip2", new byte[] {0x42, 0x5a, 0x68}),
        /** Recognised to say so: no pure-Java LZO decoder is at hand. */
        LZO("lzo", new byte[] {(byte) 0x89, 0x4c, 0x5a, 0x4f});

        final String label;
        final byte[] magic;

        Compression(String label, byte[] magic) {
            this.label = label;
            this.magic = magic;
        }

        public String label() {
            return label;
        }
    }

    /** Largest LZ4 legacy-frame block, decompressed. */
    static final int LZ4_LEGACY_BLOCK = 8 << 20;
    static final int LZ4_LEGACY_MAGIC = 0x184C2102;

    /** The compression whose magic starts {@code data[off..off+len)}, or null. */
    public static Compression detect(byte[] data, int off, int len) {
        for (Compression c : Compression.values()) {
            if (len >= c.magic.length && Arrays.equals(data, off, off + c.magic.length, c.magic, 0, c.magic.length)) {
                return c;
            }
        }
        return null;
    }

    /**
     * Decompresses {@code data[off..off+len)}.
     *
     * @param limit  most bytes of output accepted; more is refused with {@code limitReason}
     * @throws LoadException naming {@code file} for unknown magic, corrupt data, or too much output
     */
    public static byte[] decompress(Path file, byte[] data, int off, int len, long limit, String limitReason)
            throws LoadException {
        Compression c = detect(data, off, len);
        if (c == null) {
            byte[] head = Arrays.copyOfRange(data, off, off + Math.min(len, 6));
            throw new LoadException(file + ": unknown bzImage payload compression (magic bytes "
                    + HexFormat.ofDelimiter(" ").formatHex(head) + "); jvmm knows gzip, xz, lzma, lz4, zstd and bzip2"
                    + " (or boot it without --host-decompress)");
        }
        if (c == Compression.LZO) {
            throw new LoadException(file + ": the bzImage payload is lzo-compressed, which jvmm cannot decompress"
                    + " on the host; boot it without --host-decompress");
        }
        int hint = sizeHint(data, off, len, limit);
        try {
            return switch (c) {
                case LZ4 -> lz4Legacy(file, data, off, len, limit, limitReason, hint);
                case ZSTD -> zstd(file, data, off, len, limit, limitReason, hint);
                default -> drain(file, open(c, new ByteArrayInputStream(data, off, len)), limit, limitReason,
                        hint);
            };
        } catch (MemoryLimitException e) {
            throw new LoadException(file + ": the " + c.label + "-compressed kernel payload needs "
                    + (e.getMemoryNeeded() >> 10) + " MiB for its dictionary, more than the " + MAX_DICTIONARY_MIB
                    + " MiB jvmm allows (kernel builds use 32 MiB); refusing it");
        } catch (IOException | RuntimeException e) {
            throw corrupt(file, c, e);
        }
    }

    /**
     * The size the kernel build appended (u32 LE after the stream) if it is plausible, as the initial
     * output capacity: a valid payload then decompresses into one exactly sized array.
     */
    static int sizeHint(byte[] data, int off, int len, long limit) {
        if (len < 8) return 0;
        long declared = Bytes.u32u(data, off + len - 4);
        return declared <= limit && declared <= ImageFiles.MAX_PIECE ? (int) declared : 0;
    }

    /**
     * The memory an xz or lzma decoder may use, in KiB: its dictionary, which a header may declare as
     * large as 4 GiB and which the decoder allocates whole, plus room for its state. The kernel build
     * uses dictionaries of 32 MiB at most (scripts/xz_wrap.sh); twice that is allowed.
     */
    static final int MAX_DICTIONARY_MIB = 64;

    static int memoryLimitKiB() {
        return (MAX_DICTIONARY_MIB + 1) << 10;
    }

    private static LoadException corrupt(Path file, Compression c, Exception e) {
        String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage().replace('\n', ' ');
        // aircompressor decodes zstd windows of at most 8 MiB; the kernel build's zstd -22 uses larger ones
        String hint = c == Compression.ZSTD && msg.contains("Window size too large")
                ? " (jvmm's zstd decoder handles windows up to 8 MiB; boot it without --host-decompress)" : "";
        return new LoadException(file + ": corrupt " + c.label + "-compressed kernel payload: " + msg + hint, e);
    }

    private static InputStream open(Compression c, InputStream in) throws IOException {
        return switch (c) {
            case GZIP -> new GZIPInputStream(in, 65536);
            // The xz stream is followed by the size trailer: read exactly one stream. Its header
            // declares the dictionary size: cap what it may make us allocate.
            case XZ -> new SingleXZInputStream(in, memoryLimitKiB());
            case LZMA -> new LZMAInputStream(in, memoryLimitKiB());
            case BZIP2 -> new BZip2CompressorInputStream(in, false);
            default -> throw new IllegalArgumentException(c.name());
        };
    }

    /** Reads {@code in} to its end, refusing more than {@code limit} bytes. */
    private static byte[] drain(Path file, InputStream in, long limit, String limitReason, int hint)
            throws IOException, LoadException {
        try (in) {
            Output out = new Output(file, limit, limitReason, hint);
            byte[] buf = new byte[65536];
            int n;
            while ((n = in.read(buf)) > 0) {
                out.put(buf, 0, n);
            }
            return out.toByteArray();
        }
    }

    /**
     * zstd: the decoder reads frames until the input ends, and would take the size trailer for another
     * frame; so if the whole payload does not decode, the same payload without its last 4 bytes is tried.
     */
    private static byte[] zstd(Path file, byte[] data, int off, int len, long limit, String limitReason, int hint)
            throws IOException, LoadException {
        try {
            return drain(file, new ZstdInputStream(new ByteArrayInputStream(data, off, len)), limit, limitReason, hint);
        } catch (IOException | RuntimeException e) {
            if (len <= 4) {
                throw e;
            }
            return drain(file, new ZstdInputStream(new ByteArrayInputStream(data, off, len - 4)), limit, limitReason,
                    hint);
        }
    }

    /**
     * LZ4 legacy frames (what {@code lz4 -l} writes): the magic 0x184C2102, then blocks of [u32 LE
     * compressed size][LZ4 block] each decompressing to at most 8 MiB. A repeated magic starts another
     * frame; 4 bytes left at the end are the kernel build's size trailer.
     */
    private static byte[] lz4Legacy(Path file, byte[] data, int off, int len, long limit, String limitReason,
                                    int hint) throws IOException, LoadException {
        Output out = new Output(file, limit, limitReason, hint);
        byte[] block = new byte[LZ4_LEGACY_BLOCK];
        int p = off;
        int end = off + len;
        int blocks = 0;
        while (end - p >= 4) {
            int size = Bytes.u32(data, p);
            if (size == LZ4_LEGACY_MAGIC) {
                p += 4;
                continue;
            }
            if (end - p == 4 && blocks > 0) {
                break;   // the size trailer
            }
            p += 4;
            if (size <= 0 || size > end - p) {
                throw new IOException("LZ4 block of " + Integer.toUnsignedString(size) + " bytes at payload offset "
                        + (p - 4 - off) + " extends beyond the payload (" + len + " bytes)");
            }
            try (InputStream in = new BlockLZ4CompressorInputStream(new ByteArrayInputStream(data, p, size))) {
                int n = in.readNBytes(block, 0, block.length);
                if (in.read() >= 0) {
                    throw new IOException("LZ4 block at payload offset " + (p - 4 - off) + " decompresses to more than "
                            + LZ4_LEGACY_BLOCK + " bytes");
                }
                out.put(block, 0, n);
            }
            p += size;
            blocks++;
        }
        if (blocks == 0) {
            throw new IOException("no LZ4 blocks");
        }
        return out.toByteArray();
    }

    /**
     * A byte sink that refuses to grow past a limit. It starts at the size hint (or 1 MiB) and grows by
     * doubling, but never beyond the limit, and hands out its array without a copy when it is full, so
     * a payload of the size it declared costs one array of that size.
     */
    private static final class Output {
        private final Path file;
        private final long limit;
        private final String limitReason;
        private byte[] buf;
        private int count;

        Output(Path file, long limit, String limitReason, int hint) {
            this.file = file;
            this.limit = limit;
            this.limitReason = limitReason;
            this.buf = new byte[hint > 0 ? hint : (int) Math.min(limit, 1 << 20)];
        }

        void put(byte[] b, int off, int n) throws LoadException {
            if (count + (long) n > limit) {
                throw new LoadException(file + ": the decompressed kernel is larger than " + limitReason
                        + " (" + limit + " bytes); refusing it");
            }
            if (count + n > buf.length) {
                long grown = Math.max(count + (long) n, 2L * buf.length);
                int size = (int) Math.min(grown, Math.min(limit, ImageFiles.MAX_PIECE));
                ImageFiles.requireHeap(file, "decompressed kernel", size);
                buf = Arrays.copyOf(buf, size);
            }
            System.arraycopy(b, off, buf, count, n);
            count += n;
        }

        byte[] toByteArray() {
            return count == buf.length ? buf : Arrays.copyOf(buf, count);
        }
    }
}
