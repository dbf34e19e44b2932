package dev.jvmm.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.memory.Chunk;
import dev.jvmm.loader.LinuxImages.Hdr;
import dev.jvmm.loader.LinuxImages.Kind;
import dev.jvmm.loader.LoadOptions.BootProtocol;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class KernelCacheTest extends TempFileTest {

    private final AtomicInteger decompressions = new AtomicInteger();

    private KernelCache.Decompressor giving(byte[] data) {
        return () -> {
            decompressions.incrementAndGet();
            return data.clone();
        };
    }

    private List<Path> entries(Path cache) throws IOException {
        try (Stream<Path> s = Files.list(cache)) {
            return s.sorted().toList();
        }
    }

    @Test
    void aSecondBootOfTheSamePayloadIsServedFromTheCache() throws Exception {
        Path cache = dir.resolve("kernels");
        KernelCache c = new KernelCache(cache);
        byte[] image = "....compressed payload....".getBytes();
        byte[] vmlinux = Images.filled(100_000, 0x5a);
        assertArrayEquals(vmlinux, c.decompressed(image, 4, 18, 1 << 20, giving(vmlinux)));
        assertEquals(1, decompressions.get());
        List<Path> written = entries(cache);
        assertEquals(1, written.size(), "one entry and no temporary file: " + written);
        assertEquals(vmlinux.length + KernelCache.TRAILER, Files.size(written.get(0)));
        assertArrayEquals(vmlinux, c.decompressed(image, 4, 18, 1 << 20, giving(new byte[1])));
        assertEquals(1, decompressions.get(), "served from the cache");
        // another payload is another entry
        image[10] ^= 1;
        assertArrayEquals(new byte[3], c.decompressed(image, 4, 18, 1 << 20, giving(new byte[3])));
        assertEquals(2, decompressions.get());
        assertEquals(2, entries(cache).size());
    }

    @Test
    void aDamagedOrTruncatedEntryIsDecompressedAgainAndReplaced() throws Exception {
        Path cache = dir.resolve("kernels");
        KernelCache c = new KernelCache(cache);
        byte[] image = Images.filled(64, 7);
        byte[] vmlinux = Images.filled(5000, 0x11);
        c.decompressed(image, 0, 64, 1 << 20, giving(vmlinux));
        Path entry = entries(cache).get(0);
        byte[] bytes = Files.readAllBytes(entry);
        bytes[1234] ^= 0x40; // one bit flipped in the data
        Files.write(entry, bytes);
        assertArrayEquals(vmlinux, c.decompressed(image, 0, 64, 1 << 20, giving(vmlinux)));
        assertEquals(2, decompressions.get(), "the damaged entry was not used");
        assertArrayEquals(vmlinux, c.decompressed(image, 0, 64, 1 << 20, giving(new byte[0])));
        assertEquals(2, decompressions.get(), "and was replaced by an intact one");
        Files.write(entry, java.util.Arrays.copyOf(Files.readAllBytes(entry), 3000)); // cut short (no trailer)
        assertArrayEquals(vmlinux, c.decompressed(image, 0, 64, 1 << 20, giving(vmlinux)));
        assertEquals(3, decompressions.get());
    }

    @Test
    void anEntryLargerThanTheBootAllowsIsNeverRead() throws Exception {
        KernelCache c = new KernelCache(dir.resolve("kernels"));
        byte[] image = Images.filled(64, 9);
        c.decompressed(image, 0, 64, 1 << 20, giving(Images.filled(10_000, 1)));
        // the same kernel in a smaller guest: the decompressor runs (and would refuse it, naming the limit)
        assertArrayEquals(new byte[5], c.decompressed(image, 0, 64, 9_999, giving(new byte[5])));
        assertEquals(2, decompressions.get());
    }

    @Test
    void anUnwritableCacheOnlyMeansNoCaching() throws Exception {
        Path notADir = write("file", new byte[1]);
        KernelCache c = new KernelCache(notADir.resolve("kernels"));
        byte[] vmlinux = Images.filled(100, 3);
        assertArrayEquals(vmlinux, c.decompressed(new byte[8], 0, 8, 1 << 20, giving(vmlinux)));
        assertArrayEquals(vmlinux, c.decompressed(new byte[8], 0, 8, 1 << 20, giving(vmlinux)));
        assertEquals(2, decompressions.get());
    }

    @Test
    void onlyTheMostRecentlyUsedEntriesAreKept() throws Exception {
        Path cache = dir.resolve("kernels");
        KernelCache c = new KernelCache(cache);
        byte[] first = {1, 2, 3, 4};
        c.decompressed(first, 0, 4, 1 << 20, giving(new byte[10]));
        for (int i = 0; i < KernelCache.KEEP + 2; i++) {
            // older modification times than the first one's (used last, below)
            c.decompressed(new byte[] {9, (byte) i}, 0, 2, 1 << 20, giving(new byte[10]));
            for (Path p : entries(cache)) {
                if (!p.getFileName().toString().startsWith(KernelCache.key(first, 0, 4))) {
                    Files.setLastModifiedTime(p, FileTime.fromMillis(Files.getLastModifiedTime(p).toMillis() - 60_000));
                }
            }
        }
        List<Path> left = entries(cache);
        assertEquals(KernelCache.KEEP, left.size(), left::toString);
        assertTrue(left.contains(cache.resolve(KernelCache.key(first, 0, 4) + KernelCache.SUFFIX)), "the recently used one stays");
    }

    @Test
    void theLoaderBootsTheSameImageFromTheCache() throws Exception {
        Path cache = dir.resolve("kernels");
        byte[] vmlinux = LinuxImages.vmlinux(0x1000010L);
        Path k = write("bz", LinuxImages.bzImage(Hdr.standard(), LinuxImages.compress(Kind.XZ, vmlinux)));
        LoadOptions o = new LoadOptions(64 << 20, "console=ttyS0", List.of(), BootProtocol.DEFAULT, true, Layout.ACPI_RSDP,
                new KernelCache(cache));
        BootImage cold = KernelLoader.load(k, null, o);
        assertEquals(1, entries(cache).size());
        Path entry = entries(cache).get(0);
        long size = Files.size(entry);
        BootImage warm = KernelLoader.load(k, null, o);
        assertEquals(cold.entry(), warm.entry());
        assertEquals(cold.chunks().size(), warm.chunks().size());
        for (int i = 0; i < cold.chunks().size(); i++) {
            Chunk a = cold.chunks().get(i), b = warm.chunks().get(i);
            assertEquals(a.guestAddress(), b.guestAddress());
            assertArrayEquals(a.data(), b.data(), a.what());
        }
        assertEquals(size, Files.size(entry));
        // a kernel rebuilt in place is a new entry
        Files.write(k, LinuxImages.bzImage(Hdr.standard(), LinuxImages.compress(Kind.GZIP, vmlinux)));
        KernelLoader.load(k, null, o);
        assertEquals(2, entries(cache).size());
        assertNotEquals(entries(cache).get(0), entries(cache).get(1));
    }
}
