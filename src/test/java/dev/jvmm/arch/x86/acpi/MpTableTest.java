package dev.jvmm.arch.x86.acpi;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.memory.Chunk;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static dev.jvmm.arch.x86.acpi.LeWriter.sum;
import static dev.jvmm.arch.x86.acpi.LeWriter.u16;
import static dev.jvmm.arch.x86.acpi.LeWriter.u32;
import static dev.jvmm.arch.x86.acpi.LeWriter.u8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MpTableTest {
    @Test
    void floatingPointerAndConfigurationTable() {
        for (int cpus : new int[] {1, 4, 255}) {
            List<Chunk> chunks = MpTable.build(cpus);
            assertEquals(2, chunks.size());
            byte[] fp = chunks.get(0).data();
            byte[] ct = chunks.get(1).data();
            assertEquals(Layout.MP_TABLE, chunks.get(0).guestAddress());
            assertEquals(0, chunks.get(0).guestAddress() % 16);
            assertTrue(chunks.get(1).end() <= 0x100000, "below 1 MiB");

            assertEquals(16, fp.length);
            assertEquals("_MP_", new String(fp, 0, 4, StandardCharsets.US_ASCII));
            assertEquals(chunks.get(1).guestAddress(), u32(fp, 4));
            assertEquals(Layout.MP_TABLE + 16, u32(fp, 4), "config table right after the pointer");
            assertEquals(1, u8(fp, 8));
            assertEquals(4, u8(fp, 9), "spec rev 1.4");
            assertEquals(0, sum(fp, 0, 16));
            assertEquals(0, u8(fp, 11), "feature 1: config table present");

            assertEquals("PCMP", new String(ct, 0, 4, StandardCharsets.US_ASCII));
            assertEquals(ct.length, u16(ct, 4));
            assertEquals(4, u8(ct, 6));
            assertEquals(0, sum(ct, 0, ct.length));
            assertEquals(Layout.LAPIC_BASE, u32(ct, 36));
            int count = u16(ct, 34);
            int[] byType = new int[5];
            int lastType = 0, off = 44;
            for (int i = 0; i < count; i++) {
                int type = u8(ct, off);
                assertTrue(type >= lastType, "entries sorted by type");
                lastType = type;
                byType[type]++;
                switch (type) {
                    case 0 -> {
                        int id = byType[0] - 1;
                        assertEquals(id, u8(ct, off + 1), "APIC id");
                        assertEquals(0x14, u8(ct, off + 2));
                        assertEquals(id == 0 ? 3 : 1, u8(ct, off + 3), "enabled, BSP on vCPU 0");
                        assertTrue(u32(ct, off + 8) != 0, "feature flags");
                        off += 20;
                    }
                    case 1 -> {
                        assertEquals("ISA   ", new String(ct, off + 2, 6, StandardCharsets.US_ASCII));
                        off += 8;
                    }
                    case 2 -> {
                        assertEquals(cpus, u8(ct, off + 1), "IOAPIC id");
                        assertEquals(0x11, u8(ct, off + 2));
                        assertEquals(1, u8(ct, off + 3));
                        assertEquals(0xfec00000L, u32(ct, off + 4));
                        off += 8;
                    }
                    case 3 -> {
                        int irq = u8(ct, off + 5);
                        assertEquals(0, u8(ct, off + 1), "INT");
                        assertEquals(cpus, u8(ct, off + 6));
                        assertEquals(irq == 0 ? 2 : irq, u8(ct, off + 7), "pin of IRQ " + irq);
                        assertTrue(irq != 2 && irq < 16);
                        off += 8;
                    }
                    case 4 -> {
                        int kind = u8(ct, off + 1);
                        assertEquals(kind == 3 ? 0 : 1, u8(ct, off + 7), "ExtINT -> LINT0, NMI -> LINT1");
                        assertEquals(0xff, u8(ct, off + 6));
                        off += 8;
                    }
                    default -> throw new AssertionError("type " + type);
                }
            }
            assertEquals(ct.length, off, "entry count matches the length");
            assertEquals(cpus, byType[0]);
            assertEquals(1, byType[1]);
            assertEquals(1, byType[2]);
            assertEquals(15, byType[3], "ISA IRQs 0-15 except the cascade");
            assertEquals(2, byType[4]);
        }
        assertThrows(IllegalArgumentException.class, () -> MpTable.build(256));
        assertThrows(IllegalArgumentException.class, () -> MpTable.build(0));
    }
}
