package dev.jvmm.arch.x86.acpi;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * A tiny AML (ACPI Machine Language) writer: enough to describe devices in a DSDT without methods.
 * Every method returns the encoded bytes of one term or resource descriptor; terms are combined by
 * passing them to {@link #scope}, {@link #device}, {@link #packageOf} or {@link #concat}.
 *
 * <p>Encodings follow the ACPI specification, chapter 20 (AML grammar) and section 6.4 (resource
 * descriptors).
 */
public final class Aml {
    private Aml() { }

    static final int ZERO_OP = 0x00, ONE_OP = 0x01, NAME_OP = 0x08, BYTE_PREFIX = 0x0a, WORD_PREFIX = 0x0b,
            DWORD_PREFIX = 0x0c, STRING_PREFIX = 0x0d, QWORD_PREFIX = 0x0e, SCOPE_OP = 0x10, BUFFER_OP = 0x11,
            PACKAGE_OP = 0x12, EXT_OP_PREFIX = 0x5b, DEVICE_OP = 0x82, ROOT_CHAR = '\\', PARENT_PREFIX = '^',
            DUAL_NAME_PREFIX = 0x2e, MULTI_NAME_PREFIX = 0x2f, NULL_NAME = 0x00;

    /** Largest value a PkgLength can hold (28 bits). */
    public static final int PKG_LENGTH_MAX = 0x0fff_ffff;

    // ---- names ----

    /**
     * One NameSeg: 1 to 4 characters, the first {@code A-Z} or {@code _}, the others also {@code 0-9},
     * padded to 4 with {@code _} ({@code "_SB"} becomes {@code "_SB_"}).
     */
    public static byte[] nameSeg(String seg) {
        if (seg.isEmpty() || seg.length() > 4) throw new IllegalArgumentException("AML name segment must have 1 to 4 characters: '" + seg + "'");
        byte[] b = new byte[4];
        for (int i = 0; i < 4; i++) {
            char c = i < seg.length() ? seg.charAt(i) : '_';
            boolean ok = c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9';
            if (!ok) throw new IllegalArgumentException("invalid character '" + c + "' in AML name segment '" + seg + "'");
            b[i] = (byte) c;
        }
        return b;
    }

    /**
     * A NameString: an optional root prefix {@code \} or parent prefixes {@code ^}, then segments
     * separated by dots, e.g. {@code "\_SB.COM1"} or {@code "_HID"}. An empty path (or a bare
     * {@code \}) ends in a NullName.
     */
    public static byte[] nameString(String path) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int i = 0;
        if (path.startsWith("\\")) {
            out.write(ROOT_CHAR);
            i = 1;
        } else {
            while (i < path.length() && path.charAt(i) == '^') {
                out.write(PARENT_PREFIX);
                i++;
            }
        }
        String rest = path.substring(i);
        String[] segs = rest.isEmpty() ? new String[0] : rest.split("\\.", -1);
        switch (segs.length) {
            case 0 -> out.write(NULL_NAME);
            case 1 -> { }
            case 2 -> out.write(DUAL_NAME_PREFIX);
            default -> {
                if (segs.length > 255) throw new IllegalArgumentException("AML name path too long: " + path);
                out.write(MULTI_NAME_PREFIX);
                out.write(segs.length);
            }
        }
        for (String s : segs) out.writeBytes(nameSeg(s));
        return out.toByteArray();
    }

    // ---- data objects ----

    /**
     * An integer in its shortest encoding: ZeroOp, OneOp, or a Byte/Word/DWord/QWord prefix. The value is
     * unsigned (a negative long is a 64-bit value and takes a QWord).
     */
    public static byte[] integer(long v) {
        if (v == 0) return new byte[] {ZERO_OP};
        if (v == 1) return new byte[] {ONE_OP};
        LeWriter w = new LeWriter();
        if ((v & ~0xffL) == 0) w.u8(BYTE_PREFIX).u8((int) v);
        else if ((v & ~0xffffL) == 0) w.u8(WORD_PREFIX).u16((int) v);
        else if ((v & ~0xffff_ffffL) == 0) w.u8(DWORD_PREFIX).u32(v);
        else w.u8(QWORD_PREFIX).u64(v);
        return w.toBytes();
    }

    /** An ASCII string constant (characters 0x01-0x7f), NUL-terminated. */
    public static byte[] string(String s) {
        byte[] chars = s.getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == 0 || c > 0x7f) throw new IllegalArgumentException("AML strings hold ASCII 0x01-0x7f only: '" + s + "'");
        }
        return new LeWriter().u8(STRING_PREFIX).bytes(chars).u8(0).toBytes();
    }

    /** A 32-bit compressed EISA id, e.g. {@code "PNP0501"} -> 0x0105d041. */
    public static int eisaIdValue(String id) {
        if (!id.matches("[A-Z]{3}[0-9A-F]{4}")) {
            throw new IllegalArgumentException("EISA id must be 3 letters and 4 upper-case hex digits: '" + id + "'");
        }
        int c1 = id.charAt(0) - 0x40, c2 = id.charAt(1) - 0x40, c3 = id.charAt(2) - 0x40;
        int product = Integer.parseInt(id.substring(3), 16);
        int b0 = c1 << 2 | c2 >> 3;
        int b1 = (c2 & 7) << 5 | c3;
        int b2 = product >> 8;
        int b3 = product & 0xff;
        return b0 | b1 << 8 | b2 << 16 | b3 << 24;
    }

    /** {@code EISAID("PNP0501")}: the compressed id as a DWord integer (as iasl encodes it). */
    public static byte[] eisaId(String id) {
        return new LeWriter().u8(DWORD_PREFIX).u32(eisaIdValue(id) & 0xffff_ffffL).toBytes();
    }

    /** {@code Buffer(n) {bytes}}: BufferOp PkgLength BufferSize ByteList. */
    public static byte[] buffer(byte[] data) {
        return concat(new byte[] {BUFFER_OP}, withPkgLength(concat(integer(data.length), data)));
    }

    /** {@code Package(n) {elements}}: PackageOp PkgLength NumElements PackageElementList (at most 255). */
    public static byte[] packageOf(byte[]... elements) {
        if (elements.length > 255) throw new IllegalArgumentException("a Package holds at most 255 elements");
        return concat(new byte[] {PACKAGE_OP}, withPkgLength(concat(new byte[] {(byte) elements.length}, concat(elements))));
    }

    // ---- named objects and scopes ----

    /** {@code Name(name, value)}. */
    public static byte[] name(String name, byte[] value) {
        return concat(new byte[] {NAME_OP}, nameString(name), value);
    }

    /** {@code Scope(name) {terms}}. */
    public static byte[] scope(String name, byte[]... terms) {
        return concat(new byte[] {SCOPE_OP}, withPkgLength(concat(nameString(name), concat(terms))));
    }

    /** {@code Device(name) {terms}}. */
    public static byte[] device(String name, byte[]... terms) {
        return concat(new byte[] {EXT_OP_PREFIX, (byte) DEVICE_OP}, withPkgLength(concat(nameString(name), concat(terms))));
    }

    // ---- PkgLength ----

    /**
     * The PkgLength encoding of {@code value} (a length that already counts the encoding's own bytes):
     * one byte up to 63; otherwise a lead byte whose bits 7-6 give the number of following bytes (1-3)
     * and whose bits 3-0 are the value's low nibble, followed by the remaining bits 8 at a time.
     */
    public static byte[] pkgLength(int value) {
        if (value < 0 || value > PKG_LENGTH_MAX) throw new IllegalArgumentException("PkgLength out of range: " + value);
        if (value <= 0x3f) return new byte[] {(byte) value};
        int follow = value <= 0xfff ? 1 : value <= 0xfffff ? 2 : 3;
        byte[] b = new byte[1 + follow];
        b[0] = (byte) (follow << 6 | value & 0x0f);
        for (int i = 0; i < follow; i++) b[1 + i] = (byte) (value >>> (4 + 8 * i));
        return b;
    }

    /** The number of bytes a PkgLength needs in front of {@code contentLength} bytes (it counts itself). */
    public static int pkgLengthSize(int contentLength) {
        if (contentLength + 1 <= 0x3f) return 1;
        if (contentLength + 2 <= 0xfff) return 2;
        if (contentLength + 3 <= 0xfffff) return 3;
        if (contentLength + 4 <= PKG_LENGTH_MAX) return 4;
        throw new IllegalArgumentException("AML package too long: " + contentLength + " bytes");
    }

    /** {@code content} preceded by its PkgLength (which counts itself and the content). */
    public static byte[] withPkgLength(byte[] content) {
        int n = pkgLengthSize(content.length);
        return concat(pkgLength(content.length + n), content);
    }

    // ---- resource templates (ACPI 6.4) ----

    /**
     * {@code ResourceTemplate() {descriptors}}: a Buffer holding the descriptors and an End Tag whose
     * checksum byte is 0 (meaning "treat the template as checksummed").
     */
    public static byte[] resourceTemplate(byte[]... descriptors) {
        return buffer(concat(concat(descriptors), endTag()));
    }

    /** {@code IO(Decode16, min, max, alignment, length)}: small descriptor 0x47 (8 bytes). */
    public static byte[] io(int min, int max, int alignment, int length) {
        checkRange("IO minimum", min, 0xffff);
        checkRange("IO maximum", max, 0xffff);
        checkRange("IO alignment", alignment, 0xff);
        checkRange("IO length", length, 0xff);
        return new LeWriter().u8(0x47).u8(0x01).u16(min).u16(max).u8(alignment).u8(length).toBytes();
    }

    /** {@code IRQNoFlags() {irqs}}: small descriptor 0x22 (edge-triggered, active high, exclusive). */
    public static byte[] irqNoFlags(int... irqs) {
        int mask = 0;
        for (int irq : irqs) {
            checkRange("IRQ", irq, 15);
            mask |= 1 << irq;
        }
        return new LeWriter().u8(0x22).u16(mask).toBytes();
    }

    /** {@code Memory32Fixed(ReadWrite|ReadOnly, base, length)}: large descriptor 0x86 (12 bytes). */
    public static byte[] memory32Fixed(boolean readWrite, long base, long length) {
        checkRange("Memory32Fixed base", base, 0xffff_ffffL);
        checkRange("Memory32Fixed length", length, 0xffff_ffffL);
        if (base + length > 0x1_0000_0000L) throw new IllegalArgumentException("Memory32Fixed range ends above 4 GiB");
        return new LeWriter().u8(0x86).u16(9).u8(readWrite ? 1 : 0).u32(base).u32(length).toBytes();
    }

    /**
     * {@code Interrupt(ResourceConsumer, Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) {gsis}}:
     * the extended interrupt descriptor, large item 0x89, without a resource source.
     */
    public static byte[] interrupt(boolean edge, boolean activeLow, boolean shared, int... gsis) {
        if (gsis.length < 1 || gsis.length > 255) throw new IllegalArgumentException("Interrupt needs 1 to 255 interrupt numbers");
        int flags = 0x01 /* consumer */ | (edge ? 0x02 : 0) | (activeLow ? 0x04 : 0) | (shared ? 0x08 : 0);
        LeWriter w = new LeWriter().u8(0x89).u16(2 + 4 * gsis.length).u8(flags).u8(gsis.length);
        for (int g : gsis) {
            checkRange("interrupt number", g & 0xffff_ffffL, 0xffff_ffffL);
            w.u32(g & 0xffff_ffffL);
        }
        return w.toBytes();
    }

    /** The End Tag: small descriptor 0x79 with checksum byte 0. */
    public static byte[] endTag() {
        return new byte[] {0x79, 0x00};
    }

    // ---- helpers ----

    /** The arrays one after another. */
    public static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }

    private static void checkRange(String what, long v, long max) {
        if (v < 0 || v > max) throw new IllegalArgumentException(what + " out of range: 0x" + Long.toHexString(v));
    }
}
