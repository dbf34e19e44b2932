package dev.jvmm.loader.initramfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelReleaseTest {
    @TempDir
    Path dir;

    /** The start of a bzImage: boot sector, setup header with kernel_version pointing at {@code version}. */
    static byte[] bzImage(String version, int pointer) {
        ByteBuffer b = ByteBuffer.allocate(0x4000).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0x1F1, (byte) 27);                  // setup_sects
        b.putShort(0x1FE, (short) 0xAA55);
        b.putInt(0x202, 0x53726448);              // "HdrS"
        b.putShort(0x206, (short) 0x020f);
        b.putShort(0x20E, (short) pointer);
        if (version != null) b.put(0x200 + pointer, version.getBytes(StandardCharsets.US_ASCII));
        return b.array();
    }

    @Test
    void fromBzImageHeader() throws Exception {
        Path k = dir.resolve("vmlinuz");
        Files.write(k, bzImage("6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC", 0x3000));
        assertEquals("6.1.0-28-cloud-amd64", KernelRelease.of(k).release());
        Files.write(k, bzImage("6.12.0\0garbage", 0x1000));
        assertEquals("6.12.0", KernelRelease.of(k).release());
    }

    @Test
    void badBzImageHeaders() throws Exception {
        Path k = dir.resolve("vmlinuz");
        Files.write(k, bzImage(null, 0));
        assertEquals(k + ": the bzImage's kernel_version field is 0 (no version string)",
                assertThrows(InitramfsException.class, () -> KernelRelease.of(k)).getMessage());
        Files.write(k, bzImage(null, 0x7000));   // past the 16 KiB file
        assertTrue(assertThrows(InitramfsException.class, () -> KernelRelease.of(k)).getMessage().contains("past the setup code"));
        Files.write(k, bzImage("../../etc", 0x1000));
        assertTrue(assertThrows(InitramfsException.class, () -> KernelRelease.of(k)).getMessage().contains("bad release"));
        Files.write(k, bzImage("", 0x1000));
        assertTrue(assertThrows(InitramfsException.class, () -> KernelRelease.of(k)).getMessage().contains("empty"));
        Files.write(k, "hello".getBytes());
        assertEquals(k + ": neither a bzImage nor an ELF vmlinux: cannot tell its release",
                assertThrows(InitramfsException.class, () -> KernelRelease.of(k)).getMessage());
        assertTrue(assertThrows(InitramfsException.class, () -> KernelRelease.of(dir.resolve("none"))).getMessage()
                .contains("cannot read the kernel"));
    }

    @Test
    void fromVmlinuxBanner() throws Exception {
        // a format string first (not a release), then the banner straddling the 1 MiB read boundary
        byte[] elf = new byte[(1 << 20) + 4096];
        elf[0] = 0x7f;
        elf[1] = 'E';
        elf[2] = 'L';
        elf[3] = 'F';
        put(elf, 5000, "Linux version %s (%s)\0");
        put(elf, (1 << 20) - 20, "Linux version 6.1.192 (jvmm@build) (gcc) #1 SMP\0");
        Path k = dir.resolve("vmlinux");
        Files.write(k, elf);
        assertEquals("6.1.192", KernelRelease.of(k).release());
        put(elf, (1 << 20) - 20, "Linux version      ");
        Files.write(k, elf);
        assertTrue(assertThrows(InitramfsException.class, () -> KernelRelease.of(k)).getMessage().contains("no \"Linux version\" banner"));
    }

    private static void put(byte[] b, int at, String s) {
        byte[] x = s.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(x, 0, b, at, x.length);
    }

    @Test
    void modulesDirectoryBesideAnUnpackedPackage() throws Exception {
        Path boot = Files.createDirectories(dir.resolve("pkg/boot"));
        Path modules = Files.createDirectories(dir.resolve("pkg/lib/modules/6.1.0-9-amd64"));
        KernelRelease r = new KernelRelease("6.1.0-9-amd64");
        assertEquals(modules, r.modulesDirectory(boot.resolve("vmlinuz-6.1.0-9-amd64")).orElseThrow());
        assertEquals(Path.of("/lib/modules/6.1.0-9-amd64"), r.modulesDirectoryCandidates(boot.resolve("vmlinuz")).getLast());
        assertThrows(IllegalArgumentException.class, () -> new KernelRelease("a/b"));
    }

    /** Real kernels: Debian's (scripts/fetch-guest-kernel) and the shared microvm build, when present. */
    @Test
    void realKernels() throws Exception {
        int seen = 0;
        Path kernels = Path.of(System.getProperty("user.home"), ".cache/jvmm/kernels");
        if (Files.isDirectory(kernels)) {
            List<Path> images;
            try (Stream<Path> s = Files.find(kernels, 3, (p, a) -> p.getFileName().toString().startsWith("vmlinuz-"))) {
                images = s.toList();
            }
            for (Path k : images) {
                assertEquals(k.getFileName().toString().substring("vmlinuz-".length()), KernelRelease.of(k).release(), k.toString());
                assertTrue(KernelRelease.of(k).modulesDirectory(k).isPresent(), k + ": modules beside it");
                seen++;
            }
        }
        // the shared kernels sit beside the project (../shared), or beside the worktrees' parent
        Path shared = Stream.of("../shared/guest-kernels", "../../shared/guest-kernels").map(Path::of)
                .filter(Files::isDirectory).findFirst().orElse(Path.of("../shared/guest-kernels"));
        for (String name : List.of("microvm-6.1.192.bzImage", "microvm-6.1.192.vmlinux")) {
            Path k = shared.resolve(name);
            if (!Files.isRegularFile(k)) continue;
            assertEquals("6.1.192", KernelRelease.of(k).release(), k.toString());
            seen++;
        }
        assumeTrue(seen > 0, "no real kernel on this machine");
    }
}
