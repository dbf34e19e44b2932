package dev.jvmm.loader;

import dev.jvmm.loader.Images.Seg;
import io.airlift.compress.lz4.Lz4Compressor;
import io.airlift.compress.zstd.ZstdCompressor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorOutputStream;
import org.tukaani.xz.FilterOptions;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.LZMAOutputStream;
import org.tukaani.xz.X86Options;
import org.tukaani.xz.XZOutputStream;

/** Builds synthetic Linux images (ELF64 vmlinux, bzImage with a compressed payload) for the loader tests. */
final class LinuxImages {
    private LinuxImages() { }

    static final int DATA_OFFSET = 0x1000;

    /** An ELF64 x86-64 executable with the given PT_LOAD segments and, if pvhEntry != null, a Xen PVH note. */
    static byte[] elf64(long entry, List<Seg> segs, Long pvhEntry, boolean noteAsSection) {
        byte[] note = null;
        if (pvhEntry != null) {
            ByteBuffer n = Images.le(64);
            // a GNU note first, to check the walk skips it
            n.putInt(4).putInt(4).putInt(3).put(new byte[] {'G', 'N', 'U', 0}).putInt(0x12345678);
            n.putInt(4).putInt(4).putInt(18).put(new byte[] {'X', 'e', 'n', 0}).putInt((int) (long) pvhEntry);
            note = Arrays.copyOf(n.array(), n.position());
        }
        int phnum = segs.size() + (note != null && !noteAsSection ? 1 : 0);
        int total = DATA_OFFSET + segs.stream().mapToInt(s -> s.data().length).sum()
                + (note != null ? note.length + 64 * 2 : 0);
        ByteBuffer b = Images.le(total);
        b.put(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1});
        b.position(16);
        b.putShort((short) 2).putShort((short) 62).putInt(1).putLong(entry).putLong(64).putLong(0).putInt(0);
        b.putShort((short) 64).putShort((short) 56).putShort((short) phnum);
        b.putShort((short) 64).putShort((short) 0).putShort((short) 0);
        int off = DATA_OFFSET;
        int ph = 64;
        for (Seg s : segs) {
            b.position(ph);
            b.putInt(1).putInt(7).putLong(off).putLong(s.vaddr()).putLong(s.paddr()).putLong(s.data().length)
                    .putLong(s.memSize()).putLong(0x1000);
            b.put(off, s.data());
            off += s.data().length;
            ph += 56;
        }
        if (note != null) {
            b.put(off, note);
            if (noteAsSection) {
                int shoff = off + note.length;
                b.putLong(40, shoff).putShort(60, (short) 2);
                b.position(shoff + 64);   // section 0 is the null section
                b.putInt(1).putInt(7).putLong(2).putLong(0).putLong(off).putLong(note.length);
            } else {
                b.position(ph);
                b.putInt(4).putInt(4).putLong(off).putLong(0).putLong(0).putLong(note.length).putLong(note.length)
                        .putLong(4);
            }
        }
        return b.array();
    }

    /** A small vmlinux-like ELF: 64 KiB of code at 16 MiB with bss, entry at its start. */
    static byte[] vmlinux(Long pvhEntry) {
        byte[] code = Images.filled(0x10000, 0x90);
        return elf64(0x1000000, List.of(new Seg(0x1000000, 0xffffffff81000000L, code, 0x20000)), pvhEntry, false);
    }

    /** Setup header fields of a fake bzImage. */
    record Hdr(int version, int xloadflags, int setupSects, boolean relocatable, long prefAddress, long initSize,
               long kernelAlignment, long cmdlineSize, long initrdAddrMax) {
        static Hdr standard() {
            return new Hdr(0x020f, 0x1, 1, false, 0x1000000, 0x400000, 0x200000, 0x7ff, 0x7fffffff);
        }

        Hdr withVersion(int v) {
            return new Hdr(v, xloadflags, setupSects, relocatable, prefAddress, initSize, kernelAlignment,
                    cmdlineSize, initrdAddrMax);
        }

        Hdr withXloadflags(int v) {
            return new Hdr(version, v, setupSects, relocatable, prefAddress, initSize, kernelAlignment,
                    cmdlineSize, initrdAddrMax);
        }

        Hdr withPlacement(boolean reloc, long pref, long init) {
            return new Hdr(version, xloadflags, setupSects, reloc, pref, init, kernelAlignment, cmdlineSize,
                    initrdAddrMax);
        }

        Hdr withCmdlineSize(long v) {
            return new Hdr(version, xloadflags, setupSects, relocatable, prefAddress, initSize, kernelAlignment, v,
                    initrdAddrMax);
        }

        Hdr withInitrdAddrMax(long v) {
            return new Hdr(version, xloadflags, setupSects, relocatable, prefAddress, initSize, kernelAlignment,
                    cmdlineSize, v);
        }
    }

    static final int PAYLOAD_OFFSET = 0x100;
    static final int HDR_LEN_BYTE = 0x6a;   // header ends at 0x26c, as in Linux 6.x

    /** A bzImage: setup sectors with the header, then a protected-mode part with the payload at PAYLOAD_OFFSET. */
    static byte[] bzImage(Hdr h, byte[] payload) {
        int setup = ((h.setupSects() == 0 ? 4 : h.setupSects()) + 1) * 512;
        // at least 1 KiB of protected-mode kernel: the 64-bit entry at 0x200 must lie inside it
        ByteBuffer b = Images.le(setup + Math.max(PAYLOAD_OFFSET + payload.length + 64, 0x400));
        b.put(0x1f1, (byte) h.setupSects());
        b.putInt(0x1f4, (b.capacity() - setup + 15) / 16);   // syssize: the protected-mode part in paragraphs
        b.putShort(0x1fa, (short) 0xffff);           // vid_mode
        b.putShort(0x1fe, (short) 0xaa55);
        b.put(0x200, (byte) 0xeb).put(0x201, (byte) HDR_LEN_BYTE);
        b.putInt(0x202, 0x53726448);
        b.putShort(0x206, (short) h.version());
        b.put(0x211, (byte) 0x41);                   // LOADED_HIGH | KEEP_SEGMENTS: the loader must clear the latter
        b.putInt(0x214, 0x100000);
        b.putInt(0x22c, (int) h.initrdAddrMax());
        b.putInt(0x230, (int) h.kernelAlignment());
        b.put(0x234, (byte) (h.relocatable() ? 1 : 0));
        b.put(0x235, (byte) 21);
        b.putShort(0x236, (short) h.xloadflags());
        b.putInt(0x238, (int) h.cmdlineSize());
        b.putInt(0x248, PAYLOAD_OFFSET).putInt(0x24c, payload.length);
        b.putLong(0x258, h.prefAddress());
        b.putInt(0x260, (int) h.initSize());
        b.putInt(0x264, 0x190);                      // handover_offset: copied, past the fields jvmm reads
        b.put(0x270, (byte) 0x77);                   // beyond the header's end: must not be copied
        b.put(setup, new byte[] {(byte) 0xfc, (byte) 0xfa});
        b.put(setup + PAYLOAD_OFFSET, payload);
        return b.array();
    }

    enum Kind { GZIP, XZ, LZMA, LZ4, ZSTD, BZIP2 }

    /** Compresses like the kernel build: the compressed stream, then the uncompressed size as u32 LE. */
    static byte[] compress(Kind kind, byte[] data) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        switch (kind) {
            case GZIP -> stream(new GZIPOutputStream(bos), data);
            case XZ -> stream(new XZOutputStream(bos, new FilterOptions[] {new X86Options(), new LZMA2Options()},
                    org.tukaani.xz.XZ.CHECK_CRC32), data);
            case LZMA -> stream(new LZMAOutputStream(bos, new LZMA2Options(), -1), data);
            case BZIP2 -> stream(new BZip2CompressorOutputStream(bos), data);
            case ZSTD -> {
                ZstdCompressor z = new ZstdCompressor();
                byte[] out = new byte[z.maxCompressedLength(data.length)];
                bos.write(out, 0, z.compress(data, 0, data.length, out, 0, out.length));
            }
            case LZ4 -> {
                bos.write(new byte[] {0x02, 0x21, 0x4c, 0x18});
                Lz4Compressor lz4 = new Lz4Compressor();
                int block = 8 << 20;
                for (int off = 0; off < data.length; off += block) {
                    int n = Math.min(block, data.length - off);
                    byte[] out = new byte[lz4.maxCompressedLength(n)];
                    int c = lz4.compress(data, off, n, out, 0, out.length);
                    bos.write(Images.le(4).putInt(c).array());
                    bos.write(out, 0, c);
                }
            }
            default -> throw new IllegalArgumentException();
        }
        bos.write(Images.le(4).putInt(data.length).array());
        return bos.toByteArray();
    }

    private static void stream(OutputStream out, byte[] data) throws IOException {
        try (out) {
            out.write(data);
        }
    }
}
