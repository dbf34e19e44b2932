package dev.jvmm.arch.x86.acpi;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Disassembles the tables with ACPICA's {@code iasl -d} (Debian package acpica-tools). Skipped when iasl
 * is missing, unless the environment variable CI is set: then missing iasl is a failure.
 *
 * <p>The RSDP is not given to iasl: as a stand-alone file it is not a table iasl's loader accepts
 * ("RSD PTR " is not a valid table signature), so {@link AcpiTablesTest} checks it field by field.
 */
class AcpiIaslTest {
    private static String iasl;

    @BeforeAll
    static void findIasl() {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(File.pathSeparator)) {
            Path p = Path.of(dir, "iasl");
            if (Files.isExecutable(p)) {
                iasl = p.toString();
                return;
            }
        }
        String ci = System.getenv("CI");
        if (ci != null && !ci.isEmpty()) fail("iasl is not installed (apt-get install acpica-tools); CI requires it");
        Assumptions.abort("iasl is not installed (Debian package acpica-tools); skipping the disassembly test");
    }

    private record Result(int status, String output, String dsl) { }

    private static Result disassemble(Path dir, String file) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(iasl, "-d", file).directory(dir.toFile()).redirectErrorStream(true).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("iasl -d " + file + " did not finish");
        }
        Path dsl = dir.resolve(file.replace(".dat", ".dsl"));
        String text = Files.exists(dsl) ? Files.readString(dsl, StandardCharsets.ISO_8859_1) : "";
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8), text);
    }

    private static Map<String, Result> dumpAndDisassemble(Path dir, int cpus) throws Exception {
        AcpiTables.Layouted l = AcpiTables.build(new AcpiConfig(cpus, AcpiTablesTest.TWO_SLOTS));
        Map<String, Result> results = new java.util.LinkedHashMap<>();
        for (String name : AcpiTables.NAMES) {
            Files.write(dir.resolve(name + ".dat"), l.table(name));
            if (name.equals("rsdp")) continue;
            Result r = disassemble(dir, name + ".dat");
            assertEquals(0, r.status(), () -> "iasl -d " + name + ".dat failed:\n" + r.output());
            assertTrue(r.output().contains("valid ACPI table"), r.output());
            results.put(name, r);
        }
        return results;
    }

    private static int count(String haystack, String needle) {
        int n = 0;
        for (int i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) n++;
        return n;
    }

    private static void check(Map<String, Result> r, int cpus) {
        String dsdt = r.get("dsdt").dsl();
        for (String s : new String[] {"Scope (\\_SB)", "Device (COM1)", "EisaId (\"PNP0501\")", "0x03F8", "IRQNoFlags ()",
                "Device (RTC0)", "EisaId (\"PNP0B00\")", "0x0070",
                "Device (V000)", "Device (V001)", "\"LNRO0005\"", "Memory32Fixed (ReadWrite,", "0xD0000000", "0xD0001000",
                "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )", "0x00000005", "0x00000006",
                "Name (\\_S5, Package (0x02)", "_S5_"}) {
            assertTrue(dsdt.contains(s), () -> "DSDT disassembly lacks " + s + ":\n" + dsdt);
        }
        String madt = r.get("madt").dsl();
        assertEquals(cpus, count(madt, "[Processor Local APIC]"), madt);
        assertEquals(1, count(madt, "[I/O APIC]"), madt);
        assertEquals(1, count(madt, "[Interrupt Source Override]"), madt);
        assertEquals(1, count(madt, "[Local APIC NMI]"), madt);
        assertTrue(madt.contains("Local Apic Address : FEE00000"), madt);
        String facp = r.get("facp").dsl();
        for (String s : new String[] {"Hardware Reduced (V5) : 1", "Reset Register Supported (V2) : 1", "VGA Not Present (V4) : 1",
                "CMOS RTC Not Present (V5) : 0", "Address : 00000000000003C0", "Address : 00000000000003C1",
                "Address : 00000000000003C2", "Value to cause reset : 01", "Revision : 06"}) {
            assertTrue(facp.contains(s), () -> "FADT disassembly lacks " + s + ":\n" + facp);
        }
        String xsdt = r.get("xsdt").dsl();
        assertTrue(xsdt.contains("ACPI Table Address   1"), xsdt);
    }

    @Test
    void oneCpu(@TempDir Path dir) throws Exception {
        check(dumpAndDisassemble(dir, 1), 1);
    }

    @Test
    void eightCpus(@TempDir Path dir) throws Exception {
        check(dumpAndDisassemble(dir, 8), 8);
    }
}
