package dev.jvmm.loader;

import dev.jvmm.arch.x86.E820;
import dev.jvmm.arch.x86.Layout;

import java.util.List;

import static dev.jvmm.loader.BzImageHeader.*;

/** The Linux zero page ({@code struct boot_params}) for the 64-bit boot protocol. */
final class ZeroPage {
    private ZeroPage() { }

    static final int SIZE = 4096;
    // struct boot_params fields outside the setup header.
    static final int ACPI_RSDP_ADDR = 0x070, EXT_RAMDISK_IMAGE = 0x0C0, EXT_RAMDISK_SIZE = 0x0C4,
            EXT_CMD_LINE_PTR = 0x0C8, E820_ENTRIES = 0x1E8, E820_TABLE = 0x2D0;
    static final int E820_MAX_ENTRIES = 128;
    static final int LOADED_HIGH = 0x01, KEEP_SEGMENTS = 0x40, CAN_USE_HEAP = 0x80;
    static final int TYPE_OF_LOADER_UNDEFINED = 0xff;
    /** The protocol version a from-scratch zero page (ELF vmlinux, 64-bit entry) announces. */
    static final int SYNTHETIC_PROTOCOL = 0x020f;
    /** Linux's default COMMAND_LINE_SIZE is 2048 bytes including the NUL. */
    static final int DEFAULT_CMDLINE_SIZE = 2047;
    static final long DEFAULT_INITRD_ADDR_MAX = 0x7fffffffL;
    /** Heap end for CAN_USE_HEAP, relative to the (unused) real-mode setup segment. */
    static final int HEAP_END = 0xfe00;

    /** A zero page holding a bzImage's setup header (copied up to its end, at most the header area). */
    static byte[] fromSetupHeader(byte[] image, BzImageHeader h) {
        byte[] zp = new byte[SIZE];
        int copyEnd = Math.min(h.hdrEnd(), AREA_END);
        System.arraycopy(image, SETUP_SECTS, zp, SETUP_SECTS, copyEnd - SETUP_SECTS);
        return zp;
    }

    /** A zero page for a kernel that came without a setup header (an ELF vmlinux). */
    static byte[] synthetic() {
        byte[] zp = new byte[SIZE];
        Bytes.put16(zp, BOOT_FLAG, BOOT_FLAG_VALUE);
        zp[JUMP + 1] = (byte) (NEEDED_END + 4 - (JUMP + 2));
        Bytes.put32(zp, MAGIC, HDRS_MAGIC);
        Bytes.put16(zp, VERSION, SYNTHETIC_PROTOCOL);
        zp[LOADFLAGS] = LOADED_HIGH;
        Bytes.put32(zp, KERNEL_ALIGNMENT, 0x200000);
        Bytes.put32(zp, INITRD_ADDR_MAX, DEFAULT_INITRD_ADDR_MAX);
        Bytes.put32(zp, CMDLINE_SIZE, DEFAULT_CMDLINE_SIZE);
        Bytes.put16(zp, XLOADFLAGS, XLF_KERNEL_64);
        return zp;
    }

    /** Sets the boot loader's fields of a zero page whose setup header is already in place. */
    static void fill(byte[] zp, LoadOptions opts, Initrd initrd, List<E820.Entry> map) {
        zp[TYPE_OF_LOADER] = (byte) TYPE_OF_LOADER_UNDEFINED;
        zp[LOADFLAGS] = (byte) ((zp[LOADFLAGS] | CAN_USE_HEAP) & ~KEEP_SEGMENTS);
        Bytes.put16(zp, HEAP_END_PTR, HEAP_END);
        Bytes.put32(zp, CMD_LINE_PTR, Layout.CMDLINE);
        Bytes.put32(zp, EXT_CMD_LINE_PTR, Layout.CMDLINE >>> 32);
        Bytes.put32(zp, RAMDISK_IMAGE, initrd.address());
        Bytes.put32(zp, RAMDISK_SIZE, initrd.size());
        Bytes.put32(zp, EXT_RAMDISK_IMAGE, initrd.address() >>> 32);
        Bytes.put32(zp, EXT_RAMDISK_SIZE, initrd.size() >>> 32);
        Bytes.put64(zp, ACPI_RSDP_ADDR, opts.rsdpAddress());
        int n = Math.min(map.size(), E820_MAX_ENTRIES);
        zp[E820_ENTRIES] = (byte) n;
        for (int i = 0; i < n; i++) {
            E820.Entry e = map.get(i);
            int off = E820_TABLE + 20 * i;
            Bytes.put64(zp, off, e.base());
            Bytes.put64(zp, off + 8, e.length());
            Bytes.put32(zp, off + 16, e.type());
        }
    }
}
