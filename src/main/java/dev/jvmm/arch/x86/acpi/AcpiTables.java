package dev.jvmm.arch.x86.acpi;

import dev.jvmm.arch.x86.PcPlatform;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.memory.Chunk;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The ACPI tables a guest reads: RSDP (revision 2) -> XSDT -> FADT (hardware-reduced, revision 6) and
 * MADT; the FADT points at the DSDT. Laid out from {@link Layout#ACPI_RSDP} upward, 16-byte aligned,
 * below {@link Layout#ACPI_END}. Plain bytes: the VMM copies the {@link Layouted#chunks()} into guest
 * memory and implements the registers in {@link AcpiPorts}.
 */
public final class AcpiTables {
    private AcpiTables() { }

    /** vCPUs the MADT can describe with xAPIC ids 0..254 (the IOAPIC takes id {@code cpus}). */
    public static final int MAX_CPUS = PcPlatform.MAX_CPUS;

    public static final String OEM_ID = "JVMM  ";
    public static final String OEM_TABLE_ID = "JVMMACPI";
    public static final int OEM_REVISION = 1;
    public static final String CREATOR_ID = "JVMM";
    public static final int CREATOR_REVISION = 1;

    public static final int HEADER_SIZE = 36;
    public static final int RSDP_SIZE = 36;
    public static final int FADT_SIZE = 276;
    public static final int FADT_REVISION = 6, FADT_MINOR_REVISION = 5;
    public static final int MADT_REVISION = 5, DSDT_REVISION = 2, XSDT_REVISION = 1;

    /** FADT field offsets (ACPI 6.5 table 5.9). */
    public static final int FADT_DSDT = 40, FADT_SCI_INT = 46, FADT_IAPC_BOOT_ARCH = 109, FADT_FLAGS = 112,
            FADT_RESET_REG = 116, FADT_RESET_VALUE = 128, FADT_MINOR_VERSION = 131, FADT_X_DSDT = 140,
            FADT_SLEEP_CONTROL_REG = 244, FADT_SLEEP_STATUS_REG = 256, FADT_HYPERVISOR_VENDOR = 268;
    /** FADT flags. */
    public static final int FADT_RESET_REG_SUP = 1 << 10, FADT_HW_REDUCED_ACPI = 1 << 20;
    /** IA-PC boot architecture flags: bit 2, VGA not present (legacy devices, 8042 and CMOS RTC are not flagged absent). */
    public static final int IAPC_VGA_NOT_PRESENT = 1 << 2;

    /** MADT entry types and sizes. */
    public static final int MADT_LOCAL_APIC = 0, MADT_IO_APIC = 1, MADT_INTERRUPT_OVERRIDE = 2, MADT_LOCAL_APIC_NMI = 4;
    public static final int MADT_PCAT_COMPAT = 1;

    /** Generic Address Structure address space: system I/O. */
    static final int GAS_SYSTEM_IO = 1, GAS_ACCESS_BYTE = 1;

    /** The COM1 UART the DSDT describes. */
    public static final int COM1_PORT = PcPlatform.COM1_PORT, COM1_IRQ = PcPlatform.COM1_IRQ;
    public static final String VIRTIO_MMIO_HID = "LNRO0005";

    /** Table names, in layout order; also the keys of {@link Layouted#tables()}. */
    public static final List<String> NAMES = List.of("rsdp", "xsdt", "facp", "madt", "dsdt");

    /**
     * The laid-out tables: {@code chunks} to write into guest memory (in address order), and by name
     * ({@link #NAMES}) each table's bytes and guest address.
     */
    public record Layouted(List<Chunk> chunks, Map<String, byte[]> tables, Map<String, Long> addresses) {
        public byte[] table(String name) {
            byte[] b = tables.get(name);
            if (b == null) throw new IllegalArgumentException("no ACPI table named " + name);
            return b;
        }

        public long address(String name) {
            Long a = addresses.get(name);
            if (a == null) throw new IllegalArgumentException("no ACPI table named " + name);
            return a;
        }
    }

    /** Builds and lays out the tables; throws IllegalStateException if they do not fit below {@link Layout#ACPI_END}. */
    public static Layouted build(AcpiConfig config) {
        byte[] dsdt = dsdt(config);
        byte[] madt = madt(config.cpus());
        long rsdpAt = Layout.ACPI_RSDP;
        long xsdtAt = align(rsdpAt + RSDP_SIZE);
        long fadtAt = align(xsdtAt + HEADER_SIZE + 2 * 8);
        long madtAt = align(fadtAt + FADT_SIZE);
        long dsdtAt = align(madtAt + madt.length);
        long end = dsdtAt + dsdt.length;
        if (end > Layout.ACPI_END) {
            throw new IllegalStateException("ACPI tables need 0x" + Long.toHexString(end - rsdpAt) + " bytes, more than the 0x"
                    + Long.toHexString(Layout.ACPI_END - rsdpAt) + " reserved at 0x" + Long.toHexString(rsdpAt));
        }
        byte[] fadt = fadt(dsdtAt);
        byte[] xsdt = xsdt(fadtAt, madtAt);
        byte[] rsdp = rsdp(xsdtAt);

        Map<String, byte[]> tables = new LinkedHashMap<>();
        Map<String, Long> addresses = new LinkedHashMap<>();
        List<Chunk> chunks = new ArrayList<>();
        Object[][] all = {{"rsdp", rsdp, rsdpAt}, {"xsdt", xsdt, xsdtAt}, {"facp", fadt, fadtAt}, {"madt", madt, madtAt}, {"dsdt", dsdt, dsdtAt}};
        for (Object[] t : all) {
            String name = (String) t[0];
            byte[] data = (byte[]) t[1];
            long at = (Long) t[2];
            tables.put(name, data);
            addresses.put(name, at);
            chunks.add(new Chunk("ACPI " + name.toUpperCase(), at, data, 0));
        }
        return new Layouted(List.copyOf(chunks), Collections.unmodifiableMap(tables), Collections.unmodifiableMap(addresses));
    }

    private static long align(long a) {
        return (a + 15) & ~15L;
    }

    // ---- tables ----

    /** RSDP revision 2: checksum over the first 20 bytes, extended checksum over all 36; no RSDT. */
    static byte[] rsdp(long xsdtAddress) {
        byte[] b = new LeWriter()
                .ascii("RSD PTR ", 8).u8(0).ascii(OEM_ID, 6).u8(2)
                .u32(0)                 // RsdtAddress: none, the XSDT is the root
                .u32(RSDP_SIZE).u64(xsdtAddress)
                .u8(0).zeros(3).toBytes();
        b[8] = LeWriter.checksum(b, 0, 20);
        b[32] = LeWriter.checksum(b, 0, RSDP_SIZE);
        return b;
    }

    static byte[] xsdt(long... entries) {
        LeWriter w = header("XSDT", XSDT_REVISION);
        for (long e : entries) w.u64(e);
        return finish(w);
    }

    /** FADT revision 6 (276 bytes), hardware-reduced: only the DSDT, the sleep registers and the reset register. */
    static byte[] fadt(long dsdtAddress) {
        byte[] b = finish(header("FACP", FADT_REVISION).zeros(FADT_SIZE - HEADER_SIZE));
        LeWriter.put32(b, FADT_DSDT, dsdtAddress);
        LeWriter.put16(b, FADT_IAPC_BOOT_ARCH, IAPC_VGA_NOT_PRESENT);
        LeWriter.put32(b, FADT_FLAGS, FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP);
        putIoGas(b, FADT_RESET_REG, AcpiPorts.RESET);
        LeWriter.put8(b, FADT_RESET_VALUE, AcpiPorts.RESET_VALUE);
        LeWriter.put8(b, FADT_MINOR_VERSION, FADT_MINOR_REVISION);
        LeWriter.put64(b, FADT_X_DSDT, dsdtAddress);
        putIoGas(b, FADT_SLEEP_CONTROL_REG, AcpiPorts.SLEEP_CONTROL);
        putIoGas(b, FADT_SLEEP_STATUS_REG, AcpiPorts.SLEEP_STATUS);
        System.arraycopy("JVMM\0\0\0\0".getBytes(StandardCharsets.US_ASCII), 0, b, FADT_HYPERVISOR_VENDOR, 8);
        b[9] = 0;
        b[9] = LeWriter.checksum(b, 0, b.length);
        return b;
    }

    /** A Generic Address Structure for an 8-bit register at I/O port {@code port}. */
    private static void putIoGas(byte[] b, int off, int port) {
        b[off] = GAS_SYSTEM_IO;
        b[off + 1] = 8;               // register bit width
        b[off + 2] = 0;               // bit offset
        b[off + 3] = GAS_ACCESS_BYTE;
        LeWriter.put64(b, off + 4, port);
    }

    /**
     * MADT: one enabled local APIC per vCPU (UID = APIC id = index), the IOAPIC (id = cpus, GSI base 0),
     * ISA IRQ 0 -> GSI 2, and LINT1 as NMI on every processor.
     */
    static byte[] madt(int cpus) {
        if (cpus < 1 || cpus > MAX_CPUS) throw new IllegalArgumentException("MADT supports 1 to " + MAX_CPUS + " vCPUs (got " + cpus + ")");
        LeWriter w = header("APIC", MADT_REVISION).u32(Layout.LAPIC_BASE).u32(MADT_PCAT_COMPAT);
        for (int i = 0; i < cpus; i++) {
            w.u8(MADT_LOCAL_APIC).u8(8).u8(i).u8(i).u32(1);
        }
        w.u8(MADT_IO_APIC).u8(12).u8(cpus).u8(0).u32(Layout.IOAPIC_BASE).u32(0);
        w.u8(MADT_INTERRUPT_OVERRIDE).u8(10).u8(0).u8(0).u32(2).u16(0);
        w.u8(MADT_LOCAL_APIC_NMI).u8(6).u8(0xff).u16(0).u8(1);
        return finish(w);
    }

    static final int RTC_PORT = PcPlatform.RTC_PORT, RTC_IRQ = PcPlatform.RTC_IRQ;

    /** DSDT: {@code \_SB_} with COM1, the RTC, pvpanic and one LNRO0005 device per virtio-mmio slot; {@code \_S5_}. */
    static byte[] dsdt(AcpiConfig config) {
        List<byte[]> devices = new ArrayList<>();
        devices.add(Aml.device("COM1",
                Aml.name("_HID", Aml.eisaId("PNP0501")),
                Aml.name("_UID", Aml.integer(0)),
                Aml.name("_CRS", Aml.resourceTemplate(
                        Aml.io(COM1_PORT, COM1_PORT, 0, 8),
                        Aml.irqNoFlags(COM1_IRQ)))));
        // the CMOS RTC at 0x70: without it Linux's rtc_cmos finds no device on an ACPI machine
        devices.add(Aml.device("RTC0",
                Aml.name("_HID", Aml.eisaId("PNP0B00")),
                Aml.name("_CRS", Aml.resourceTemplate(
                        Aml.io(RTC_PORT, RTC_PORT, 0, 2),
                        Aml.irqNoFlags(RTC_IRQ)))));
        // pvpanic, as QEMU announces it: Linux's pvpanic driver binds QEMU0001 and reports panics there
        devices.add(Aml.device("PEVT",
                Aml.name("_HID", Aml.string("QEMU0001")),
                Aml.name("_CRS", Aml.resourceTemplate(Aml.io(PcPlatform.PVPANIC_PORT, PcPlatform.PVPANIC_PORT, 1, 1)))));
        List<VirtioMmioSlot> slots = config.virtioSlots();
        if (slots.size() > 0x1000) throw new IllegalArgumentException("at most 4096 virtio-mmio slots");
        for (int i = 0; i < slots.size(); i++) {
            VirtioMmioSlot s = slots.get(i);
            String hex = Integer.toHexString(i).toUpperCase(java.util.Locale.ROOT); // "V%03X", without a Formatter
            devices.add(Aml.device("V" + "0".repeat(3 - hex.length()) + hex,
                    Aml.name("_HID", Aml.string(VIRTIO_MMIO_HID)),
                    Aml.name("_UID", Aml.integer(i)),
                    Aml.name("_CRS", Aml.resourceTemplate(
                            Aml.memory32Fixed(true, s.base(), s.size()),
                            Aml.interrupt(!s.levelTriggered(), false, false, s.gsi())))));
        }
        byte[] aml = Aml.concat(
                Aml.scope("\\_SB", devices.toArray(byte[][]::new)),
                Aml.name("\\_S5", Aml.packageOf(Aml.integer(AcpiPorts.S5_SLP_TYP), Aml.integer(0))));
        return finish(header("DSDT", DSDT_REVISION).bytes(aml));
    }

    // ---- header ----

    /** The 36-byte header with length and checksum 0, to be patched by {@link #finish}. */
    static LeWriter header(String signature, int revision) {
        return new LeWriter().ascii(signature, 4).u32(0).u8(revision).u8(0)
                .ascii(OEM_ID, 6).ascii(OEM_TABLE_ID, 8).u32(OEM_REVISION)
                .ascii(CREATOR_ID, 4).u32(CREATOR_REVISION);
    }

    /** Patches the length and checksum fields. */
    static byte[] finish(LeWriter w) {
        byte[] b = w.toBytes();
        LeWriter.put32(b, 4, b.length);
        b[9] = 0;
        b[9] = LeWriter.checksum(b, 0, b.length);
        return b;
    }
}
