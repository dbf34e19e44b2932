package dev.jvmm.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DumpAcpiCommandTest {
    private record Result(int status, String out, String err) { }

    private static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = Main.execute(args, new PrintStream(out, true), new PrintStream(err, true));
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void writesOneFilePerTable(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("a/b");
        Result r = run("dump-acpi", "--smp", "4", "--mem", "1G", "--out", dir.toString());
        assertEquals(0, r.status(), r::toString);
        assertEquals(5, r.out().lines().count(), r.out());
        assertEquals("", r.err());
        for (String name : new String[] {"rsdp", "xsdt", "facp", "madt", "dsdt"}) {
            Path f = dir.resolve(name + ".dat");
            assertTrue(Files.size(f) >= 36, f.toString());
            assertTrue(r.out().contains(f.toString()), r.out());
        }
        byte[] madt = Files.readAllBytes(dir.resolve("madt.dat"));
        assertEquals(44 + 4 * 8 + 12 + 10 + 6, madt.length, "four local APIC entries");
    }

    @Test
    void badSmpIsAUsageError(@TempDir Path tmp) {
        for (String smp : new String[] {"0", "256", "x"}) {
            Result r = run("dump-acpi", "--smp", smp, "--out", tmp.toString());
            assertEquals(2, r.status(), r::toString);
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("jvmm: "), r.err());
        }
        Result r = run("dump-acpi", "--mem", "12Q", "--out", tmp.toString());
        assertEquals(2, r.status(), r::toString);
        assertTrue(r.err().startsWith("jvmm: invalid size"), r.err());
    }
}
