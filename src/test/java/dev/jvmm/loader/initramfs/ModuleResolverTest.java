package dev.jvmm.loader.initramfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModuleResolverTest {
    @TempDir
    Path dir;

    private static List<String> names(List<KernelModule> ms) {
        return ms.stream().map(KernelModule::name).toList();
    }

    @Test
    void modinfoDependsGiveLoadOrder() throws Exception {
        // virtiofs needs fuse and virtio; virtio needs virtio_ring; fuse needs nothing
        TestModules.write(dir, "kernel/fs/fuse/virtiofs.ko", "virtiofs", "fuse", "virtio", "virtio_ring");
        TestModules.write(dir, "kernel/fs/fuse/fuse.ko", "fuse");
        TestModules.write(dir, "kernel/drivers/virtio/virtio.ko", "virtio", "virtio_ring");
        TestModules.write(dir, "kernel/drivers/virtio/virtio_ring.ko", "virtio_ring");
        TestModules.write(dir, "kernel/drivers/virtio/virtio_mmio.ko", "virtio_mmio", "virtio", "virtio_ring");
        List<KernelModule> ms = new ModuleResolver(dir).resolve(List.of("virtio_mmio", "virtiofs"));
        assertEquals(List.of("virtio_ring", "virtio", "virtio_mmio", "fuse", "virtiofs"), names(ms));
        assertEquals(List.of("virtio", "virtio_ring"), ms.get(2).depends());
        assertEquals(dir.resolve("kernel/fs/fuse/fuse.ko"), ms.get(3).file());
    }

    @Test
    void modulesDepWinsOverModinfo() throws Exception {
        // the .modinfo says b needs c; modules.dep (what depmod saw) says b needs a: modules.dep rules
        TestModules.write(dir, "kernel/a.ko", "a");
        TestModules.write(dir, "kernel/b.ko", "b", "c");
        TestModules.write(dir, "kernel/c.ko", "c");
        Files.writeString(dir.resolve("modules.dep"), "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n\nkernel/c.ko:\n");
        assertEquals(List.of("a", "b"), names(new ModuleResolver(dir).resolve(List.of("b"))));
    }

    @Test
    void modulesDepNamingAMissingFile() throws Exception {
        Files.writeString(dir.resolve("modules.dep"), "kernel/gone.ko:\n");
        InitramfsException e = assertThrows(InitramfsException.class, () -> new ModuleResolver(dir).resolve(List.of("gone")));
        assertEquals(dir + ": modules.dep names " + dir.resolve("kernel/gone.ko") + " for 'gone', but there is no such file"
                + " (out of date? run depmod)", e.getMessage());
    }

    @Test
    void malformedModulesDepIsAnError() throws Exception {
        Files.writeString(dir.resolve("modules.dep"), "kernel/a.ko:\nno colon here\n");
        InitramfsException e = assertThrows(InitramfsException.class, () -> new ModuleResolver(dir));
        assertTrue(e.getMessage().contains("modules.dep:2"), e.getMessage());
        Files.writeString(dir.resolve("modules.dep"), "../../etc/a.ko:\n");
        e = assertThrows(InitramfsException.class, () -> new ModuleResolver(dir));
        assertTrue(e.getMessage().contains("leaves the directory"), e.getMessage());
    }

    @Test
    void builtinModulesAreLeftOut() throws Exception {
        TestModules.write(dir, "kernel/fs/fuse/virtiofs.ko", "virtiofs", "fuse", "virtio");
        TestModules.write(dir, "kernel/fs/fuse/fuse.ko", "fuse");
        Files.writeString(dir.resolve("modules.builtin"), "kernel/drivers/virtio/virtio.ko\nkernel/fs/overlayfs/overlay.ko\n");
        ModuleResolver r = new ModuleResolver(dir);
        assertTrue(r.isBuiltin("overlay"));
        assertEquals(List.of("fuse", "virtiofs"), names(r.resolve(List.of("virtiofs", "overlay"))));
        assertEquals(List.of("fuse"), r.resolve(List.of("virtiofs")).get(1).depends());
    }

    @Test
    void dashAndUnderscoreAreTheSame() throws Exception {
        TestModules.write(dir, "kernel/drivers/misc/pvpanic/pvpanic-mmio.ko", "pvpanic_mmio", "pvpanic");
        TestModules.write(dir, "kernel/drivers/misc/pvpanic/pvpanic.ko", "pvpanic");
        List<KernelModule> ms = new ModuleResolver(dir).resolve(List.of("pvpanic-mmio"));
        assertEquals(List.of("pvpanic", "pvpanic_mmio"), names(ms));
        assertEquals("pvpanic_mmio.ko", ms.get(1).initramfsName());
    }

    @Test
    void compressedModulesAreReadDecompressed() throws Exception {
        byte[] elf = TestModules.elf("depends=", "name=plain");
        for (String suffix : List.of(".ko", ".ko.xz", ".ko.zst", ".ko.gz")) {
            Path d = dir.resolve(suffix.substring(1));
            TestModules.write(d, "kernel/m" + suffix, "m", "dep");
            TestModules.writeBytes(d, "kernel/dep" + suffix, elf);
            List<KernelModule> ms = new ModuleResolver(d).resolve(List.of("m"));
            assertEquals(List.of("dep", "m"), names(ms), suffix);
            assertArrayEquals(elf, ms.get(0).read(), suffix);
        }
    }

    @Test
    void decompressionIsBounded() throws Exception {
        byte[] big = new byte[3 << 20];   // zeros: tiny compressed, big decompressed
        Path p = TestModules.writeBytes(dir, "kernel/bomb.ko.gz", big);
        InitramfsException e = assertThrows(InitramfsException.class, () -> KernelModule.read(p, 1 << 20));
        assertTrue(e.getMessage().contains("bomb.ko.gz") && e.getMessage().contains("more than"), e.getMessage());
        Path q = dir.resolve("kernel/corrupt.ko.xz");
        Files.write(q, new byte[] {(byte) 0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3});
        e = assertThrows(InitramfsException.class, () -> KernelModule.read(q, 1 << 20));
        assertTrue(e.getMessage().startsWith(q + ": cannot read the module"), e.getMessage());
    }

    @Test
    void missingModuleNamesItAndTheDirectory() throws Exception {
        TestModules.write(dir, "kernel/virtiofs.ko", "virtiofs", "fuse");
        ModuleResolver r = new ModuleResolver(dir);
        InitramfsException e = assertThrows(InitramfsException.class, () -> r.resolve(List.of("overlay")));
        assertEquals(dir + ": no module 'overlay' (no module file, and not in modules.builtin)", e.getMessage());
        e = assertThrows(InitramfsException.class, () -> r.resolve(List.of("virtiofs")));
        assertEquals(dir + ": no module 'fuse', which 'virtiofs' needs", e.getMessage());
        // an optional module that is not there is no error
        assertEquals(List.of(), r.resolve(List.of(), List.of("pvpanic_mmio")));
        InitramfsException noDir = assertThrows(InitramfsException.class, () -> new ModuleResolver(dir.resolve("nope")));
        assertTrue(noDir.getMessage().contains("nope"), noDir.getMessage());
    }

    @Test
    void cycleIsReportedNotLooped() throws Exception {
        TestModules.write(dir, "kernel/a.ko", "a", "b");
        TestModules.write(dir, "kernel/b.ko", "b", "c");
        TestModules.write(dir, "kernel/c.ko", "c", "a");
        TestModules.write(dir, "kernel/top.ko", "top", "a");
        InitramfsException e = assertThrows(InitramfsException.class, () -> new ModuleResolver(dir).resolve(List.of("top")));
        assertEquals(dir + ": module dependency cycle: a -> b -> c -> a", e.getMessage());
        // a module naming itself is no cycle
        TestModules.write(dir, "kernel/self.ko", "self", "self");
        assertEquals(List.of("self"), names(new ModuleResolver(dir).resolve(List.of("self"))));
    }

    @Test
    void modulesOrderIndexesWithoutAWalk() throws Exception {
        // modules.order names the uncompressed file; the file is compressed; "extra" is not listed at all
        TestModules.write(dir, "kernel/fs/fuse/virtiofs.ko.zst", "virtiofs", "fuse");
        TestModules.write(dir, "kernel/fs/fuse/fuse.ko.xz", "fuse");
        TestModules.write(dir, "extra/outoftree.ko", "outoftree", "fuse");
        Files.writeString(dir.resolve("modules.order"), "kernel/fs/fuse/fuse.ko\nkernel/fs/fuse/virtiofs.ko\nkernel/gone.ko\n");
        ModuleResolver r = new ModuleResolver(dir);
        List<KernelModule> ms = r.resolve(List.of("virtiofs", "outoftree"));
        assertEquals(List.of("fuse", "virtiofs", "outoftree"), names(ms));
        assertEquals(dir.resolve("kernel/fs/fuse/virtiofs.ko.zst"), ms.get(1).file());
        assertEquals(dir.resolve("extra/outoftree.ko"), ms.get(2).file());
        assertFalse(r.hasModule("gone"));
        assertTrue(r.hasModule("fuse"));
    }

    @Test
    void updatesDirectoryWinsADuplicateName() throws Exception {
        TestModules.write(dir, "kernel/fs/overlay.ko", "overlay");
        TestModules.write(dir, "updates/overlay.ko.xz", "overlay");
        assertEquals(dir.resolve("updates/overlay.ko.xz"), new ModuleResolver(dir).resolve(List.of("overlay")).getFirst().file());
        Files.writeString(dir.resolve("modules.order"), "kernel/fs/overlay.ko\n");   // does not know updates/
        assertEquals(dir.resolve("updates/overlay.ko.xz"), new ModuleResolver(dir).resolve(List.of("overlay")).getFirst().file());
    }

    @Test
    void notAModuleIsAClearError() throws Exception {
        Path p = TestModules.writeBytes(dir, "kernel/junk.ko", "not an elf at all, really not".repeat(4).getBytes());
        InitramfsException e = assertThrows(InitramfsException.class, () -> new ModuleResolver(dir).resolve(List.of("junk")));
        assertEquals(p + ": not an ELF file, so not a kernel module", e.getMessage());
        byte[] elf = TestModules.elf("depends=");
        Arrays.fill(elf, 0x28, 0x30, (byte) 0x7f);   // e_shoff far outside the file
        TestModules.writeBytes(dir, "kernel/badelf.ko", elf);
        e = assertThrows(InitramfsException.class, () -> new ModuleResolver(dir).resolve(List.of("badelf")));
        assertTrue(e.getMessage().contains("badelf.ko: ELF section header table"), e.getMessage());
        byte[] truncated = Arrays.copyOf(TestModules.elf("depends="), 100);
        TestModules.writeBytes(dir, "kernel/cut.ko", truncated);
        e = assertThrows(InitramfsException.class, () -> new ModuleResolver(dir).resolve(List.of("cut")));
        assertTrue(e.getMessage().contains("cut.ko: ELF section header table"), e.getMessage());
    }

    /** The .modinfo parser on an object gcc and objcopy made, not only on the tests' own ELF. */
    @Test
    void modinfoFromARealObjectFile() throws Exception {
        assumeTrue(onPath("gcc") && onPath("objcopy"), "gcc and objcopy are needed");
        Path c = dir.resolve("m.c"), o = dir.resolve("m.o"), info = dir.resolve("modinfo.bin");
        Files.writeString(c, "int jvmm_test_symbol(void) { return 42; }\n");
        Files.write(info, "license=GPL\0depends=fuse,virtio-ring\0alias=fs-virtiofs\0name=virtiofs\0".getBytes());
        run("gcc", "-c", "-O2", "-o", o.toString(), c.toString());
        run("objcopy", "--add-section", ".modinfo=" + info, "--set-section-flags", ".modinfo=alloc,readonly", o.toString());
        Modinfo mi = Modinfo.parse(o, Files.readAllBytes(o));
        assertEquals(List.of("fuse", "virtio_ring"), mi.depends());
        assertEquals("virtiofs", mi.value("name"));
        assertEquals(List.of("fs-virtiofs"), mi.values("alias"));
    }

    /** Debian's kernels unpacked by scripts/fetch-guest-kernel (no modules.dep): what a real run resolves. */
    @Test
    void debianKernelModules() throws Exception {
        Path kernels = Path.of(System.getProperty("user.home"), ".cache/jvmm/kernels");
        assumeTrue(Files.isDirectory(kernels), "no kernels fetched by scripts/fetch-guest-kernel");
        List<Path> dirs;
        try (Stream<Path> s = Files.list(kernels)) {
            dirs = s.filter(Files::isDirectory).flatMap(k -> {
                try (Stream<Path> m = Files.list(k.resolve("lib/modules"))) {
                    return m.toList().stream();
                } catch (IOException e) {
                    return Stream.empty();
                }
            }).toList();
        }
        assumeTrue(!dirs.isEmpty(), "no unpacked kernel under " + kernels);
        for (Path d : dirs) {
            List<KernelModule> ms = new ModuleResolver(d).resolve(RootfsInit.MODULES, RootfsInit.OPTIONAL_MODULES);
            List<String> order = names(ms);
            assertTrue(order.containsAll(List.of("virtio_mmio", "virtiofs", "fuse", "overlay", "virtio_console", "virtio",
                    "virtio_ring")), d + ": " + order);
            // each after what its own .modinfo names (which differs between Debian's 6.1 builds)
            for (KernelModule m : ms) {
                for (String dep : m.depends()) before(order, dep, m.name());
            }
            before(order, "fuse", "virtiofs");
            before(order, "virtio", "virtio_mmio");
            List<KernelModule> pci = new ModuleResolver(d).resolve(RootfsInit.QEMU_PCI_MODULES);
            for (KernelModule m : pci) {
                for (String dep : m.depends()) before(names(pci), dep, m.name());
            }
            assertTrue(names(pci).contains("virtio_pci_modern_dev"), d + ": " + names(pci));
            assertFalse(names(pci).contains("virtio_mmio"), d + ": " + names(pci));
        }
    }

    private static void before(List<String> order, String first, String then) {
        assertTrue(order.indexOf(first) >= 0 && order.indexOf(first) < order.indexOf(then), first + " before " + then + ": " + order);
    }

    static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, tool))) return true;
        }
        return false;
    }

    static void run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "timeout: " + String.join(" ", cmd));
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ": " + out);
    }
}
