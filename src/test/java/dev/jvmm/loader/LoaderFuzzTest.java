package dev.jvmm.loader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jvmm.arch.x86.EntryState;
import dev.jvmm.arch.x86.Layout;
import dev.jvmm.loader.LoadOptions.BootProtocol;
import dev.jvmm.memory.Chunk;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;

/**
 * Jazzer targets for the loaders: ELF64 (64-bit and PVH entry), multiboot (ELF32 and a.out kludge),
 * bzImage with and without host decompression, each payload decompressor, and the whole file path.
 * The last byte of an input picks the options, the rest is the image. Invariants: only
 * {@link LoadException} escapes, with a one-line message; what loads lies in guest RAM below the MMIO
 * hole, chunks do not overlap, and the entry point is inside a loaded chunk; decompressed output
 * stays within its limit; memory allocated stays within a small multiple of the input and the limits.
 */
class LoaderFuzzTest {
    static final long MIB = 1L << 20;
    static final long[] MEM = {MIB, 16 * MIB, 64 * MIB, 4096 * MIB};
    static final Path FILE = Path.of("fuzz-image");
    static final Path DIR;

    static {
        try {
            DIR = Files.createTempDirectory("jvmm-loader-fuzz");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The files the fuzz targets wrote (deleteOnExit cannot remove a directory that is not empty). */
    @org.junit.jupiter.api.AfterAll
    static void removeTheirFiles() throws IOException {
        try (var files = Files.walk(DIR)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    /** Options from one byte: memory size, boot protocol, host decompression. */
    static LoadOptions options(int b, List<Path> modules) {
        BootProtocol boot = BootProtocol.values()[b % 3];
        long mem = MEM[(b / 3) % 4];
        boolean host = (b / 12) % 2 == 0;
        return new LoadOptions(mem, "console=ttyS0", modules, boot, host, (b & 0x80) != 0 ? Layout.ACPI_RSDP : 0);
    }

    /** Bytes allocated by this thread so far. */
    static long allocated() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    interface Load {
        BootImage load() throws LoadException;
    }

    /** Runs a load; a LoadException is fine (one line), anything else escapes as a finding. */
    static BootImage attempt(Load l, long inputBytes, long decompressLimit) {
        long before = allocated();
        try {
            return l.load();
        } catch (LoadException e) {
            assertFalse(e.getMessage() == null || e.getMessage().contains("\n"), "one line: " + e.getMessage());
            return null;
        } finally {
            long used = allocated() - before;
            // the image, copies of its segments, the decompressed kernel and its growth, a dictionary
            long bound = 6 * inputBytes + 3 * decompressLimit + 96 * MIB;
            assertTrue(used <= bound, "allocated " + used + " bytes for a " + inputBytes + "-byte input");
        }
    }

    static void check(BootImage img, LoadOptions o) {
        if (img == null) return;
        long lowRam = Math.min(Layout.lowRamSize(o.memSize()), Layout.MMIO_HOLE_START);
        for (Chunk c : img.chunks()) {
            assertTrue(c.guestAddress() >= 0 && c.zeroFill() >= 0, c.toString());
            assertTrue(c.end() <= lowRam && c.end() >= c.guestAddress(), c.what() + " [" + Long.toHexString(c.guestAddress())
                    + ", " + Long.toHexString(c.end()) + ") outside RAM ending at " + Long.toHexString(lowRam));
        }
        List<Chunk> sorted = img.chunks().stream().sorted(Comparator.comparingLong(Chunk::guestAddress)).toList();
        for (int i = 1; i < sorted.size(); i++) {
            assertTrue(sorted.get(i - 1).end() <= sorted.get(i).guestAddress(), "overlap: " + sorted.get(i - 1).what()
                    + " and " + sorted.get(i).what());
        }
        long entry = switch (img.entry()) {
            case EntryState.Long64 l -> l.rip();
            case EntryState.Protected32 p -> p.eip();
            case EntryState.RealMode r -> Layout.FLAT_LOAD;
        };
        assertTrue(img.chunks().stream().anyMatch(c -> entry >= c.guestAddress() && entry < c.end()),
                "entry 0x" + Long.toHexString(entry) + " outside every chunk");
    }

    @FuzzTest(maxDuration = "30s")
    void elf64(FuzzedDataProvider d) {
        LoadOptions o = options(d.consumeInt(0, 255), List.of());
        byte[] image = d.consumeRemainingAsBytes();
        check(attempt(() -> LinuxLoader.loadElf(FILE, image, o), image.length, 0), o);
    }

    @FuzzTest(maxDuration = "30s")
    void multiboot(FuzzedDataProvider d) {
        LoadOptions o = options(d.consumeInt(0, 255), List.of());
        byte[] image = d.consumeRemainingAsBytes();
        var header = MultibootHeader.find(image);
        if (header.isEmpty()) {
            if (Elf32.isElf(image)) {
                attempt(() -> {
                    Elf32.parse(FILE, image);
                    return null;
                }, image.length, 0);
            }
            return;
        }
        check(attempt(() -> MultibootLoader.load(FILE, image, header.get(), o), image.length, 0), o);
    }

    @FuzzTest(maxDuration = "30s")
    void bzImage(FuzzedDataProvider d) {
        LoadOptions o = options(d.consumeInt(0, 255), List.of());
        byte[] image = d.consumeRemainingAsBytes();
        long limit = Math.min(o.memSize(), LinuxLoader.MAX_DECOMPRESSED);
        check(attempt(() -> LinuxLoader.loadBzImage(FILE, image, o), image.length, limit), o);
        attempt(() -> {
            byte[] vmlinux = LinuxLoader.extractVmlinux(FILE, image);
            assertTrue(vmlinux.length <= LinuxLoader.MAX_DECOMPRESSED);
            return null;
        }, image.length, LinuxLoader.MAX_DECOMPRESSED);
    }

    @FuzzTest(maxDuration = "30s")
    void decompress(FuzzedDataProvider d) {
        long limit = 1L << d.consumeInt(10, 24);
        byte[] payload = d.consumeRemainingAsBytes();
        attempt(() -> {
            byte[] out = PayloadDecompressor.decompress(FILE, payload, 0, payload.length, limit, "the fuzz limit");
            assertTrue(out.length <= limit, out.length + " bytes out, limit " + limit);
            return null;
        }, payload.length, limit);
    }

    /** The whole path from files: detection (or a forced format), an initrd, the bounded reads. */
    @FuzzTest(maxDuration = "30s")
    void kernelFile(FuzzedDataProvider d) throws IOException {
        int b = d.consumeInt(0, 255);
        int f = d.consumeInt(0, KernelFormat.values().length);
        KernelFormat forced = f == KernelFormat.values().length ? null : KernelFormat.values()[f];
        byte[] initrd = d.consumeBytes(d.consumeInt(0, 64));
        byte[] image = d.consumeRemainingAsBytes();
        Path kernel = Files.write(DIR.resolve("kernel"), image);
        List<Path> modules = (b & 0x40) != 0 ? List.of(Files.write(DIR.resolve("initrd"), initrd)) : List.of();
        LoadOptions o = options(b, modules);
        BootImage img = attempt(() -> KernelLoader.load(kernel, forced, o), image.length + initrd.length,
                Math.min(o.memSize(), LinuxLoader.MAX_DECOMPRESSED));
        check(img, o);
        if (img != null && forced != null) assertEquals(forced, img.format());
    }
}
