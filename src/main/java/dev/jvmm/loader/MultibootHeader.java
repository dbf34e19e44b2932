package dev.jvmm.loader;

import java.util.Optional;

/**
 * A multiboot v1 header found in a kernel image (spec 0.6.96, section 3.1).
 *
 * @param offset file offset of the magic field
 * @param flags  the header's flags
 */
public record MultibootHeader(int offset, int flags, long headerAddr, long loadAddr, long loadEndAddr,
                              long bssEndAddr, long entryAddr) {
    public static final int MAGIC = 0x1BADB002;
    public static final int BOOTLOADER_MAGIC = 0x2BADB002;
    /** The header must lie entirely within this many bytes from the start of the image. */
    public static final int SEARCH_LIMIT = 8192;
    /** magic, flags, checksum. */
    public static final int BASE_SIZE = 12;
    /** ... plus header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr. */
    public static final int AOUT_SIZE = 32;

    public static final int FLAG_PAGE_ALIGN = 1;
    public static final int FLAG_MEMORY_INFO = 1 << 1;
    public static final int FLAG_VIDEO_MODE = 1 << 2;
    public static final int FLAG_AOUT_KLUDGE = 1 << 16;
    /** Required-feature bits (0-15) we honour; bit 2 (video mode request) is accepted and ignored. */
    public static final int SUPPORTED_REQUIRED = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE;

    public boolean aoutKludge() {
        return (flags & FLAG_AOUT_KLUDGE) != 0;
    }

    /** Required-feature bits the header asks for that jvmm does not provide (0 if none). */
    public int unsupportedRequiredFlags() {
        return flags & 0xffff & ~SUPPORTED_REQUIRED;
    }

    /** The first valid header (magic and checksum), if any. */
    public static Optional<MultibootHeader> find(byte[] image) {
        int limit = Math.min(image.length, SEARCH_LIMIT);
        for (int off = 0; off + BASE_SIZE <= limit; off += 4) {
            if (Bytes.u32(image, off) != MAGIC) {
                continue;
            }
            int flags = Bytes.u32(image, off + 4);
            int checksum = Bytes.u32(image, off + 8);
            if (MAGIC + flags + checksum != 0) {
                continue;
            }
            if ((flags & FLAG_AOUT_KLUDGE) != 0 && off + AOUT_SIZE <= image.length) {
                return Optional.of(new MultibootHeader(off, flags,
                        Bytes.u32u(image, off + 12), Bytes.u32u(image, off + 16), Bytes.u32u(image, off + 20),
                        Bytes.u32u(image, off + 24), Bytes.u32u(image, off + 28)));
            }
            return Optional.of(new MultibootHeader(off, flags, 0, 0, 0, 0, 0));
        }
        return Optional.empty();
    }
}
