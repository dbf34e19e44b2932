package dev.jvmm.loader;

import dev.jvmm.memory.Chunk;
import dev.jvmm.arch.x86.EntryState;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvmm.arch.x86.E820;
import dev.jvmm.arch.x86.Layout;
import dev.jvmm.loader.LinuxImages.Hdr;
import dev.jvmm.loader.LinuxImages.Kind;
import dev.jvmm.loader.Images.Seg;
import dev.jvmm.loader.LoadOptions.BootProtocol;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class LinuxLoaderTest extends TempFileTest {
    static final long MIB = 1 << 20;
    static final long MEM = 64 * MIB;
    static final long RSDP = Layout.ACPI_RSDP;

    static LoadOptions opts(String cmdline, List<Path> initrd, BootProtocol boot, boolean hostDecompress) {
        return new LoadOptions(MEM, cmdline, initrd, boot, hostDecompress, RSDP);
    }

    static LoadOptions opts() {
        return opts("console=ttyS0", List.of(), BootProtocol.DEFAULT, true);
    }

    static BootImage load(Path p, LoadOptions o) throws LoadException {
        return KernelLoader.load(p, null, o);
    }

    LoadException fails(Path p, KernelFormat f, LoadOptions o) {
        LoadException e = assertThrows(LoadException.class, () -> KernelLoader.load(p, f, o));
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        assertTrue(e.getMessage().startsWith(p.toString()) || e.getMessage().startsWith(dir.toString()),
                "names the file: " + e.getMessage());
        return e;
    }

    static void assertContains(String message, String... parts) {
        for (String part : parts) {
            assertTrue(message.contains(part), "expected '" + part + "' in: " + message);
        }
    }

    static Chunk chunk(BootImage img, String what) {
        return img.chunks().stream().filter(c -> c.what().equals(what)).findFirst()
                .orElseThrow(() -> new AssertionError("no chunk " + what + " in " + img.chunks()));
    }

    static int u8(byte[] b, int off) {
        return b[off] & 0xff;
    }

    static void assertNoOverlap(BootImage img) {
        List<Chunk> sorted = img.chunks().stream().sorted(java.util.Comparator.comparingLong(Chunk::guestAddress))
                .toList();
        for (int i = 1; i < sorted.size(); i++) {
            assertTrue(sorted.get(i - 1).end() <= sorted.get(i).guestAddress(), "overlap: " + sorted);
        }
    }

    /** Checks the boot loader's fields of a zero page. */
    static void assertZeroPage(byte[] zp, long initrdAddr, long initrdSize) {
        assertEquals(4096, zp.length);
        assertEquals(0xAA55, Bytes.u16(zp, 0x1fe));
        assertEquals(0x53726448, Bytes.u32(zp, 0x202));
        assertEquals(0xff, u8(zp, 0x210));
        assertEquals(0x80, u8(zp, 0x211) & 0x80, "CAN_USE_HEAP");
        assertEquals(0, u8(zp, 0x211) & 0x40, "KEEP_SEGMENTS cleared");
        assertEquals(Layout.CMDLINE, Bytes.u32u(zp, 0x228));
        assertEquals(initrdAddr, Bytes.u32u(zp, 0x218));
        assertEquals(initrdSize, Bytes.u32u(zp, 0x21c));
        assertEquals(RSDP, Bytes.u64(zp, 0x070));
        List<E820.Entry> map = E820.map(MEM);
        assertEquals(map.size(), u8(zp, 0x1e8));
        for (int i = 0; i < map.size(); i++) {
            int off = 0x2d0 + 20 * i;
            assertEquals(map.get(i).base(), Bytes.u64(zp, off));
            assertEquals(map.get(i).length(), Bytes.u64(zp, off + 8));
            assertEquals(map.get(i).type(), Bytes.u32(zp, off + 16));
        }
    }

    // ---- detection ----

    @Test
    void detectsBzImageAndElf64() throws IOException {
        assertEquals(KernelFormat.BZIMAGE, KernelLoader.detect(LinuxImages.bzImage(Hdr.standard(), new byte[16])));
        assertEquals(KernelFormat.ELF, KernelLoader.detect(LinuxImages.vmlinux(null)));
        byte[] noFlag = LinuxImages.bzImage(Hdr.standard(), new byte[16]);
        noFlag[0x1fe] = 0;
        assertEquals(KernelFormat.FLAT, KernelLoader.detect(noFlag));
        // an ELF32 multiboot kernel is still multiboot
        assertEquals(KernelFormat.MULTIBOOT, KernelLoader.detect(
                Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], 16)))));
    }

    // ---- bzImage, host decompression ----

    @ParameterizedTest
    @EnumSource(Kind.class)
    void bzImageWithHostDecompressionEntersTheVmlinux(Kind kind) throws Exception {
        byte[] vmlinux = LinuxImages.vmlinux(0x1000010L);
        Path k = write("bz", LinuxImages.bzImage(Hdr.standard(), LinuxImages.compress(kind, vmlinux)));
        Path initrd = write("initrd", "initrd-bytes".getBytes(StandardCharsets.US_ASCII));
        BootImage img = load(k, opts("console=ttyS0 quiet", List.of(initrd), BootProtocol.DEFAULT, true));
        assertEquals(KernelFormat.BZIMAGE, img.format());
        assertEquals(new EntryState.Long64(0x1000000, Layout.ZERO_PAGE), img.entry());
        Chunk seg = chunk(img, "kernel segment 0");
        assertEquals(0x1000000, seg.guestAddress());
        assertArrayEquals(Images.filled(0x10000, 0x90), seg.data());
        assertEquals(0x10000, seg.zeroFill());
        byte[] zp = chunk(img, "zero page").data();
        Chunk rd = chunk(img, "initrd");
        assertEquals(MEM - 4096, rd.guestAddress());
        assertZeroPage(zp, MEM - 4096, 12);
        assertEquals(0x020f, Bytes.u16(zp, 0x206));
        assertEquals(0x190, Bytes.u32(zp, 0x264), "header copied up to 0x202 + byte at 0x201");
        assertEquals(0, zp[0x270], "nothing copied beyond the header");
        assertEquals(0xffff, Bytes.u16(zp, 0x1fa));
        assertArrayEquals("console=ttyS0 quiet\0".getBytes(StandardCharsets.US_ASCII),
                chunk(img, "kernel command line").data());
        assertEquals(Layout.CMDLINE, chunk(img, "kernel command line").guestAddress());
        assertNoOverlap(img);
    }

    @Test
    void initrdFilesAreConcatenatedBelowInitrdAddrMax() throws Exception {
        Path k = write("bz", LinuxImages.bzImage(Hdr.standard().withInitrdAddrMax(0x2ffffff),
                LinuxImages.compress(Kind.GZIP, LinuxImages.vmlinux(null))));
        Path a = write("a", Images.filled(5000, 'a'));
        Path b = write("b", Images.filled(3, 'b'));
        BootImage img = load(k, opts("", List.of(a, b), BootProtocol.DEFAULT, true));
        Chunk rd = chunk(img, "initrd");
        assertEquals(0x3000000 - 8192, rd.guestAddress());
        assertEquals(5003, rd.data().length);
        assertEquals('b', rd.data()[5002]);
        assertZeroPage(chunk(img, "zero page").data(), 0x3000000 - 8192, 5003);
        assertArrayEquals(new byte[] {0}, chunk(img, "kernel command line").data());
    }

    @Test
    void bzImagePayloadErrors() throws Exception {
        byte[] vmlinux = LinuxImages.vmlinux(null);
        Path unknown = write("unknown", LinuxImages.bzImage(Hdr.standard(), new byte[] {1, 2, 3, 4, 5, 6, 7}));
        assertContains(fails(unknown, null, opts()).getMessage(), "unknown bzImage payload compression",
                "01 02 03 04 05 06");

        byte[] gz = LinuxImages.compress(Kind.GZIP, vmlinux);
        byte[] corrupt = gz.clone();
        for (int i = 20; i < 60; i++) {
            corrupt[i] ^= 0x55;
        }
        assertContains(fails(write("corrupt", LinuxImages.bzImage(Hdr.standard(), corrupt)), null, opts())
                .getMessage(), "corrupt gzip-compressed kernel payload");
        byte[] badLz4 = LinuxImages.compress(Kind.LZ4, vmlinux);
        Bytes.put32(badLz4, 4, 0x7fffffff);
        assertContains(fails(write("badlz4", LinuxImages.bzImage(Hdr.standard(), badLz4)), null, opts())
                .getMessage(), "corrupt lz4-compressed kernel payload");
        byte[] badZstd = LinuxImages.compress(Kind.ZSTD, vmlinux);
        Arrays.fill(badZstd, 8, badZstd.length - 4, (byte) 0xee);
        assertContains(fails(write("badzstd", LinuxImages.bzImage(Hdr.standard(), badZstd)), null, opts())
                .getMessage(), "corrupt zstd-compressed kernel payload");

        byte[] bz = LinuxImages.bzImage(Hdr.standard(), gz);
        Bytes.put32(bz, 0x24c, gz.length + 1000);   // payload_length beyond the file
        assertContains(fails(write("trunc", bz), null, opts()).getMessage(), "truncated bzImage payload");

        Path notElf = write("notelf", LinuxImages.bzImage(Hdr.standard(),
                LinuxImages.compress(Kind.GZIP, Images.filled(1000, 7))));
        assertContains(fails(notElf, null, opts()).getMessage(), "decompressed payload", "not an ELF");
    }

    @Test
    void decompressionBeyondGuestRamIsRefused() throws Exception {
        byte[] zeros = new byte[(int) (17 * MIB)];
        // init_size 32 MiB: guest RAM is the tighter limit here
        Path k = write("bomb", LinuxImages.bzImage(Hdr.standard().withPlacement(false, 0x1000000, 32 * MIB),
                LinuxImages.compress(Kind.GZIP, zeros)));
        LoadOptions small = new LoadOptions(16 * MIB, "", List.of(), BootProtocol.DEFAULT, true, 0);
        assertContains(fails(k, null, small).getMessage(), "decompressed kernel is larger than guest RAM");
    }

    @Test
    void kernelTooBigForRamSaysHowMuchItNeeds() throws Exception {
        Path k = write("bz", LinuxImages.bzImage(Hdr.standard(), LinuxImages.compress(Kind.GZIP,
                LinuxImages.vmlinux(null))));
        LoadOptions small = new LoadOptions(16 * MIB, "", List.of(), BootProtocol.DEFAULT, true, 0);
        assertContains(fails(k, null, small).getMessage(), "needs at least 17M of guest RAM");
        LoadOptions small2 = new LoadOptions(16 * MIB, "", List.of(), BootProtocol.DEFAULT, false, 0);
        assertContains(fails(k, null, small2).getMessage(), "needs at least 20M of guest RAM");
    }

    // ---- bzImage, kernel's own decompressor ----

    @Test
    void bzImageWithoutHostDecompressionLoadsTheProtectedModePart() throws Exception {
        byte[] payload = LinuxImages.compress(Kind.GZIP, LinuxImages.vmlinux(null));
        byte[] file = LinuxImages.bzImage(Hdr.standard(), payload);
        Path k = write("bz", file);
        BootImage img = load(k, opts("x", List.of(), BootProtocol.LONG64, false));
        assertEquals(new EntryState.Long64(0x1000200, Layout.ZERO_PAGE), img.entry());
        Chunk kern = chunk(img, "Linux kernel bz");
        assertEquals(0x1000000, kern.guestAddress());
        assertArrayEquals(Arrays.copyOfRange(file, 1024, file.length), kern.data());
        byte[] zp = chunk(img, "zero page").data();
        assertZeroPage(zp, 0, 0);
        assertEquals(0x1000000, Bytes.u32u(zp, 0x214), "code32_start");

        // setup_sects 0 means 4
        Hdr four = new Hdr(0x020f, 1, 0, false, 0x1000000, 0x400000, 0x200000, 0x7ff, 0x7fffffff);
        byte[] f4 = LinuxImages.bzImage(four, payload);
        img = load(write("bz4", f4), opts("", List.of(), BootProtocol.DEFAULT, false));
        assertArrayEquals(Arrays.copyOfRange(f4, 5 * 512, f4.length), chunk(img, "Linux kernel bz4").data());
    }

    @Test
    void relocatableKernelMovesWhenItsPreferredAddressDoesNotFit() throws Exception {
        byte[] payload = LinuxImages.compress(Kind.GZIP, LinuxImages.vmlinux(null));
        // prefers 60 MiB with 8 MiB init_size: does not fit in 64 MiB; relocatable -> 16 MiB
        Path k = write("bz", LinuxImages.bzImage(Hdr.standard().withPlacement(true, 60 * MIB, 8 * MIB), payload));
        BootImage img = load(k, opts("", List.of(), BootProtocol.DEFAULT, false));
        assertEquals(new EntryState.Long64(16 * MIB + 0x200, Layout.ZERO_PAGE), img.entry());
        Path fixed = write("fixed", LinuxImages.bzImage(Hdr.standard().withPlacement(false, 60 * MIB, 8 * MIB),
                payload));
        assertContains(fails(fixed, null, opts("", List.of(), BootProtocol.DEFAULT, false)).getMessage(),
                "needs at least 68M of guest RAM");
        Path low = write("low", LinuxImages.bzImage(Hdr.standard().withPlacement(false, 0x1000, 8 * MIB), payload));
        assertContains(fails(low, null, opts("", List.of(), BootProtocol.DEFAULT, false)).getMessage(),
                "not relocatable");
    }

    // ---- bzImage header errors ----

    @Test
    void bzImageHeaderErrors() throws Exception {
        byte[] payload = LinuxImages.compress(Kind.GZIP, LinuxImages.vmlinux(null));
        assertContains(fails(write("old", LinuxImages.bzImage(Hdr.standard().withVersion(0x020b), payload)), null,
                opts()).getMessage(), "boot protocol 2.11 is too old", "2.12");
        assertContains(fails(write("32", LinuxImages.bzImage(Hdr.standard().withXloadflags(0), payload)), null,
                opts()).getMessage(), "not a 64-bit capable kernel");
        byte[] full = LinuxImages.bzImage(Hdr.standard(), payload);
        assertContains(fails(write("trunc", Arrays.copyOf(full, 0x240)), null, opts()).getMessage(),
                "truncated bzImage setup header");
        assertContains(fails(write("nopm", Arrays.copyOf(full, 1024)), null, opts()).getMessage(),
                "truncated bzImage");
        assertContains(fails(write("pvh", full), null, opts("", List.of(), BootProtocol.PVH, true)).getMessage(),
                "PVH boot needs the kernel's ELF vmlinux");
        assertContains(fails(write("flat", new byte[100]), KernelFormat.BZIMAGE, opts()).getMessage(),
                "not a Linux bzImage");
    }

    @Test
    void commandLineLimits() throws Exception {
        byte[] payload = LinuxImages.compress(Kind.GZIP, LinuxImages.vmlinux(null));
        Path k = write("bz", LinuxImages.bzImage(Hdr.standard().withCmdlineSize(100), payload));
        load(k, opts("x".repeat(100), List.of(), BootProtocol.DEFAULT, true));
        assertContains(fails(k, null, opts("x".repeat(101), List.of(), BootProtocol.DEFAULT, true)).getMessage(),
                "command line is too long", "101 bytes", "at most 100");
        // before protocol 2.06 (never accepted here anyway) the limit would be 255; an ELF kernel gets 2047
        Path elf = write("vmlinux", LinuxImages.vmlinux(null));
        load(elf, opts("y".repeat(2047), List.of(), BootProtocol.LONG64, true));
        assertContains(fails(elf, null, opts("y".repeat(2048), List.of(), BootProtocol.LONG64, true)).getMessage(),
                "command line is too long");
        assertContains(fails(elf, null, opts("a\0b", List.of(), BootProtocol.LONG64, true)).getMessage(), "NUL");
    }

    @Test
    void initrdThatDoesNotFitIsRefused() throws Exception {
        Path k = write("bz", LinuxImages.bzImage(Hdr.standard(), LinuxImages.compress(Kind.GZIP,
                LinuxImages.vmlinux(null))));
        Path big = write("big.cpio", new byte[(int) (48 * MIB)]);
        LoadException e = fails(k, null, opts("", List.of(big), BootProtocol.DEFAULT, true));
        assertContains(e.getMessage(), "big.cpio", "initrd of", "does not fit", "needs at least 65M");
    }

    // ---- ELF vmlinux ----

    @Test
    void elfVmlinuxLong64BuildsAZeroPageFromScratch() throws Exception {
        Path k = write("vmlinux", LinuxImages.vmlinux(0x1000010L));
        Path rd = write("rd", new byte[10000]);
        BootImage img = load(k, opts("console=ttyS0", List.of(rd), BootProtocol.LONG64, true));
        assertEquals(KernelFormat.ELF, img.format());
        assertEquals(new EntryState.Long64(0x1000000, Layout.ZERO_PAGE), img.entry());
        byte[] zp = chunk(img, "zero page").data();
        assertZeroPage(zp, MEM - 3 * 4096, 10000);
        assertEquals(0x020f, Bytes.u16(zp, 0x206));
        assertEquals(0x200000, Bytes.u32(zp, 0x230));
        assertEquals(2047, Bytes.u32(zp, 0x238));
        assertNoOverlap(img);
    }

    @Test
    void elfEntryAtAVirtualAddressIsTranslated() throws Exception {
        byte[] elf = LinuxImages.elf64(0xffffffff81000040L,
                List.of(new Seg(0x1000000, 0xffffffff81000000L, new byte[256], 256)), null, false);
        BootImage img = load(write("v", elf), opts());
        assertEquals(new EntryState.Long64(0x1000040, Layout.ZERO_PAGE), img.entry());
    }

    @Test
    void elfPvhUsesTheXenNoteAndBuildsStartInfo() throws Exception {
        for (boolean asSection : new boolean[] {false, true}) {
            byte[] elf = LinuxImages.elf64(0x1000000, List.of(new Seg(0x1000000, 0xffffffff81000000L,
                    new byte[0x1000], 0x2000)), 0x1000abcL, asSection);
            Path k = write("pvh" + asSection, elf);
            Path rd = write("rd", new byte[5000]);
            assertInstanceOf(EntryState.Long64.class, load(k, opts("", List.of(), BootProtocol.DEFAULT, true)).entry(),
                    "a vmlinux with both entries boots through the 64-bit one by default");
            BootImage img = load(k, opts("root=/dev/vda", List.of(rd), BootProtocol.PVH, true));
            assertEquals(new EntryState.Protected32(0x1000abc, 0, Layout.PVH_START_INFO, 0), img.entry());
            Chunk si = chunk(img, "PVH start info");
            assertEquals(Layout.PVH_START_INFO, si.guestAddress());
            byte[] b = si.data();
            assertEquals(0x336ec578, Bytes.u32(b, 0));
            assertEquals(1, Bytes.u32(b, 4));
            assertEquals(0, Bytes.u32(b, 8));
            assertEquals(1, Bytes.u32(b, 12));
            long modlist = Bytes.u64(b, 16);
            assertEquals(Layout.CMDLINE, Bytes.u64(b, 24));
            assertEquals(RSDP, Bytes.u64(b, 32));
            long memmap = Bytes.u64(b, 40);
            List<E820.Entry> map = E820.map(MEM);
            assertEquals(map.size(), Bytes.u32(b, 48));
            int m = (int) (modlist - Layout.PVH_START_INFO);
            assertEquals(MEM - 8192, Bytes.u64(b, m));
            assertEquals(5000, Bytes.u64(b, m + 8));
            assertEquals(MEM - 8192, chunk(img, "initrd").guestAddress());
            for (int i = 0; i < map.size(); i++) {
                int off = (int) (memmap - Layout.PVH_START_INFO) + 24 * i;
                assertEquals(map.get(i).base(), Bytes.u64(b, off));
                assertEquals(map.get(i).length(), Bytes.u64(b, off + 8));
                assertEquals(map.get(i).type(), Bytes.u32(b, off + 16));
            }
            assertTrue(Layout.PVH_START_INFO + b.length <= Layout.ZERO_PAGE);
            assertArrayEquals("root=/dev/vda\0".getBytes(StandardCharsets.US_ASCII),
                    chunk(img, "kernel command line").data());
            assertTrue(img.chunks().stream().noneMatch(c -> c.what().equals("zero page")));
            assertNoOverlap(img);

            // LONG64 forced on a kernel with the note
            assertInstanceOf(EntryState.Long64.class,
                    load(k, opts("", List.of(), BootProtocol.LONG64, true)).entry());
        }
    }

    @Test
    void elfErrors() throws Exception {
        Path noNote = write("nonote", LinuxImages.vmlinux(null));
        assertContains(fails(noNote, null, opts("", List.of(), BootProtocol.PVH, true)).getMessage(),
                "no Xen PVH entry note");
        byte[] arm = LinuxImages.vmlinux(null);
        Bytes.put16(arm, 18, 183);
        assertContains(fails(write("arm", arm), null, opts()).getMessage(), "not an x86-64 ELF file");
        assertContains(fails(write("flat", new byte[100]), KernelFormat.ELF, opts()).getMessage(), "not an ELF file");
        byte[] trunc = LinuxImages.vmlinux(null);
        assertContains(fails(write("trunc", Arrays.copyOf(trunc, 0x2000)), null, opts()).getMessage(),
                "truncated ELF file");
        byte[] low = LinuxImages.elf64(0x1000, List.of(new Seg(0x1000, new byte[16], 16)), null, false);
        assertContains(fails(write("low", low), null, opts()).getMessage(), "below 1 MiB");
        byte[] overlap = LinuxImages.elf64(0x1000000, List.of(new Seg(0x1000000, new byte[16], 0x2000),
                new Seg(0x1001000, new byte[16], 16)), null, false);
        assertContains(fails(write("overlap", overlap), null, opts()).getMessage(), "overlaps");
        byte[] huge = LinuxImages.elf64(0x1000000, List.of(new Seg(0x1000000, new byte[16], 0x7fff_ffff_ffff_ff00L)),
                null, false);
        assertContains(fails(write("huge", huge), null, opts()).getMessage(), "overflows");
        byte[] big = LinuxImages.elf64(0x1000000, List.of(new Seg(0x1000000, new byte[16], 100 * MIB)), null, false);
        assertContains(fails(write("big", big), null, opts()).getMessage(), "needs at least 116M of guest RAM");
        byte[] badEntry = LinuxImages.elf64(0x5000000, List.of(new Seg(0x1000000, new byte[16], 16)), null, false);
        assertContains(fails(write("entry", badEntry), null, opts()).getMessage(), "entry point");
        byte[] badPvh = LinuxImages.elf64(0x1000000, List.of(new Seg(0x1000000, new byte[16], 16)), 0x9000L, false);
        assertContains(fails(write("badpvh", badPvh), null, opts("", List.of(), BootProtocol.PVH, true)).getMessage(),
                "PVH entry point");
    }

    // ---- real kernels, when the shared directory has them ----

    static final Path SHARED = Path.of("../shared/guest-kernels");

    static Path shared(String name) {
        Path p = SHARED.resolve(name);
        assumeTrue(Files.isRegularFile(p), "no " + p + " (optional real kernel images)");
        return p;
    }

    /** A real kernel loaded as jvmm would load it into 256 MiB with console=ttyS0. */
    static BootImage loadReal(Path kernel, List<Path> initrd, BootProtocol boot, boolean hostDecompress) throws LoadException {
        return load(kernel, new LoadOptions(256 * MIB, "console=ttyS0", initrd, boot, hostDecompress, RSDP));
    }

    static long kernelEnd(BootImage img) {
        return img.chunks().stream().filter(c -> c.what().startsWith("kernel segment"))
                .mapToLong(Chunk::end).max().orElseThrow();
    }

    @Test
    void realBzImageWithHostDecompression() throws Exception {
        Path k = shared("microvm-6.1.192.bzImage");
        Path rd = write("rd", new byte[4096]);
        BootImage img = loadReal(k, List.of(rd), BootProtocol.DEFAULT, true);
        assertEquals(KernelFormat.BZIMAGE, img.format());
        assertEquals(new EntryState.Long64(0x1000000, Layout.ZERO_PAGE), img.entry());
        long end = kernelEnd(img);
        assertTrue(end > 0x1800000 && end < 0x4000000, "kernel end " + Long.toHexString(end));
        byte[] zp = chunk(img, "zero page").data();
        assertTrue(Bytes.u16(zp, 0x206) >= 0x020c);
        assertEquals(256 * MIB - 4096, Bytes.u32u(zp, 0x218));
        assertNoOverlap(img);
    }

    @Test
    void realBzImageWithoutHostDecompression() throws Exception {
        Path k = shared("microvm-6.1.192.bzImage");
        BootImage img = loadReal(k, List.of(), BootProtocol.DEFAULT, false);
        EntryState.Long64 e = assertInstanceOf(EntryState.Long64.class, img.entry());
        assertEquals(0x1000200, e.rip());
        assertNoOverlap(img);
    }

    @Test
    void realVmlinuxLong64AndPvh() throws Exception {
        Path k = shared("microvm-6.1.192.vmlinux");
        BootImage img = loadReal(k, List.of(), BootProtocol.LONG64, true);
        assertEquals(KernelFormat.ELF, img.format());
        assertEquals(new EntryState.Long64(0x1000000, Layout.ZERO_PAGE), img.entry());
        assertNotNull(chunk(img, "zero page"));

        EntryState.Protected32 p = assertInstanceOf(EntryState.Protected32.class, loadReal(k, List.of(), BootProtocol.PVH, true)
                .entry());
        assertTrue(p.eip() >= 0x1000000 && p.eip() < 0x4000000, "PVH entry " + Long.toHexString(p.eip()));
        assertEquals(Layout.PVH_START_INFO, p.ebx());
    }

    // ---- the bundled ELF64 test guests (guests/hello64.S, guests/pvh.S) ----

    static Path guest(String name) {
        String dirName = System.getProperty("jvmm.guests");
        assumeTrue(dirName != null, "jvmm.guests not set (run under Maven)");
        Path p = Path.of(dirName, name);
        assumeTrue(Files.isRegularFile(p), "no " + p);
        return p;
    }

    @Test
    void bundledGuestsLoad() throws Exception {
        BootImage hello = load(guest("hello64.elf"), opts());
        assertEquals(KernelFormat.ELF, hello.format());
        assertEquals(new EntryState.Long64(0x100000, Layout.ZERO_PAGE), hello.entry());
        assertEquals(0x100000, chunk(hello, "kernel segment 0").guestAddress());
        BootImage pvh = load(guest("pvh.elf"), opts());
        assertEquals(new EntryState.Protected32(0x100000, 0, Layout.PVH_START_INFO, 0), pvh.entry());
    }
}
