package dev.jvmm.arch.x86.acpi;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.memory.Chunk;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

import static dev.jvmm.arch.x86.acpi.LeWriter.sum;
import static dev.jvmm.arch.x86.acpi.LeWriter.u16;
import static dev.jvmm.arch.x86.acpi.LeWriter.u32;
import static dev.jvmm.arch.x86.acpi.LeWriter.u64;
import static dev.jvmm.arch.x86.acpi.LeWriter.u8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AcpiTablesTest {
    static final List<VirtioMmioSlot> TWO_SLOTS = List.of(new VirtioMmioSlot(0xd0000000L, 0x1000, 5),
            new VirtioMmioSlot(0xd0001000L, 0x1000, 6));

    private static String ascii(byte[] b, int off, int len) {
        return new String(b, off, len, StandardCharsets.US_ASCII);
    }

    /** Checks the common header and returns the signature. */
    private static String checkHeader(byte[] t, String signature, int revision) {
        assertEquals(signature, ascii(t, 0, 4));
        assertEquals(t.length, u32(t, 4), signature + " length");
        assertEquals(revision, u8(t, 8), signature + " revision");
        assertEquals(0, sum(t, 0, t.length), signature + " checksum");
        assertEquals("JVMM  ", ascii(t, 10, 6));
        assertEquals("JVMMACPI", ascii(t, 16, 8));
        assertEquals(1, u32(t, 24));
        assertEquals("JVMM", ascii(t, 28, 4));
        assertEquals(1, u32(t, 32));
        return signature;
    }

    @Test
    void layoutAndHeaders() {
        for (int cpus : new int[] {1, 2, 8, 255}) {
            AcpiTables.Layouted l = AcpiTables.build(new AcpiConfig(cpus, TWO_SLOTS));
            assertEquals(AcpiTables.NAMES, List.copyOf(l.tables().keySet()));
            List<Chunk> chunks = l.chunks();
            assertEquals(5, chunks.size());
            assertEquals(Layout.ACPI_RSDP, chunks.get(0).guestAddress());
            long prevEnd = Layout.ACPI_RSDP;
            for (int i = 0; i < chunks.size(); i++) {
                Chunk c = chunks.get(i);
                assertEquals(0, c.guestAddress() % 16, c.what() + " aligned");
                assertTrue(c.guestAddress() >= prevEnd, c.what() + " does not overlap the previous table");
                assertTrue(c.end() <= Layout.ACPI_END, c.what() + " below ACPI_END");
                assertEquals(0, c.zeroFill());
                String name = AcpiTables.NAMES.get(i);
                assertEquals(l.address(name), c.guestAddress());
                assertTrue(Arrays.equals(l.table(name), c.data()));
                prevEnd = c.end();
            }
            checkHeader(l.table("xsdt"), "XSDT", 1);
            checkHeader(l.table("facp"), "FACP", 6);
            checkHeader(l.table("madt"), "APIC", 5);
            checkHeader(l.table("dsdt"), "DSDT", 2);
        }
    }

    @Test
    void rsdpPointsAtTheXsdt() {
        AcpiTables.Layouted l = AcpiTables.build(new AcpiConfig(1));
        byte[] r = l.table("rsdp");
        assertEquals(36, r.length);
        assertEquals("RSD PTR ", ascii(r, 0, 8));
        assertEquals(0, sum(r, 0, 20), "ACPI 1.0 checksum over 20 bytes");
        assertEquals(0, sum(r, 0, 36), "extended checksum over 36 bytes");
        assertEquals("JVMM  ", ascii(r, 9, 6));
        assertEquals(2, u8(r, 15));
        assertEquals(0, u32(r, 16), "no RSDT");
        assertEquals(36, u32(r, 20));
        assertEquals(l.address("xsdt"), u64(r, 24));
    }

    @Test
    void xsdtListsFadtAndMadt() {
        AcpiTables.Layouted l = AcpiTables.build(new AcpiConfig(2));
        byte[] x = l.table("xsdt");
        assertEquals(36 + 16, x.length);
        assertEquals(l.address("facp"), u64(x, 36));
        assertEquals(l.address("madt"), u64(x, 44));
    }

    @Test
    void fadtIsHardwareReduced() {
        AcpiTables.Layouted l = AcpiTables.build(new AcpiConfig(4));
        byte[] f = l.table("facp");
        assertEquals(276, f.length);
        long flags = u32(f, 112);
        assertTrue((flags & 1 << 20) != 0, "HW_REDUCED_ACPI");
        assertTrue((flags & 1 << 10) != 0, "RESET_REG_SUP");
        assertEquals(l.address("dsdt"), u64(f, 140), "X_DSDT");
        assertEquals(l.address("dsdt"), u32(f, 40), "DSDT");
        assertEquals(1 << 2, u16(f, 109), "IA-PC boot flags: VGA not present only (CMOS RTC present)");
        assertGas(f, 116, AcpiPorts.RESET);
        assertEquals(AcpiPorts.RESET_VALUE, u8(f, 128));
        assertGas(f, 244, AcpiPorts.SLEEP_CONTROL);
        assertGas(f, 256, AcpiPorts.SLEEP_STATUS);
        assertEquals("JVMM", ascii(f, 268, 4));
        assertEquals(0, u16(f, 46), "no SCI");
    }

    private static void assertGas(byte[] f, int off, int port) {
        assertEquals(1, u8(f, off), "system I/O");
        assertEquals(8, u8(f, off + 1), "8 bits");
        assertEquals(0, u8(f, off + 2));
        assertEquals(1, u8(f, off + 3), "byte access");
        assertEquals(port, u64(f, off + 4));
    }

    @Test
    void madtDescribesEveryCpu() {
        for (int cpus : new int[] {1, 3, 255}) {
            byte[] m = AcpiTables.build(new AcpiConfig(cpus)).table("madt");
            assertEquals(0xfee00000L, u32(m, 36));
            assertEquals(1, u32(m, 40), "PCAT_COMPAT");
            int lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
            for (int off = 44; off < m.length; off += u8(m, off + 1)) {
                int type = u8(m, off), len = u8(m, off + 1);
                switch (type) {
                    case 0 -> {
                        assertEquals(8, len);
                        assertEquals(lapics, u8(m, off + 2), "processor uid");
                        assertEquals(lapics, u8(m, off + 3), "APIC id");
                        assertEquals(1, u32(m, off + 4), "enabled");
                        lapics++;
                    }
                    case 1 -> {
                        assertEquals(12, len);
                        assertEquals(cpus, u8(m, off + 2), "IOAPIC id");
                        assertEquals(Layout.IOAPIC_BASE, u32(m, off + 4));
                        assertEquals(0, u32(m, off + 8), "GSI base");
                        ioapics++;
                    }
                    case 2 -> {
                        assertEquals(10, len);
                        assertEquals(0, u8(m, off + 2), "bus");
                        assertEquals(0, u8(m, off + 3), "source IRQ 0");
                        assertEquals(2, u32(m, off + 4), "GSI 2");
                        assertEquals(0, u16(m, off + 8));
                        overrides++;
                    }
                    case 4 -> {
                        assertEquals(6, len);
                        assertEquals(0xff, u8(m, off + 2), "all processors");
                        assertEquals(0, u16(m, off + 3));
                        assertEquals(1, u8(m, off + 5), "LINT1");
                        nmis++;
                    }
                    default -> throw new AssertionError("unexpected MADT entry type " + type);
                }
            }
            assertEquals(cpus, lapics);
            assertEquals(1, ioapics);
            assertEquals(1, overrides);
            assertEquals(1, nmis);
        }
    }

    @Test
    void tooManyCpusAreRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AcpiConfig(256, List.of()));
        assertTrue(e.getMessage().contains("255"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new AcpiConfig(0, List.of()));
        assertThrows(IllegalArgumentException.class, () -> AcpiTables.madt(256));
    }

    @Test
    void dsdtContents() {
        byte[] d = AcpiTables.build(new AcpiConfig(1, TWO_SLOTS)).table("dsdt");
        String s = new String(d, StandardCharsets.ISO_8859_1);
        assertTrue(s.contains("\\_SB_"));
        assertTrue(s.contains("COM1"));
        assertTrue(s.contains("LNRO0005\0"));
        assertTrue(s.contains("V000") && s.contains("V001"));
        assertFalse(s.contains("V002"));
        int s5 = s.indexOf("\\_S5_");
        assertTrue(s5 > 0);
        // Name(\_S5_, Package(2) {5, 0})
        byte[] pkg = Arrays.copyOfRange(d, s5 + 5, s5 + 11);
        assertTrue(Arrays.equals(new byte[] {0x12, 0x05, 0x02, 0x0a, 0x05, 0x00}, pkg));
        assertEquals(0x08, d[s5 - 1], "NameOp");
    }

    @Test
    void tablesThatDoNotFitAreRefused() {
        List<VirtioMmioSlot> many = new java.util.ArrayList<>();
        for (int i = 0; i < 2000; i++) many.add(new VirtioMmioSlot(0xd0000000L + 0x1000L * i, 0x1000, 5 + i % 16));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> AcpiTables.build(new AcpiConfig(1, many)));
        assertTrue(e.getMessage().contains("ACPI tables need"), e.getMessage());
    }

    @Test
    void sleepAndResetConstants() {
        assertEquals(0x34, AcpiPorts.POWEROFF_VALUE);
        assertTrue(AcpiPorts.isPowerOff(0x34));
        assertFalse(AcpiPorts.isPowerOff(0x14), "SLP_EN clear");
        assertFalse(AcpiPorts.isPowerOff(0x20 | 3 << 2), "S3");
        assertEquals(5, AcpiPorts.sleepType(0x34));
    }
}
