package dev.jvmm.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jvmm.cli.Main;
import dev.jvmm.loader.LinuxImages.Hdr;
import dev.jvmm.loader.LinuxImages.Kind;
import dev.jvmm.vmm.ExitStatus;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code jvmm extract-vmlinux} on good and hostile files, through the CLI's entry point. */
class ExtractVmlinuxCliTest {
    @TempDir
    Path dir;

    record Result(int status, String out, String err) { }

    static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.execute(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static void assertOneLine(Result r, int status, String... parts) {
        assertEquals(status, r.status(), r::toString);
        String[] lines = r.err().strip().split("\n");
        assertEquals(1, lines.length, "one line: " + r);
        assertTrue(lines[0].startsWith("jvmm: "), r::toString);
        for (String p : parts) assertTrue(lines[0].contains(p), "expected '" + p + "' in " + r);
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r);
    }

    @Test
    void extractsTheVmlinux() throws Exception {
        byte[] vmlinux = LinuxImages.vmlinux(null);
        Path bz = Files.write(dir.resolve("bz"), LinuxImages.bzImage(Hdr.standard(), LinuxImages.compress(Kind.XZ, vmlinux)));
        Path out = dir.resolve("vmlinux");
        Result r = run("extract-vmlinux", bz.toString(), out.toString());
        assertEquals(0, r.status(), r::toString);
        assertArrayEquals(vmlinux, Files.readAllBytes(out));
    }

    @Test
    void fileOverTwoGibIsOneLineAndStatus4() throws Exception {
        Path big = dir.resolve("big");
        try (RandomAccessFile f = new RandomAccessFile(big.toFile(), "rw")) {
            f.setLength(3L << 30);   // a hole: no disk space
        }
        Result r = run("extract-vmlinux", big.toString(), dir.resolve("out").toString());
        assertOneLine(r, ExitStatus.BAD_IMAGE, big.toString(), "not a Linux bzImage");
        assertFalse(Files.exists(dir.resolve("out")));
    }

    @Test
    void missingFileAndTruncatedPayload() throws Exception {
        assertOneLine(run("extract-vmlinux", dir.resolve("nope").toString(), dir.resolve("o").toString()),
                ExitStatus.BAD_IMAGE, "no such bzImage file");
        byte[] bz = LinuxImages.bzImage(Hdr.standard(), LinuxImages.compress(Kind.GZIP, LinuxImages.vmlinux(null)));
        Bytes.put32(bz, 0x24c, bz.length);
        Path p = Files.write(dir.resolve("trunc"), bz);
        assertOneLine(run("extract-vmlinux", p.toString(), dir.resolve("o").toString()), ExitStatus.BAD_IMAGE,
                "truncated bzImage payload");
    }
}
