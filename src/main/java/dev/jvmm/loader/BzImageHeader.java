package dev.jvmm.loader;

import java.nio.file.Path;

/**
 * The setup header of a bzImage (Documentation/arch/x86/boot.rst), every field jvmm uses checked
 * against the file's size before anything else is read or loaded: both boot modes and
 * extract-vmlinux go through {@link #parse}.
 *
 * @param hdrEnd        end of the setup header in the file (0x202 + the byte at 0x201)
 * @param pmOffset      file offset of the protected-mode kernel ((setup_sects + 1) * 512)
 * @param pmSize        bytes of protected-mode kernel in the file
 * @param payloadStart  file offset of the compressed payload
 * @param payloadLength its length
 * @param initSize      init_size: memory the kernel needs from its load address on (0 if not given)
 */
record BzImageHeader(int version, int hdrEnd, int setupSects, int pmOffset, long pmSize, long payloadStart,
                     long payloadLength, long initSize, long prefAddress, long kernelAlignment, boolean relocatable,
                     long cmdlineSize, long initrdAddrMax) {
    // Setup header fields, as offsets in the bzImage file and in struct boot_params alike.
    static final int SETUP_SECTS = 0x1F1, SYSSIZE = 0x1F4, BOOT_FLAG = 0x1FE, JUMP = 0x200, MAGIC = 0x202,
            VERSION = 0x206, TYPE_OF_LOADER = 0x210, LOADFLAGS = 0x211, CODE32_START = 0x214,
            RAMDISK_IMAGE = 0x218, RAMDISK_SIZE = 0x21C, HEAP_END_PTR = 0x224, CMD_LINE_PTR = 0x228,
            INITRD_ADDR_MAX = 0x22C, KERNEL_ALIGNMENT = 0x230, RELOCATABLE = 0x234, XLOADFLAGS = 0x236,
            CMDLINE_SIZE = 0x238, PAYLOAD_OFFSET = 0x248, PAYLOAD_LENGTH = 0x24C, PREF_ADDRESS = 0x258,
            INIT_SIZE = 0x260;
    /** End of the setup header fields this loader reads (init_size is the last, protocol 2.10). */
    static final int NEEDED_END = 0x264;
    /** The setup header area of boot_params ends here (edd_mbr_sig_buffer follows). */
    static final int AREA_END = 0x290;
    /** The header lies within this many bytes of the start: what to read first of a file. */
    static final int MAX_END = JUMP + 2 + 255;
    /** "HdrS" as a little-endian u32. */
    static final int HDRS_MAGIC = 0x53726448;
    static final int BOOT_FLAG_VALUE = 0xAA55;
    static final int XLF_KERNEL_64 = 0x01;
    /** Boot protocol 2.12: the first with xloadflags, which says a kernel has a 64-bit entry. */
    static final int MIN_BOOT_PROTOCOL = 0x020c;
    /** Boot protocol 2.08: the first with payload_offset and payload_length (extract-vmlinux). */
    static final int MIN_PAYLOAD_PROTOCOL = 0x0208;

    /** True if {@code image} starts with a bzImage setup header: boot_flag 0xAA55 and "HdrS". */
    static boolean isBzImage(byte[] image) {
        return image.length >= MAGIC + 4 && Bytes.u16(image, BOOT_FLAG) == BOOT_FLAG_VALUE
                && Bytes.u32(image, MAGIC) == HDRS_MAGIC;
    }

    /**
     * Parses and checks the header in {@code head} (the file's first bytes, at least up to the
     * header's end when the file has them) of a {@code fileSize}-byte bzImage.
     *
     * @param boot64 whether the kernel will be booted (protocol 2.12 and XLF_KERNEL_64 are then needed),
     *               or only its payload extracted (protocol 2.08)
     */
    static BzImageHeader parse(Path file, byte[] head, long fileSize, boolean boot64) throws LoadException {
        if (!isBzImage(head)) {
            throw new LoadException(file + ": not a Linux bzImage (no boot_flag 0xAA55 and \"HdrS\" setup header)");
        }
        if (head.length < VERSION + 2) {
            throw new LoadException(file + ": truncated bzImage setup header");
        }
        int version = Bytes.u16(head, VERSION);
        int minVersion = boot64 ? MIN_BOOT_PROTOCOL : MIN_PAYLOAD_PROTOCOL;
        if (version < minVersion) {
            throw new LoadException(file + ": Linux boot protocol " + protocol(version) + " is too old: jvmm needs "
                    + protocol(minVersion) + " or later" + (boot64 ? " (a kernel with a 64-bit entry point)" : ""));
        }
        int hdrEnd = JUMP + 2 + (head[JUMP + 1] & 0xff);
        if (hdrEnd < NEEDED_END || head.length < hdrEnd) {
            throw new LoadException(file + ": truncated bzImage setup header: it should end at " + Bytes.hex(hdrEnd)
                    + " and reach at least " + Bytes.hex(NEEDED_END) + ", the file has " + fileSize + " bytes");
        }
        if (boot64 && (Bytes.u16(head, XLOADFLAGS) & XLF_KERNEL_64) == 0) {
            throw new LoadException(file + ": not a 64-bit capable kernel (XLF_KERNEL_64 not set in xloadflags):"
                    + " jvmm boots x86-64 kernels through the 64-bit boot protocol");
        }
        int setupSects = head[SETUP_SECTS] & 0xff;
        if (setupSects == 0) {
            setupSects = 4;   // boot.rst: 0 means 4
        }
        int pmOffset = (setupSects + 1) * 512;
        if (pmOffset >= fileSize) {
            throw new LoadException(file + ": truncated bzImage: the setup code (" + setupSects
                    + " sectors) leaves no protected-mode kernel in the " + fileSize + "-byte file");
        }
        long pmSize = fileSize - pmOffset;
        // syssize counts 16-byte paragraphs of protected-mode code; the build pads the file to it exactly
        long syssize = Bytes.u32u(head, SYSSIZE);
        if (syssize == 0 || syssize * 16 > ((pmSize + 15) & ~15L)) {
            throw new LoadException(file + ": truncated bzImage: its header (syssize " + syssize + ") declares "
                    + syssize * 16 + " bytes of protected-mode kernel, the file has " + pmSize);
        }
        long payloadOffset = Bytes.u32u(head, PAYLOAD_OFFSET);
        long payloadLength = Bytes.u32u(head, PAYLOAD_LENGTH);
        long payloadStart = pmOffset + payloadOffset;
        if (payloadLength == 0 || payloadOffset + payloadLength > pmSize) {
            throw new LoadException(file + ": truncated bzImage payload: " + payloadLength + " bytes at offset "
                    + payloadStart + ", the file has " + fileSize + " bytes");
        }
        return new BzImageHeader(version, hdrEnd, setupSects, pmOffset, pmSize, payloadStart, payloadLength,
                Bytes.u32u(head, INIT_SIZE), Bytes.u64(head, PREF_ADDRESS), Bytes.u32u(head, KERNEL_ALIGNMENT),
                head[RELOCATABLE] != 0, version >= 0x0206 ? Bytes.u32u(head, CMDLINE_SIZE) : 255,
                Bytes.u32u(head, INITRD_ADDR_MAX));
    }

    static String protocol(int version) {
        int minor = version & 0xff; // "%02d", without a Formatter and its locale data (start-up)
        return (version >> 8) + "." + (minor < 10 ? "0" : "") + minor;
    }
}
