package dev.jvmm.arch.x86.acpi;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class AmlTest {
    private static byte[] b(int... v) {
        byte[] r = new byte[v.length];
        for (int i = 0; i < v.length; i++) r[i] = (byte) v[i];
        return r;
    }

    @Test
    void pkgLengthEncodings() {
        assertArrayEquals(b(0x00), Aml.pkgLength(0));
        assertArrayEquals(b(0x3f), Aml.pkgLength(63), "63 fits the one-byte form");
        assertArrayEquals(b(0x40, 0x04), Aml.pkgLength(64), "64: one following byte, low nibble 0, then 0x04");
        assertArrayEquals(b(0x45, 0x12), Aml.pkgLength(0x125));
        assertArrayEquals(b(0x4f, 0xff), Aml.pkgLength(4095), "4095 is the largest two-byte length");
        assertArrayEquals(b(0x80, 0x00, 0x01), Aml.pkgLength(4096), "4096 needs three bytes");
        assertArrayEquals(b(0x8f, 0xff, 0xff), Aml.pkgLength(0xfffff));
        assertArrayEquals(b(0xc0, 0x00, 0x00, 0x01), Aml.pkgLength(0x100000));
        assertArrayEquals(b(0xcf, 0xff, 0xff, 0xff), Aml.pkgLength(Aml.PKG_LENGTH_MAX));
        assertThrows(IllegalArgumentException.class, () -> Aml.pkgLength(Aml.PKG_LENGTH_MAX + 1));
        assertThrows(IllegalArgumentException.class, () -> Aml.pkgLength(-1));
    }

    @Test
    void pkgLengthCountsItself() {
        // 62 bytes of content + 1 length byte = 63: one byte
        byte[] w = Aml.withPkgLength(new byte[62]);
        assertEquals(63, w.length);
        assertEquals(63, w[0]);
        // 63 bytes + 1 would be 64, too big for one byte: two bytes, total 65
        w = Aml.withPkgLength(new byte[63]);
        assertEquals(65, w.length);
        assertArrayEquals(b(0x41, 0x04), new byte[] {w[0], w[1]});
        // 4093 + 2 = 4095: two bytes
        w = Aml.withPkgLength(new byte[4093]);
        assertArrayEquals(b(0x4f, 0xff), new byte[] {w[0], w[1]});
        // 4094 + 2 = 4096 does not fit two bytes: three, total 4097
        w = Aml.withPkgLength(new byte[4094]);
        assertEquals(4097, w.length);
        assertArrayEquals(b(0x81, 0x00, 0x01), new byte[] {w[0], w[1], w[2]});
    }

    @Test
    void integersUseTheShortestEncoding() {
        assertArrayEquals(b(0x00), Aml.integer(0), "ZeroOp");
        assertArrayEquals(b(0x01), Aml.integer(1), "OneOp");
        assertArrayEquals(b(0x0a, 0x02), Aml.integer(2));
        assertArrayEquals(b(0x0a, 0xff), Aml.integer(0xff));
        assertArrayEquals(b(0x0b, 0x00, 0x01), Aml.integer(0x100));
        assertArrayEquals(b(0x0b, 0xff, 0xff), Aml.integer(0xffff));
        assertArrayEquals(b(0x0c, 0x00, 0x00, 0x01, 0x00), Aml.integer(0x10000));
        assertArrayEquals(b(0x0c, 0xff, 0xff, 0xff, 0xff), Aml.integer(0xffffffffL));
        assertArrayEquals(b(0x0e, 0, 0, 0, 0, 1, 0, 0, 0), Aml.integer(0x1_0000_0000L));
        assertArrayEquals(b(0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), Aml.integer(-1));
    }

    @Test
    void namesArePaddedWithUnderscores() {
        assertArrayEquals(b('_', 'S', 'B', '_'), Aml.nameSeg("_SB"));
        assertArrayEquals(b('A', '_', '_', '_'), Aml.nameSeg("A"));
        assertArrayEquals(b('C', 'O', 'M', '1'), Aml.nameSeg("COM1"));
        assertArrayEquals(b('_', 'H', 'I', 'D'), Aml.nameString("_HID"));
        assertArrayEquals(b('\\', '_', 'S', '5', '_'), Aml.nameString("\\_S5"));
        assertArrayEquals(b('\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'), Aml.nameString("\\_SB.COM1"));
        assertArrayEquals(b(0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'), Aml.nameString("A.B.C"));
        assertArrayEquals(b('^', '^', 'X', '_', '_', '_'), Aml.nameString("^^X"));
        assertArrayEquals(b('\\', 0x00), Aml.nameString("\\"));
        for (String bad : new String[] {"", "ABCDE", "1ABC", "a", "A-B"}) {
            assertThrows(IllegalArgumentException.class, () -> Aml.nameSeg(bad), bad);
        }
    }

    @Test
    void stringsAndEisaIds() {
        assertArrayEquals(b(0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0), Aml.string("LNRO0005"));
        assertArrayEquals(b(0x0d, 0), Aml.string(""));
        assertThrows(IllegalArgumentException.class, () -> Aml.string("\u00e9"));
        assertEquals(0x0105d041, Aml.eisaIdValue("PNP0501"));
        assertEquals(0x030ad041, Aml.eisaIdValue("PNP0A03"));
        assertArrayEquals(b(0x0c, 0x41, 0xd0, 0x05, 0x01), Aml.eisaId("PNP0501"));
        assertThrows(IllegalArgumentException.class, () -> Aml.eisaIdValue("pnp0501"));
    }

    @Test
    void buffersAndPackages() {
        assertArrayEquals(b(0x11, 0x05, 0x0a, 0x02, 0xaa, 0xbb), Aml.buffer(b(0xaa, 0xbb)));
        assertArrayEquals(b(0x11, 0x02, 0x00), Aml.buffer(new byte[0]));
        assertArrayEquals(b(0x12, 0x05, 0x02, 0x0a, 0x05, 0x00), Aml.packageOf(Aml.integer(5), Aml.integer(0)));
        assertArrayEquals(b(0x08, '\\', '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00),
                Aml.name("\\_S5", Aml.packageOf(Aml.integer(5), Aml.integer(0))));
        // a 100-byte buffer: BufferOp, two-byte PkgLength (2 + 2-byte size + 100 = 104 = 0x68), ByteConst 100
        byte[] big = Aml.buffer(new byte[100]);
        assertArrayEquals(b(0x11, 0x48, 0x06, 0x0a, 100), java.util.Arrays.copyOf(big, 5));
        assertEquals(105, big.length);
    }

    @Test
    void scopesAndDevices() {
        assertArrayEquals(b(0x10, 0x06, '\\', '_', 'S', 'B', '_'), Aml.scope("\\_SB"));
        assertArrayEquals(b(0x5b, 0x82, 0x0b, 'C', 'O', 'M', '1', 0x08, '_', 'U', 'I', 'D', 0x00),
                Aml.device("COM1", Aml.name("_UID", Aml.integer(0))));
    }

    @Test
    void resourceDescriptors() {
        assertArrayEquals(b(0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08), Aml.io(0x3f8, 0x3f8, 0, 8));
        assertArrayEquals(b(0x22, 0x10, 0x00), Aml.irqNoFlags(4));
        assertArrayEquals(b(0x22, 0x00, 0x80), Aml.irqNoFlags(15));
        assertArrayEquals(b(0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00),
                Aml.memory32Fixed(true, 0xd0000000L, 0x1000));
        // consumer | edge, one interrupt, GSI 5
        assertArrayEquals(b(0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00), Aml.interrupt(true, false, false, 5));
        // consumer, level, active low, shared
        assertArrayEquals(b(0x89, 0x06, 0x00, 0x0d, 0x01, 0x10, 0x00, 0x00, 0x00), Aml.interrupt(false, true, true, 16));
        assertArrayEquals(b(0x79, 0x00), Aml.endTag());
        assertArrayEquals(b(0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00),
                Aml.resourceTemplate(Aml.io(0x3f8, 0x3f8, 0, 8), Aml.irqNoFlags(4)));
        assertThrows(IllegalArgumentException.class, () -> Aml.irqNoFlags(16));
        assertThrows(IllegalArgumentException.class, () -> Aml.memory32Fixed(true, 0xffff_f000L, 0x2000));
        assertThrows(IllegalArgumentException.class, () -> Aml.io(0x10000, 0, 0, 1));
    }
}
