package dev.jvmm.arch.x86.acpi;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.memory.Chunk;

import java.util.List;

/**
 * The Intel MultiProcessor Specification 1.4 tables, for kernels that do not read ACPI: the MP floating
 * pointer structure at {@link Layout#MP_TABLE} and the configuration table right after it. Describes
 * one processor per vCPU (APIC ids 0..n-1, vCPU 0 the bootstrap processor), one ISA bus, the IOAPIC
 * (id n) with ISA IRQs routed to its pins as the MADT does (IRQ 0 to pin 2, the others to the pin of
 * the same number; IRQ 2, the PIC cascade, is not routed since pin 2 belongs to IRQ 0), ExtINT on
 * LINT0 and NMI on LINT1 of every local APIC.
 */
public final class MpTable {
    private MpTable() { }

    public static final int FLOATING_SIZE = 16, HEADER_SIZE = 44;
    public static final int SPEC_REV = 4;
    public static final int PROCESSOR = 0, BUS = 1, IOAPIC = 2, IO_INTERRUPT = 3, LOCAL_INTERRUPT = 4;
    public static final int PROCESSOR_SIZE = 20, OTHER_ENTRY_SIZE = 8;
    public static final int INT_INT = 0, INT_NMI = 1, INT_EXTINT = 3;
    public static final int LAPIC_VERSION = 0x14, IOAPIC_VERSION = 0x11;
    /** Processor entries: CPU signature family 6, model 2, stepping 3 (a generic P6), and CPUID.1:EDX FPU and APIC. */
    public static final int CPU_SIGNATURE = 0x623, CPU_FEATURES = 1 | 1 << 9;
    public static final int ISA_BUS_ID = 0;

    /** The floating pointer and configuration table as chunks (floating pointer first), below 1 MiB. */
    public static List<Chunk> build(int cpus) {
        byte[] config = configTable(cpus);
        long floatingAt = Layout.MP_TABLE;
        long configAt = floatingAt + FLOATING_SIZE;
        if (configAt + config.length > Layout.HIMEM_START) throw new IllegalStateException("MP table does not fit below 1 MiB");
        return List.of(new Chunk("MP floating pointer", floatingAt, floatingPointer(configAt), 0),
                new Chunk("MP configuration table", configAt, config, 0));
    }

    /** The 16-byte "_MP_" structure pointing at the configuration table. */
    static byte[] floatingPointer(long configAddress) {
        byte[] b = new LeWriter().ascii("_MP_", 4).u32(configAddress)
                .u8(1)              // length in 16-byte paragraphs
                .u8(SPEC_REV).u8(0) // checksum, patched below
                .u8(0)              // feature 1: 0 = a configuration table is present
                .u8(0)              // feature 2: IMCRP clear, virtual wire mode
                .zeros(3).toBytes();
        b[10] = LeWriter.checksum(b, 0, b.length);
        return b;
    }

    /** The "PCMP" configuration table: header and base entries, sorted by entry type as the spec requires. */
    static byte[] configTable(int cpus) {
        if (cpus < 1 || cpus > AcpiTables.MAX_CPUS) {
            throw new IllegalArgumentException("MP table supports 1 to " + AcpiTables.MAX_CPUS + " vCPUs (got " + cpus + ")");
        }
        int ioapicId = cpus;
        LeWriter e = new LeWriter();
        int count = 0;
        for (int i = 0; i < cpus; i++) {
            e.u8(PROCESSOR).u8(i).u8(LAPIC_VERSION).u8(1 | (i == 0 ? 2 : 0))
                    .u32(CPU_SIGNATURE).u32(CPU_FEATURES).zeros(8);
            count++;
        }
        e.u8(BUS).u8(ISA_BUS_ID).ascii("ISA", 6);
        count++;
        e.u8(IOAPIC).u8(ioapicId).u8(IOAPIC_VERSION).u8(1).u32(Layout.IOAPIC_BASE);
        count++;
        for (int irq = 0; irq < 16; irq++) {
            if (irq == 2) continue;
            int pin = irq == 0 ? 2 : irq;
            e.u8(IO_INTERRUPT).u8(INT_INT).u16(0).u8(ISA_BUS_ID).u8(irq).u8(ioapicId).u8(pin);
            count++;
        }
        e.u8(LOCAL_INTERRUPT).u8(INT_EXTINT).u16(0).u8(ISA_BUS_ID).u8(0).u8(0xff).u8(0);
        e.u8(LOCAL_INTERRUPT).u8(INT_NMI).u16(0).u8(ISA_BUS_ID).u8(0).u8(0xff).u8(1);
        count += 2;

        byte[] entries = e.toBytes();
        byte[] b = new LeWriter().ascii("PCMP", 4).u16(HEADER_SIZE + entries.length).u8(SPEC_REV).u8(0)
                .ascii("JVMM", 8).ascii("JVMM", 12)
                .u32(0).u16(0)      // no OEM table
                .u16(count).u32(Layout.LAPIC_BASE)
                .u16(0).u8(0).u8(0) // no extended entries
                .bytes(entries).toBytes();
        b[7] = LeWriter.checksum(b, 0, b.length);
        return b;
    }
}
