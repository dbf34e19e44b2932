package dev.jvmm.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.loader.LinuxImages.Hdr;
import dev.jvmm.loader.LinuxImages.Kind;
import dev.jvmm.loader.LoadOptions.BootProtocol;
import dev.jvmm.memory.Chunk;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

/**
 * Hostile images and initrds: every one is refused (or loaded) with bounded memory, before the data
 * that the bad header describes is read or copied.
 */
class LoaderBoundsTest extends TempFileTest {
    static final long MIB = 1L << 20;
    static final long GIB = 1L << 30;

    /** A file of {@code size} bytes that takes no disk space (a hole), with {@code head} at its start. */
    Path sparse(String name, long size, byte[] head) throws IOException {
        Path p = dir.resolve(name);
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.write(head);
            f.setLength(size);
        }
        return p;
    }

    static LoadOptions opts(long mem, List<Path> initrds, boolean hostDecompress) {
        return new LoadOptions(mem, "", initrds, BootProtocol.DEFAULT, hostDecompress, 0);
    }

    /** Bytes allocated on this thread while {@code body} runs (it may throw). */
    static long allocatedBy(Executable body) {
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        try {
            body.execute();
        } catch (Throwable t) {
            if (t instanceof AssertionError e) throw e;
            if (t instanceof Error e) throw new AssertionError("an Error escaped the loader: " + e, e);
        }
        return mx.getCurrentThreadAllocatedBytes() - before;
    }

    static LoadException refused(Path kernel, KernelFormat format, LoadOptions o, String... parts) {
        LoadException e = assertThrows(LoadException.class, () -> KernelLoader.load(kernel, format, o));
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
        }
        return e;
    }

    // ---- 1. program headers are validated before any segment is copied ----

    /** An ELF32 multiboot kernel whose {@code phnum} PT_LOADs all map the file's first {@code segSize} bytes. */
    static byte[] elf32ManySegments(int phnum, int segSize, boolean overlapping) {
        byte[] base = Images.elf(0x100000, 3, List.of(new Images.Seg(0x100000, new byte[4096], 4096)));
        int phoff = 0x2000;
        ByteBuffer b = Images.le(Math.max(phoff + phnum * 32, segSize));
        b.put(base, 0, Math.min(base.length, phoff));
        b.putInt(28, phoff).putShort(44, (short) phnum);
        for (int i = 0; i < phnum; i++) {
            long paddr = overlapping ? 0x100000 : 0x100000 + (long) segSize * i;
            b.position(phoff + 32 * i);
            b.putInt(1).putInt(0).putInt((int) paddr).putInt((int) paddr).putInt(segSize).putInt(segSize).putInt(7)
                    .putInt(0x1000);
        }
        return b.array();
    }

    @Test
    void elf32With65535OverlappingSegmentsIsRefusedBeforeCopying() throws Exception {
        Path k = write("many.elf", elf32ManySegments(65535, 4096, true));
        long mem = 512 * MIB;
        long allocated = allocatedBy(() -> refused(k, null, new LoadOptions(mem, "", List.of()), "many.elf",
                "65535 program headers"));
        // the file is 2 MiB; copying every segment would be 256 MiB
        assertTrue(allocated < 32 * MIB, "allocated " + allocated + " bytes");
    }

    @Test
    void overlappingSegmentsAreRefusedBeforeCopying() throws Exception {
        Path k = write("ov.elf", elf32ManySegments(200, 64 * 1024, true));
        long allocated = allocatedBy(() -> refused(k, null, new LoadOptions(64 * MIB, "", List.of()), "ov.elf",
                "overlaps"));
        assertTrue(allocated < 4 * MIB, "allocated " + allocated + " bytes");   // not 200 copies of 64 KiB
        // as many that do not overlap load fine
        BootImage img = KernelLoader.load(write("ok.elf", elf32ManySegments(200, 64 * 1024, false)), null,
                new LoadOptions(64 * MIB, "", List.of()));
        assertEquals(201, img.chunks().size(), "200 segments and the information block");
    }

    @Test
    void elf64With65535ProgramHeadersIsRefused() throws Exception {
        byte[] vmlinux = LinuxImages.vmlinux(null);
        ByteBuffer b = Images.le(0x1000 + 65535 * 56);
        b.put(vmlinux, 0, 64);
        b.putLong(32, 0x1000).putShort(56, (short) 65535);
        for (int i = 0; i < 65535; i++) {
            b.position(0x1000 + 56 * i);
            b.putInt(1).putInt(7).putLong(0).putLong(0x1000000).putLong(0x1000000).putLong(4096).putLong(4096).putLong(0);
        }
        refused(write("many64", b.array()), null, opts(64 * MIB, List.of(), true), "65535 program headers");
    }

    // ---- 2. initrd sizes are checked before any is read; each is read once into place ----

    @Test
    void fourHugeInitrdsAreRefusedBeforeAnyIsRead() throws Exception {
        Path k = write("vmlinux", LinuxImages.vmlinux(null));
        long size = 1900 * MIB;
        List<Path> rds = List.of(sparse("rd0", size, new byte[1]), sparse("rd1", size, new byte[1]),
                sparse("rd2", size, new byte[1]), sparse("rd3", size, new byte[1]));
        long allocated = allocatedBy(() -> refused(k, null, opts(3 * GIB, rds, true), "rd1", "initrd of " + size
                + " bytes", (2 * size) + " bytes with the 1 initrd file before it", "does not fit"));
        assertTrue(allocated < 16 * MIB, "allocated " + allocated + " bytes");
    }

    @Test
    void initrdFilesAreReadStraightIntoPlace() throws Exception {
        Path k = write("vmlinux", LinuxImages.vmlinux(null));
        byte[] a = Images.filled((int) (8 * MIB), 'a');
        byte[] b = Images.filled((int) (8 * MIB) + 5, 'b');
        List<Path> rds = List.of(write("a", a), write("b", b));
        BootImage[] img = new BootImage[1];
        long allocated = allocatedBy(() -> img[0] = KernelLoader.load(k, null, opts(64 * MIB, rds, true)));
        Chunk rd = img[0].chunks().stream().filter(c -> c.what().equals("initrd")).findFirst().orElseThrow();
        assertEquals(a.length + b.length, rd.data().length);
        assertEquals('a', rd.data()[a.length - 1]);
        assertEquals('b', rd.data()[a.length]);
        // one copy of the 16 MiB (plus the small kernel), not the files and then their concatenation
        assertTrue(allocated < 20 * MIB, "allocated " + allocated + " bytes");
    }

    @Test
    void initrdLargerThanRamIsRefusedWithoutReadingIt() throws Exception {
        Path k = write("vmlinux", LinuxImages.vmlinux(null));
        Path big = sparse("big.cpio", 5 * GIB, new byte[1]);
        long allocated = allocatedBy(() -> refused(k, null, opts(256 * MIB, List.of(big), true), "big.cpio",
                "initrd of " + 5 * GIB + " bytes", "does not fit"));
        assertTrue(allocated < 16 * MIB, "allocated " + allocated + " bytes");
    }

    @Test
    void multibootModulesAreCheckedBeforeAnyIsRead() throws Exception {
        byte[] elf = Images.elf(0x100000, 3, List.of(new Images.Seg(0x100000, new byte[16], 16)));
        Path k = write("k.elf", elf);
        List<Path> mods = List.of(sparse("m0", 40 * MIB, new byte[1]), sparse("m1", 40 * MIB, new byte[1]));
        long allocated = allocatedBy(() -> refused(k, null, new LoadOptions(64 * MIB, "", mods), "m1",
                "does not fit"));
        assertTrue(allocated < 16 * MIB, "allocated " + allocated + " bytes (m0 was read)");
    }

    // ---- 3. extract-vmlinux reads the header, then only the payload ----

    @Test
    void extractVmlinuxReadsOnlyThePayloadOfAHugeFile() throws Exception {
        byte[] vmlinux = LinuxImages.vmlinux(null);
        byte[] bz = LinuxImages.bzImage(Hdr.standard(), LinuxImages.compress(Kind.GZIP, vmlinux));
        Path big = sparse("huge.bzImage", 3 * GIB, bz);   // a valid image, then 3 GiB of nothing
        byte[][] out = new byte[1][];
        long allocated = allocatedBy(() -> out[0] = LinuxLoader.extractVmlinux(big));
        assertArrayEquals(vmlinux, out[0]);
        assertTrue(allocated < 16 * MIB, "allocated " + allocated + " bytes");

        Path junk = sparse("junk", 3 * GIB, new byte[16]);
        LoadException e = assertThrows(LoadException.class, () -> LinuxLoader.extractVmlinux(junk));
        assertTrue(e.getMessage().contains("not a Linux bzImage"), e.getMessage());
    }

    // ---- 4. decompression is bounded: output by init_size and RAM, dictionaries by a memory limit ----

    /** An xz stream of {@code data} whose block header declares a dictionary of 3 << 29 bytes (1.5 GiB). */
    static byte[] xzWithHugeDictionary(byte[] data) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (XZOutputStream xz = new XZOutputStream(bos, new LZMA2Options(), org.tukaani.xz.XZ.CHECK_CRC32)) {
            xz.write(data);
        }
        byte[] b = bos.toByteArray();
        int hdr = 12;                        // after the stream header
        int hdrSize = ((b[hdr] & 0xff) + 1) * 4;
        assertEquals(0, b[hdr + 1] & 0xc3, "one filter, no size fields");
        assertEquals(0x21, b[hdr + 2], "LZMA2");
        b[hdr + 4] = 37;                     // dictionary (2 | 37 & 1) << (37 / 2 + 11) = 1.5 GiB
        CRC32 crc = new CRC32();
        crc.update(b, hdr, hdrSize - 4);
        ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(hdr + hdrSize - 4, (int) crc.getValue());
        byte[] withTrailer = Arrays.copyOf(b, b.length + 4);
        Bytes.put32(withTrailer, b.length, data.length);
        return withTrailer;
    }

    @Test
    void xzDictionaryOfOneAndAHalfGibIsRefusedUnallocated() throws Exception {
        Path k = write("xzdict", LinuxImages.bzImage(Hdr.standard(), xzWithHugeDictionary(LinuxImages.vmlinux(null))));
        long allocated = allocatedBy(() -> refused(k, null, opts(256 * MIB, List.of(), true), "xzdict",
                "dictionary", "64 MiB"));
        assertTrue(allocated < 64 * MIB, "allocated " + allocated + " bytes");
        LoadException e = assertThrows(LoadException.class, () -> LinuxLoader.extractVmlinux(k));
        assertTrue(e.getMessage().contains("dictionary"), e.getMessage());
    }

    @Test
    void lzmaDictionaryBeyondTheLimitIsRefusedUnallocated() throws Exception {
        byte[] lzma = LinuxImages.compress(Kind.LZMA, LinuxImages.vmlinux(null));
        Bytes.put32(lzma, 1, 1000 * MIB);   // .lzma header: properties byte, then the dictionary size
        Path k = write("lzmadict", LinuxImages.bzImage(Hdr.standard(), lzma));
        long allocated = allocatedBy(() -> refused(k, null, opts(256 * MIB, List.of(), true), "dictionary"));
        assertTrue(allocated < 64 * MIB, "allocated " + allocated + " bytes");
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void decompressionStopsAtTheImagesInitSize(Kind kind) throws Exception {
        // 16 MiB of zeros compress to almost nothing; the header says the kernel needs 4 MiB
        byte[] bomb = LinuxImages.compress(kind, new byte[(int) (16 * MIB)]);
        Path k = write("bomb", LinuxImages.bzImage(Hdr.standard(), bomb));
        long allocated = allocatedBy(() -> refused(k, null, opts(256 * MIB, List.of(), true),
                "larger than the image's init_size (4194304 bytes)"));
        assertTrue(allocated < 24 * MIB, kind + ": allocated " + allocated + " bytes");
        LoadException e = assertThrows(LoadException.class, () -> LinuxLoader.extractVmlinux(k));
        assertTrue(e.getMessage().contains("init_size"), e.getMessage());
    }

    @Test
    void outputOfTheDeclaredSizeIsOneArray() throws Exception {
        byte[] vmlinux = LinuxImages.vmlinux(null);
        byte[] gz = LinuxImages.compress(Kind.GZIP, vmlinux);
        byte[][] out = new byte[1][];
        long allocated = allocatedBy(() -> out[0] = PayloadDecompressor.decompress(Path.of("x"), gz, 0, gz.length,
                64 * MIB, "test"));
        assertArrayEquals(vmlinux, out[0]);
        assertTrue(allocated < vmlinux.length + 512 * 1024, "allocated " + allocated + " bytes");
    }

    @Test
    void zstdWindowBeyondTheDecoderSaysHowToBootAnyway() throws Exception {
        // frame header: no flags, window descriptor 0x88 (2^27 = 128 MiB, as zstd -22 --ultra writes), then the
        // header of a last compressed block of 4 bytes: what the decoder refuses for that window
        byte[] zstd = {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd, 0, (byte) 0x88, 0x25, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0};
        refused(write("zstdwindow", LinuxImages.bzImage(Hdr.standard(), zstd)), null, opts(64 * MIB, List.of(), true),
                "corrupt zstd-compressed kernel payload", "without --host-decompress");
    }

    @Test
    void lzoPayloadsAreNamed() throws Exception {
        byte[] lzo = {(byte) 0x89, 'L', 'Z', 'O', 0, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0};
        refused(write("payload", LinuxImages.bzImage(Hdr.standard(), lzo)), null, opts(64 * MIB, List.of(), true),
                "lzo-compressed", "without --host-decompress");
    }

    // ---- 5. bzImage header fields are checked against the file in both modes ----

    @Test
    void malformedBzImagesAreRefusedInBothModes() throws Exception {
        byte[] payload = LinuxImages.compress(Kind.GZIP, LinuxImages.vmlinux(null));
        byte[] full = LinuxImages.bzImage(Hdr.standard(), payload);
        for (boolean host : new boolean[] {true, false}) {
            LoadOptions o = opts(64 * MIB, List.of(), host);
            byte[] pastEnd = full.clone();
            Bytes.put32(pastEnd, 0x24c, payload.length + 1000);
            refused(write("pastend" + host, pastEnd), null, o, "truncated bzImage payload");

            byte[] offsetPastEnd = full.clone();
            Bytes.put32(offsetPastEnd, 0x248, full.length);
            refused(write("offset" + host, offsetPastEnd), null, o, "truncated bzImage payload");

            Path half = write("half" + host, Arrays.copyOf(full, 1024 + (full.length - 1024) / 2));
            refused(half, null, o, "truncated bzImage", "syssize");

            byte[] noSyssize = full.clone();
            Bytes.put32(noSyssize, 0x1f4, 0);
            refused(write("nosys" + host, noSyssize), null, o, "syssize 0");

            byte[] manySects = full.clone();
            manySects[0x1f1] = (byte) 200;
            refused(write("sects" + host, manySects), null, o, "truncated bzImage", "200 sectors");
        }
    }

    /** A bzImage whose 0x1e0-byte protected-mode part (syssize and payload consistent) ends before 0x200. */
    static byte[] shortProtectedModeKernel() {
        byte[] bz = Arrays.copyOf(LinuxImages.bzImage(Hdr.standard(), new byte[] {0x1f, (byte) 0x8b, 8, 0}), 1024 + 0x1e0);
        Bytes.put32(bz, 0x1f4, 0x1e0 / 16);
        return bz;
    }

    @Test
    void protectedModeKernelMustHoldTheEntryPoint() throws Exception {
        refused(write("short", shortProtectedModeKernel()), null, opts(64 * MIB, List.of(), false), "short",
                "ends before the 64-bit entry point");
    }

    // ---- 6. an ELF that no loader takes is not run as real-mode code ----

    @Test
    void elfThatIsNeitherLinuxNorMultibootIsRefused() throws Exception {
        byte[] elf32 = Images.elf(0x100000, 3, List.of(new Images.Seg(0x100000, new byte[16], 16)));
        Arrays.fill(elf32, Images.MB_OFFSET, Images.MB_OFFSET + 12, (byte) 0);   // no multiboot header
        Path k = write("plain.elf", elf32);
        assertEquals(KernelFormat.FLAT, KernelLoader.detect(elf32));
        refused(k, null, new LoadOptions(64 * MIB, "", List.of()), "plain.elf", "neither a Linux kernel",
                "--format flat");
        assertEquals(KernelFormat.FLAT, KernelLoader.load(k, KernelFormat.FLAT, new LoadOptions(64 * MIB, "",
                List.of())).format(), "--format flat runs it anyway");
        // a flat binary that only happens to start like an ELF is still refused: the magic is the ELF's
        Path tiny = write("tiny", new byte[] {0x7f, 'E', 'L', 'F', 1});
        refused(tiny, null, new LoadOptions(64 * MIB, "", List.of()), "--format flat");
    }

    // ---- 7. no Error escapes: heap is checked before large allocations ----

    @Test
    void heapCheckRefusesWhatCannotBeAllocated() {
        LoadException e = assertThrows(LoadException.class,
                () -> ImageFiles.requireHeap(Path.of("k"), "kernel", Runtime.getRuntime().maxMemory() + 1));
        assertTrue(e.getMessage().contains("-Xmx"), e.getMessage());
    }

    @Test
    void flatBinaryLoadsAtFlatLoad() throws Exception {
        BootImage img = KernelLoader.load(write("k.bin", new byte[] {(byte) 0xf4}), null,
                new LoadOptions(MIB, "", List.of()));
        assertEquals(Layout.FLAT_LOAD, img.chunks().getFirst().guestAddress());
    }
}
