package dev.jvmm.loader;

import dev.jvmm.loader.LinuxImages.Hdr;
import dev.jvmm.loader.LinuxImages.Kind;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Writes the seed inputs of {@link LoaderFuzzTest} (valid images of every kind, with their option
 * byte last) into src/test/resources. Run it again after changing the image builders:
 * {@code mvn -o -q -Djvmm.writeSeeds=true -Dtest=FuzzSeeds test}.
 */
class FuzzSeeds {
    static final Path INPUTS = Path.of("src/test/resources/dev/jvmm/loader/LoaderFuzzTestInputs");

    static void seed(String method, String name, byte[] image, int... options) throws IOException {
        Path dir = Files.createDirectories(INPUTS.resolve(method));
        byte[] out = Arrays.copyOf(image, image.length + options.length);
        for (int i = 0; i < options.length; i++) out[out.length - 1 - i] = (byte) options[i];   // consumed from the end
        Files.write(dir.resolve(name), out);
    }

    @Test
    @EnabledIfSystemProperty(named = "jvmm.writeSeeds", matches = "true")
    void write() throws IOException {
        // option byte: boot protocol = b % 3, memory = MEM[(b / 3) % 4] (1M, 16M, 64M, 4G), host decompression
        // unless (b / 12) % 2, RSDP if b & 0x80; 6 = DEFAULT, 64 MiB, host decompression
        seed("elf64", "vmlinux", small(null), 6);
        seed("elf64", "vmlinux-pvh", small(0x1000010L), 8 | 0x80);
        seed("elf64", "pvh-note-section", LinuxImages.elf64(0x1000000, List.of(new Images.Seg(0x1000000,
                0xffffffff81000000L, new byte[0x100], 0x2000)), 0x1000000L, true), 6);
        seed("multiboot", "elf32", Images.elf(0x100010, 3, List.of(new Images.Seg(0x100000, Images.filled(100, 0x90), 100),
                new Images.Seg(0x102000, Images.filled(8, 0x11), 0x1000))), 6);
        byte[] aout = new byte[0x400];
        System.arraycopy(Images.mbHeaderAout(3 | (1 << 16), 0x200040, 0x200000, 0x200300, 0x205000, 0x200080), 0, aout,
                0x40, 32);
        seed("multiboot", "aout", aout, 6);
        for (Kind k : Kind.values()) {
            byte[] payload = LinuxImages.compress(k, small(null));
            seed("bzImage", k.name().toLowerCase() + "-host", LinuxImages.bzImage(Hdr.standard(), payload), 6);
            seed("bzImage", k.name().toLowerCase() + "-own", LinuxImages.bzImage(Hdr.standard(), payload), 6 + 12);
            seed("decompress", k.name().toLowerCase(), payload, 20 - 10);   // limit 2^20
        }
        seed("bzImage", "relocatable-own", LinuxImages.bzImage(Hdr.standard().withPlacement(true, 60 << 20, 8 << 20),
                LinuxImages.compress(Kind.GZIP, small(null))), 6 + 12);
        // found by the fuzzer: a protected-mode kernel too short to hold the 64-bit entry at 0x200
        seed("bzImage", "crash-short-pm", LoaderBoundsTest.shortProtectedModeKernel(), 6 + 12);
        // kernelFile: option byte (0x40: with an initrd), format byte (5 = detect), initrd length, initrd
        byte[] initrd = "initrd".getBytes();
        byte[] withInitrd = concat(small(null), initrd);
        seed("kernelFile", "vmlinux-initrd", withInitrd, 6 | 0x40, 5, initrd.length);
        seed("kernelFile", "flat", new byte[] {(byte) 0xfa, (byte) 0xf4}, 6, 5, 0);
        seed("kernelFile", "bzimage", LinuxImages.bzImage(Hdr.standard(),
                LinuxImages.compress(Kind.LZ4, small(null))), 6, 5, 0);
        seed("kernelFile", "multiboot", Images.elf(0x100000, 3, List.of(new Images.Seg(0x100000, new byte[16], 16))),
                6 | 0x40, 5, 0);
    }

    /** A vmlinux-like ELF of 4.3 KiB: small seeds keep the fuzzer fast. */
    static byte[] small(Long pvhEntry) {
        return LinuxImages.elf64(0x1000000, List.of(new Images.Seg(0x1000000, 0xffffffff81000000L,
                Images.filled(256, 0x90), 0x2000)), pvhEntry, false);
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
