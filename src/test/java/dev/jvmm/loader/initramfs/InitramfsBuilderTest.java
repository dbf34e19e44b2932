package dev.jvmm.loader.initramfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import java.util.zip.Inflater;
import org.apache.commons.compress.archivers.cpio.CpioArchiveEntry;
import org.apache.commons.compress.archivers.cpio.CpioArchiveInputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InitramfsBuilderTest {
    @TempDir
    Path dir;
    Path cache;
    List<KernelModule> modules;
    byte[] elfA, elfB;
    static final byte[] INIT = "\u007fELF pretend this is rootfs-init".getBytes();

    @BeforeEach
    void modules() throws Exception {
        cache = dir.resolve("cache");
        Path mods = dir.resolve("modules");
        elfA = TestModules.elf("depends=b-dash", "name=a");
        elfB = TestModules.elf("depends=", "name=b_dash");
        TestModules.writeBytes(mods, "kernel/a.ko", elfA);
        TestModules.writeBytes(mods, "kernel/b-dash.ko.xz", elfB);
        modules = new ModuleResolver(mods).resolve(List.of("a"));
    }

    record Entry(String name, long mode, byte[] data, long rdevMajor, long rdevMinor, long inode) { }

    static List<Entry> entries(byte[] cpio) throws IOException {
        List<Entry> out = new ArrayList<>();
        try (CpioArchiveInputStream in = new CpioArchiveInputStream(new ByteArrayInputStream(cpio))) {
            for (CpioArchiveEntry e; (e = in.getNextEntry()) != null; ) {
                assertEquals(0, e.getUID(), e.getName());
                assertEquals(0, e.getGID(), e.getName());
                assertEquals(0, e.getTime(), e.getName());
                out.add(new Entry(e.getName(), e.getMode(), in.readAllBytes(), e.getRemoteDeviceMaj(), e.getRemoteDeviceMin(), e.getInode()));
            }
        }
        return out;
    }

    static byte[] gunzip(byte[] gz) throws IOException {
        try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(gz))) {
            return in.readAllBytes();
        }
    }

    @Test
    void baseArchiveLayout() throws Exception {
        byte[] base = InitramfsBuilder.baseArchive(INIT, modules);
        assertEquals(0, base.length % 4, "the next archive must start 4-byte aligned");
        // one gzip member, then at most 3 bytes of zero padding (the kernel skips NULs between archives)
        Inflater inf = new Inflater(true);
        inf.setInput(base, 10, base.length - 10);   // past the 10-byte gzip header (no optional fields)
        inf.inflate(new byte[4 << 20]);
        assertTrue(inf.finished());
        int trailerEnd = base.length - inf.getRemaining() + 8;
        assertTrue(base.length - trailerEnd < 4, "padding " + (base.length - trailerEnd));
        for (int i = trailerEnd; i < base.length; i++) assertEquals(0, base[i]);

        List<Entry> es = entries(gunzip(base));
        assertEquals(List.of("dev", "dev/console", "proc", "sys", "newroot", "jvmm", "jvmm/modules", "jvmm/modules/b_dash.ko",
                "jvmm/modules/a.ko", "jvmm/modules/order", "init"), es.stream().map(Entry::name).toList());
        Entry console = es.get(1);
        assertEquals(0020600, console.mode());
        assertEquals(5, console.rdevMajor());
        assertEquals(1, console.rdevMinor());
        assertEquals(040755, es.get(0).mode());
        assertEquals(0100644, es.get(7).mode());
        assertArrayEquals(elfB, es.get(7).data(), "decompressed from .ko.xz");
        assertArrayEquals(elfA, es.get(8).data());
        assertEquals("b_dash.ko\na.ko\n", new String(es.get(9).data()));
        assertEquals(0100755, es.get(10).mode());
        assertArrayEquals(INIT, es.get(10).data());
        Set<Long> inodes = new HashSet<>();
        for (Entry e : es) assertTrue(inodes.add(e.inode()), "inode " + e.inode() + " twice: the kernel would make hard links");
        assertArrayEquals(base, InitramfsBuilder.baseArchive(INIT, modules), "the same inputs give the same bytes");
    }

    @Test
    void jobArchive() throws Exception {
        Job job = JobTest.nastyJob();
        byte[] a = InitramfsBuilder.jobArchive(job);
        assertEquals("070701", new String(a, 0, 6), "uncompressed newc");
        assertEquals(0, a.length % 512);
        List<Entry> es = entries(a);
        assertEquals(List.of("jvmm", "jvmm/job"), es.stream().map(Entry::name).toList());
        assertEquals(0100600, es.get(1).mode());
        assertArrayEquals(job.encode(), es.get(1).data());
        Path f = dir.resolve("job.cpio");
        InitramfsBuilder.writeJobArchive(job, f);
        assertArrayEquals(a, Files.readAllBytes(f));
    }

    @Test
    void cachedBaseIsReused() throws Exception {
        InitramfsBuilder b = new InitramfsBuilder(cache);
        Path first = b.base(INIT, modules);
        assertEquals(cache, first.getParent());
        assertTrue(first.getFileName().toString().matches("base-[0-9a-f]{64}\\.cpio\\.gz"), first.toString());
        assertArrayEquals(InitramfsBuilder.baseArchive(INIT, modules), Files.readAllBytes(first));
        FileTime old = FileTime.from(Instant.parse("2020-01-01T00:00:00Z"));
        Files.setLastModifiedTime(first, old);
        assertEquals(first, b.base(INIT, modules));
        assertEquals(old, Files.getLastModifiedTime(first), "a hit does not write");
        try (Stream<Path> s = Files.list(cache)) {
            assertEquals(List.of(first), s.toList(), "no temporary files left");
        }
    }

    @Test
    void changedInputsGiveAnotherBase() throws Exception {
        InitramfsBuilder b = new InitramfsBuilder(cache);
        Path first = b.base(INIT, modules);
        byte[] otherInit = Arrays.copyOf(INIT, INIT.length + 1);
        assertNotEquals(first, b.base(otherInit, modules));
        Path ko = modules.getLast().file();
        Files.setLastModifiedTime(ko, FileTime.from(Instant.now().plusSeconds(5)));
        assertNotEquals(first, b.base(INIT, modules), "a module touched since");
        assertNotEquals(first, b.base(INIT, modules.subList(0, 1)));
    }

    @Test
    void damagedCacheFileIsMadeAgain() throws Exception {
        InitramfsBuilder b = new InitramfsBuilder(cache);
        Path p = b.base(INIT, modules);
        byte[] good = Files.readAllBytes(p);
        // truncated (to a multiple of 4 too), one byte flipped inside the deflate stream, replaced by junk
        // and a sound gzip stream of something that is no cpio archive
        List<byte[]> damages = List.of(Arrays.copyOf(good, good.length / 2 & ~3), flip(good, good.length / 2), new byte[512],
                Arrays.copyOf(good, good.length - 1), padded(TestModules.compress("x.gz", new byte[4096])),
                padded(TestModules.compress("x.gz", Arrays.copyOf(gunzip(good), 8192))));
        for (byte[] d : damages) {
            Files.write(p, d);
            assertTrue(InitramfsBuilder.damage(p) != null);
            assertEquals(p, b.base(INIT, modules));
            assertArrayEquals(good, Files.readAllBytes(p));
            assertNull(InitramfsBuilder.damage(p));
        }
    }

    private static byte[] padded(byte[] b) {
        return Arrays.copyOf(b, (b.length + 3) & ~3);
    }

    private static byte[] flip(byte[] b, int at) {
        byte[] c = b.clone();
        c[at] ^= 0x5a;
        return c;
    }

    @Test
    void unwritableCacheFallsBackToATemporaryFile() throws Exception {
        Path notADir = Files.writeString(dir.resolve("file"), "in the way");
        Path p = new InitramfsBuilder(notADir.resolve("cache")).base(INIT, modules);
        assertFalse(p.startsWith(notADir));
        assertNull(InitramfsBuilder.damage(p));
        Files.delete(p);
    }

    @Test
    void concurrentRunsShareOneBase() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Path>> fs = new ArrayList<>();
            for (int i = 0; i < 8; i++) fs.add(pool.submit(() -> new InitramfsBuilder(cache).base(INIT, modules)));
            Set<Path> paths = new HashSet<>();
            for (Future<Path> f : fs) paths.add(f.get());
            assertEquals(1, paths.size(), paths.toString());
            assertNull(InitramfsBuilder.damage(paths.iterator().next()));
        } finally {
            pool.shutdown();
        }
        try (Stream<Path> s = Files.list(cache)) {
            assertEquals(1, s.count(), "only the base: no temporary files left");
        }
    }

    @Test
    void staleTemporaryFilesAreCleaned() throws Exception {
        Files.createDirectories(cache);
        Path stale = Files.writeString(cache.resolve(".base-123.tmp"), "half");
        Files.setLastModifiedTime(stale, FileTime.from(Instant.now().minusSeconds(7200)));
        Path fresh = Files.writeString(cache.resolve(".base-456.tmp"), "another run's, still writing");
        new InitramfsBuilder(cache).base(INIT, modules);
        assertFalse(Files.exists(stale));
        assertTrue(Files.exists(fresh));
    }

    @Test
    void defaultCacheDirFollowsXdg() {
        Path d = InitramfsBuilder.defaultCacheDir();
        assertTrue(d.endsWith(Path.of("jvmm", "initramfs")), d.toString());
        assertTrue(d.isAbsolute());
    }

    @Test
    void initrdForAKernelBesideItsModules() throws Exception {
        assumeTrue(RootfsInit.class.getResource(RootfsInit.RESOURCE) != null, "built without guests/ (no make?)");
        Path kernel = Files.createDirectories(dir.resolve("pkg/boot")).resolve("vmlinuz-6.1.0-test");
        Files.write(kernel, KernelReleaseTest.bzImage("6.1.0-test (someone@somewhere) #1", 0x1000));
        Path mods = dir.resolve("pkg/lib/modules/6.1.0-test");
        TestModules.write(mods, "kernel/drivers/virtio/virtio_mmio.ko", "virtio_mmio", "virtio", "virtio_ring");
        TestModules.write(mods, "kernel/drivers/virtio/virtio.ko", "virtio", "virtio_ring");
        TestModules.write(mods, "kernel/drivers/virtio/virtio_ring.ko", "virtio_ring");
        TestModules.write(mods, "kernel/fs/fuse/virtiofs.ko", "virtiofs", "fuse", "virtio", "virtio_ring");
        TestModules.write(mods, "kernel/fs/fuse/fuse.ko", "fuse");
        TestModules.write(mods, "kernel/drivers/char/virtio_console.ko", "virtio_console", "virtio", "virtio_ring");
        Files.writeString(mods.resolve("modules.builtin"), "kernel/fs/overlayfs/overlay.ko\n");
        Job job = Job.builder("jvmm-root").arg("true").build();
        List<Path> files = new InitramfsBuilder(cache).initrdFor(kernel, null, RootfsInit.MODULES, job, dir.resolve("job.cpio"));
        assertEquals(dir.resolve("job.cpio"), files.get(1));
        List<Entry> es = entries(gunzip(Files.readAllBytes(files.getFirst())));
        String order = new String(es.stream().filter(e -> e.name().equals(InitramfsBuilder.MODULE_ORDER)).findFirst().orElseThrow().data());
        assertEquals("virtio_ring.ko\nvirtio.ko\nvirtio_mmio.ko\nfuse.ko\nvirtiofs.ko\nvirtio_console.ko\n", order);
        assertArrayEquals(RootfsInit.bundled(), es.getLast().data());
        assertArrayEquals(InitramfsBuilder.jobArchive(job), Files.readAllBytes(files.get(1)));

        Path lone = Files.write(dir.resolve("elsewhere-vmlinuz"), KernelReleaseTest.bzImage("9.9.9-none", 0x1000));
        InitramfsException e = org.junit.jupiter.api.Assertions.assertThrows(InitramfsException.class,
                () -> new InitramfsBuilder(cache).initrdFor(lone, null, RootfsInit.MODULES, job, dir.resolve("j")));
        assertTrue(e.getMessage().startsWith(lone + ": no modules directory for release 9.9.9-none (looked at "), e.getMessage());
    }

    @Test
    void bundledInitIsThere() throws Exception {
        assumeTrue(RootfsInit.class.getResource(RootfsInit.RESOURCE) != null, "built without guests/ (no make?)");
        byte[] init = RootfsInit.bundled();
        assertTrue(init.length > 10_000, "a static program: " + init.length + " bytes");
    }
}
