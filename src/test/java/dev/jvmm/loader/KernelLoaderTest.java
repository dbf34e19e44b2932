package dev.jvmm.loader;

import dev.jvmm.memory.Chunk;
import dev.jvmm.arch.x86.EntryState;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.loader.Images.Seg;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class KernelLoaderTest extends TempFileTest {
    static final long MIB = 1 << 20;
    static final long MEM = 64 * MIB;

    static LoadOptions opts() {
        return new LoadOptions(MEM, "", List.of());
    }

    LoadException fails(Path p, KernelFormat f, LoadOptions o) {
        LoadException e = assertThrows(LoadException.class, () -> KernelLoader.load(p, f, o));
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e;
    }

    static void assertContains(String message, String... parts) {
        for (String part : parts) {
            assertTrue(message.contains(part), "expected '" + part + "' in: " + message);
        }
    }

    // ---- detection and flat binaries ----

    @Test
    void flatBinaryIsLoadedAtFlatLoadAndEnteredInRealMode() throws Exception {
        byte[] code = {(byte) 0xfa, (byte) 0xf4};
        BootImage img = KernelLoader.load(write("k.bin", code), null, new LoadOptions(MEM, "ignored", List.of()));
        assertEquals(KernelFormat.FLAT, img.format());
        assertEquals(1, img.chunks().size());
        assertEquals(Layout.FLAT_LOAD, img.chunks().getFirst().guestAddress());
        assertArrayEquals(code, img.chunks().getFirst().data());
        assertEquals(new EntryState.RealMode(0x1000, 0, 0x8000), img.entry());
    }

    @Test
    void detectsMultibootHeaderAtAlignedOffsetsOnly() {
        byte[] img = new byte[8192];
        System.arraycopy(Images.mbHeader(3), 0, img, 8192 - 12, 12);
        assertEquals(KernelFormat.MULTIBOOT, KernelLoader.detect(img));
        byte[] unaligned = new byte[8192];
        System.arraycopy(Images.mbHeader(3), 0, unaligned, 102, 12);
        assertEquals(KernelFormat.FLAT, KernelLoader.detect(unaligned));
        byte[] tooFar = new byte[9000];
        System.arraycopy(Images.mbHeader(3), 0, tooFar, 8192, 12);
        assertEquals(KernelFormat.FLAT, KernelLoader.detect(tooFar));
        byte[] badSum = Images.mbHeader(3);
        badSum[8]++;
        assertEquals(KernelFormat.FLAT, KernelLoader.detect(badSum));
    }

    @Test
    void forcedFlatIgnoresMultibootHeader() throws Exception {
        byte[] elf = Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], 16)));
        BootImage img = KernelLoader.load(write("k.elf", elf), KernelFormat.FLAT, opts());
        assertEquals(KernelFormat.FLAT, img.format());
    }

    @Test
    void forcedMultibootWithoutHeaderFails() throws Exception {
        assertContains(fails(write("k.bin", new byte[64]), KernelFormat.MULTIBOOT, opts()).getMessage(),
                "k.bin", "no multiboot header");
    }

    @Test
    void flatBinaryTooLargeForRam() throws Exception {
        Path p = write("big.bin", new byte[(int) (MIB - Layout.FLAT_LOAD + 1)]);
        assertContains(fails(p, null, new LoadOptions(MIB, "", List.of())).getMessage(), "big.bin", "too large");
        // exactly filling RAM is fine
        Path ok = write("fits.bin", new byte[(int) (MIB - Layout.FLAT_LOAD)]);
        KernelLoader.load(ok, null, new LoadOptions(MIB, "", List.of()));
    }

    @Test
    void fileLargerThanMemoryIsRejectedBeforeReading() throws Exception {
        Path p = write("huge.bin", new byte[4096]);
        assertContains(fails(p, null, new LoadOptions(1024, "", List.of())).getMessage(), "huge.bin", "too large");
    }

    @Test
    void flatBinaryWithInitrdIsRejected() throws Exception {
        Path initrd = write("initrd", new byte[10]);
        assertContains(fails(write("k.bin", new byte[10]), null, new LoadOptions(MEM, "", List.of(initrd)))
                .getMessage(), "k.bin", "flat binary");
    }

    @Test
    void fileErrors() throws Exception {
        assertContains(fails(dir.resolve("missing.bin"), null, opts()).getMessage(), "missing.bin", "no such");
        assertContains(fails(dir, null, opts()).getMessage(), "not a regular file");
        assertContains(fails(write("empty.bin", new byte[0]), null, opts()).getMessage(), "empty.bin", "empty");
    }

    @Test
    void unreadableFile() throws Exception {
        Path p = write("secret.bin", new byte[4]);
        try {
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("---------"));
        } catch (UnsupportedOperationException e) {
            assumeTrue(false, "no POSIX permissions here");
        }
        assumeFalse(Files.isReadable(p), "running as root: permissions are not enforced");
        assertContains(fails(p, null, opts()).getMessage(), "secret.bin", "not readable");
    }

    // ---- multiboot ELF ----

    @Test
    void loadsElfSegmentsWithBssAndEntry() throws Exception {
        byte[] text = Images.filled(100, 0x90);
        byte[] data = Images.filled(8, 0x11);
        byte[] elf = Images.elf(0x100010, 3, List.of(new Seg(0x100000, text, 100),
                new Seg(0x102000, data, 0x1000)));
        BootImage img = KernelLoader.load(write("k.elf", elf), null, opts());
        assertEquals(KernelFormat.MULTIBOOT, img.format());
        Chunk c0 = img.chunks().get(0);
        Chunk c1 = img.chunks().get(1);
        assertEquals(0x100000, c0.guestAddress());
        assertArrayEquals(text, c0.data());
        assertEquals(0, c0.zeroFill());
        assertEquals(0x102000, c1.guestAddress());
        assertArrayEquals(data, c1.data());
        assertEquals(0x1000 - 8, c1.zeroFill());
        assertEquals(new EntryState.Protected32(0x100010, 0x2BADB002L, Layout.MULTIBOOT_INFO, 0), img.entry());
        Chunk info = img.chunks().getLast();
        assertEquals(Layout.MULTIBOOT_INFO, info.guestAddress());
    }

    @Test
    void higherHalfEntryIsTranslatedToPhysical() throws Exception {
        byte[] elf = Images.elf(0xc0100004L, 3, List.of(new Seg(0x100000, 0xc0100000L, new byte[16], 16)));
        BootImage img = KernelLoader.load(write("k.elf", elf), null, opts());
        assertEquals(0x100004, ((EntryState.Protected32) img.entry()).eip());
    }

    @Test
    void elfErrors() throws Exception {
        byte[] ok = Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], 16)));
        assertContains(fails(write("e64.elf", Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], 16)),
                2, 62)), null, opts()).getMessage(), "e64.elf", "ELF32");
        assertContains(fails(write("arm.elf", Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], 16)),
                1, 40)), null, opts()).getMessage(), "arm.elf", "i386");

        byte[] truncSeg = java.util.Arrays.copyOf(ok, ok.length - 1);
        assertContains(fails(write("t1.elf", truncSeg), null, opts()).getMessage(), "t1.elf", "truncated",
                "segment 0");

        byte[] manyPh = ok.clone();
        ByteBuffer.wrap(manyPh).order(ByteOrder.LITTLE_ENDIAN).putShort(44, (short) 200);
        assertContains(fails(write("t2.elf", manyPh), null, opts()).getMessage(), "t2.elf", "truncated",
                "program headers");

        byte[] shortHdr = new byte[200];
        System.arraycopy(ok, 0, shortHdr, 0, 40);
        System.arraycopy(Images.mbHeader(3), 0, shortHdr, 100, 12);
        byte[] tiny = java.util.Arrays.copyOf(shortHdr, 40);   // header cut short, but no mb header then
        assertEquals(KernelFormat.FLAT, KernelLoader.detect(tiny));

        byte[] entryOutside = Images.elf(0x300000, 3, List.of(new Seg(0x100000, new byte[16], 16)));
        assertContains(fails(write("ent.elf", entryOutside), null, opts()).getMessage(), "entry point");

        byte[] notElf = new byte[64];
        System.arraycopy(Images.mbHeader(3), 0, notElf, 0, 12);
        assertContains(fails(write("raw.mb", notElf), null, opts()).getMessage(), "raw.mb", "not an ELF");
    }

    @Test
    void segmentsMustNotOverlapOrLeaveRam() throws Exception {
        byte[] overlap = Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], 0x2000),
                new Seg(0x101000, new byte[16], 16)));
        assertContains(fails(write("ov.elf", overlap), null, opts()).getMessage(), "ov.elf", "overlaps");

        byte[] low = Images.elf(0x9000, 3, List.of(new Seg(0x9000, new byte[16], 16)));
        assertContains(fails(write("low.elf", low), null, opts()).getMessage(), "low.elf", "outside guest RAM");

        byte[] beyond = Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], MEM)));
        assertContains(fails(write("big.elf", beyond), null, opts()).getMessage(), "outside guest RAM");

        long hole = Layout.MMIO_HOLE_START;
        byte[] inHole = Images.elf(hole, 3, List.of(new Seg(hole, new byte[16], 16)));
        assertContains(fails(write("hole.elf", inHole), null, new LoadOptions(4 * Layout.FOUR_GIB, "", List.of()))
                .getMessage(), "outside guest RAM");

        byte[] wraps = Images.elf(0xfffff000L, 3, List.of(new Seg(0xfffff000L, new byte[16], 0xffffffffL)));
        assertContains(fails(write("wrap.elf", wraps), null, opts()).getMessage(), "outside guest RAM");
    }

    @Test
    void unsupportedRequiredFlagsAreRejected() throws Exception {
        byte[] elf = Images.elf(0x100000, 3 | 4 | 8, List.of(new Seg(0x100000, new byte[16], 16)));
        assertContains(fails(write("f.elf", elf), null, opts()).getMessage(), "f.elf", "unsupported", "0x8");
        // bit 2 (video mode request) and optional bits above 16 (other than 16) are accepted
        byte[] video = Images.elf(0x100000, 7 | (1 << 20), List.of(new Seg(0x100000, new byte[16], 16)));
        KernelLoader.load(write("v.elf", video), null, opts());
    }

    // ---- a.out kludge ----

    @Test
    void aoutKludgeLoadsByHeaderAddresses() throws Exception {
        int flags = 3 | (1 << 16);
        // file: [0,0x40) junk, header at 0x40, image is the whole file loaded at 0x200000
        byte[] file = new byte[0x400];
        for (int i = 0; i < file.length; i++) {
            file[i] = (byte) i;
        }
        System.arraycopy(Images.mbHeaderAout(flags, 0x200040, 0x200000, 0x200300, 0x205000, 0x200080),
                0, file, 0x40, 32);
        BootImage img = KernelLoader.load(write("aout.bin", file), null, opts());
        Chunk k = img.chunks().getFirst();
        assertEquals(0x200000, k.guestAddress());
        assertEquals(0x300, k.data().length);
        assertEquals(0x205000 - 0x200300, k.zeroFill());
        assertEquals(file[0x41], k.data()[0x41]);
        assertEquals(0x200080, ((EntryState.Protected32) img.entry()).eip());

        // load_end_addr 0: load to the end of the file; bss_end_addr 0: no bss
        System.arraycopy(Images.mbHeaderAout(flags, 0x200040, 0x200000, 0, 0, 0x200080), 0, file, 0x40, 32);
        k = KernelLoader.load(write("aout2.bin", file), null, opts()).chunks().getFirst();
        assertEquals(0x400, k.data().length);
        assertEquals(0, k.zeroFill());

        // asks for more than the file holds
        System.arraycopy(Images.mbHeaderAout(flags, 0x200040, 0x200000, 0x200500, 0, 0x200080), 0, file, 0x40, 32);
        assertContains(fails(write("aout3.bin", file), null, opts()).getMessage(), "aout3.bin", "truncated");

        // load_addr above header_addr
        System.arraycopy(Images.mbHeaderAout(flags, 0x200040, 0x200100, 0, 0, 0x200180), 0, file, 0x40, 32);
        assertContains(fails(write("aout4.bin", file), null, opts()).getMessage(), "load_addr");

        // header cut off before the address fields
        byte[] cut = java.util.Arrays.copyOf(Images.mbHeaderAout(flags, 0, 0, 0, 0, 0), 20);
        assertContains(fails(write("aout5.bin", cut), null, opts()).getMessage(), "aout5.bin", "truncated");
    }

    // ---- multiboot information ----

    @Test
    void infoBlockDescribesMemoryCmdlineModulesAndMmap() throws Exception {
        byte[] elf = Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[0x1800], 0x1800)));
        Path m1 = write("initrd.img", "HELLOMODULE".getBytes(StandardCharsets.US_ASCII));
        Path m2 = write("second.dat", new byte[5000]);
        long mem = 5L * Layout.FOUR_GIB / 4 + 123 * MIB;   // 5 GiB + 123 MiB: some RAM above 4 GiB
        BootImage img = KernelLoader.load(write("k.elf", elf), null,
                new LoadOptions(mem, "console=ttyS0 cpus=2", List.of(m1, m2)));
        GuestMemory g = new GuestMemory(img.chunks());

        long info = Layout.MULTIBOOT_INFO;
        int flags = g.u32(info);
        assertEquals(1 | 4 | 8 | 64 | 512, flags);
        assertEquals(639, g.u32(info + 4));
        assertEquals((Layout.MMIO_HOLE_START - MIB) / 1024, g.u32(info + 8) & 0xffffffffL);
        assertEquals("console=ttyS0 cpus=2", g.string(g.u32(info + 16)));
        assertEquals("jvmm", g.string(g.u32(info + 64)));

        assertEquals(2, g.u32(info + 20));
        long mods = g.u32(info + 24);
        long m1Start = g.u32(mods), m1End = g.u32(mods + 4);
        assertEquals(0x102000, m1Start);   // page aligned after the kernel's end (0x101800)
        assertEquals(11, m1End - m1Start);
        assertEquals("initrd.img", g.string(g.u32(mods + 8)));
        assertEquals("HELLOMODULE", new String(g.bytes(m1Start, 11), StandardCharsets.US_ASCII));
        long m2Start = g.u32(mods + 16);
        assertEquals(0x103000, m2Start);
        assertEquals(5000, g.u32(mods + 20) - m2Start);
        assertEquals("second.dat", g.string(g.u32(mods + 24)));

        int mmapLen = g.u32(info + 44);
        long mmap = g.u32(info + 48);
        assertEquals(4 * 24, mmapLen);
        long[][] expected = {
            {0, 0x9fc00, 1}, {0x9fc00, 0x100000 - 0x9fc00, 2},
            {0x100000, Layout.MMIO_HOLE_START - 0x100000, 1},
            {Layout.FOUR_GIB, mem - Layout.MMIO_HOLE_START, 1}};
        for (int i = 0; i < 4; i++) {
            long e = mmap + 24L * i;
            assertEquals(20, g.u32(e));
            assertEquals(expected[i][0], g.u64(e + 4), "base of entry " + i);
            assertEquals(expected[i][1], g.u64(e + 12), "length of entry " + i);
            assertEquals(expected[i][2], g.u32(e + 20), "type of entry " + i);
        }
        // every structure stays inside the info area
        Chunk infoChunk = img.chunks().getLast();
        assertTrue(infoChunk.end() <= Layout.MULTIBOOT_INFO_END);
    }

    @Test
    void infoWithoutModulesHasNoModsFlagAndSmallRam() throws Exception {
        byte[] elf = Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], 16)));
        BootImage img = KernelLoader.load(write("k.elf", elf), null, new LoadOptions(32 * MIB, "", List.of()));
        GuestMemory g = new GuestMemory(img.chunks());
        int flags = g.u32(Layout.MULTIBOOT_INFO);
        assertEquals(0, flags & 8);
        assertEquals(31 * 1024, g.u32(Layout.MULTIBOOT_INFO + 8));
        assertEquals("", g.string(g.u32(Layout.MULTIBOOT_INFO + 16)));
        assertEquals(3 * 24, g.u32(Layout.MULTIBOOT_INFO + 44));
    }

    @Test
    void moduleErrors() throws Exception {
        byte[] elf = Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], 16)));
        Path k = write("k.elf", elf);
        Path big = write("big.img", new byte[(int) (2 * MIB)]);
        assertContains(fails(k, null, new LoadOptions(2 * MIB, "", List.of(big))).getMessage(), "big.img",
                "too large");
        Path a = write("a.img", new byte[(int) (MIB / 2)]);
        Path b = write("b.img", new byte[(int) (MIB / 2)]);
        assertContains(fails(k, null, new LoadOptions(2 * MIB, "", List.of(a, b))).getMessage(), "b.img");
        assertContains(fails(k, null, new LoadOptions(MEM, "", List.of(dir.resolve("nope.img")))).getMessage(),
                "nope.img", "no such");
    }

    @Test
    void overlongCmdlineOverflowsInfoArea() throws Exception {
        byte[] elf = Images.elf(0x100000, 3, List.of(new Seg(0x100000, new byte[16], 16)));
        String longCmd = "x".repeat((int) (Layout.MULTIBOOT_INFO_END - Layout.MULTIBOOT_INFO));
        assertContains(fails(write("k.elf", elf), null, new LoadOptions(MEM, longCmd, List.of())).getMessage(),
                "k.elf", "multiboot information does not fit");
        assertContains(fails(write("k2.elf", elf), null, new LoadOptions(MEM, "a\0b", List.of())).getMessage(),
                "NUL");
    }

    // ---- the real guests built by make ----

    @Test
    void builtGuestsAreDetected() throws Exception {
        String prop = System.getProperty("jvmm.guests");
        assumeTrue(prop != null, "jvmm.guests not set (run through Maven to build the guests)");
        Path guests = Path.of(prop);
        BootImage mb = KernelLoader.load(guests.resolve("mbhello.elf"), null,
                new LoadOptions(MEM, "hello", List.of()));
        assertEquals(KernelFormat.MULTIBOOT, mb.format());
        assertEquals(0x100000, mb.chunks().getFirst().guestAddress());
        BootImage smp = KernelLoader.load(guests.resolve("smp.elf"), null, new LoadOptions(MEM, "cpus=2", List.of()));
        assertEquals(KernelFormat.MULTIBOOT, smp.format());
        for (String flat : List.of("hello", "echo", "spin", "reset", "triple", "pmint3")) {
            BootImage img = KernelLoader.load(guests.resolve(flat + ".bin"), null, opts());
            assertEquals(KernelFormat.FLAT, img.format(), flat);
            assertEquals(new EntryState.RealMode(0x1000, 0, 0x8000), img.entry());
        }
    }

    /** Reassembles guest memory from chunks, for reading the info block back. */
    static final class GuestMemory {
        private final List<Chunk> chunks;

        GuestMemory(List<Chunk> chunks) {
            this.chunks = new ArrayList<>(chunks);
        }

        byte at(long gpa) {
            for (Chunk c : chunks) {
                if (gpa >= c.guestAddress() && gpa < c.end()) {
                    long off = gpa - c.guestAddress();
                    return off < c.data().length ? c.data()[(int) off] : 0;
                }
            }
            throw new AssertionError("address " + Long.toHexString(gpa) + " not loaded");
        }

        byte[] bytes(long gpa, int n) {
            byte[] b = new byte[n];
            for (int i = 0; i < n; i++) {
                b[i] = at(gpa + i);
            }
            return b;
        }

        int u32(long gpa) {
            return ByteBuffer.wrap(bytes(gpa, 4)).order(ByteOrder.LITTLE_ENDIAN).getInt();
        }

        long u64(long gpa) {
            return ByteBuffer.wrap(bytes(gpa, 8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
        }

        String string(long gpa) {
            StringBuilder sb = new StringBuilder();
            for (long a = gpa; at(a) != 0; a++) {
                sb.append((char) at(a));
            }
            return sb.toString();
        }
    }
}
