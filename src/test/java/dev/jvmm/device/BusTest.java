package dev.jvmm.device;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class BusTest {
    private static final BusDevice DEV = new BusDevice() {
        @Override
        public long read(long offset, int size) {
            return 0;
        }

        @Override
        public void write(long offset, int size, long value) {
        }
    };

    private static BusDevice dev() {
        return new BusDevice() {
            @Override
            public long read(long offset, int size) {
                return 0;
            }

            @Override
            public void write(long offset, int size, long value) {
            }
        };
    }

    @Test
    void rejectsOverlapsZeroLengthAndOutOfLimit() {
        Bus bus = new Bus("pio", 0x10000);
        bus.register("com1", 0x3f8, 8, DEV);
        assertThrows(IllegalArgumentException.class, () -> bus.register("a", 0x3f8, 8, DEV));
        assertThrows(IllegalArgumentException.class, () -> bus.register("b", 0x3f0, 9, DEV));   // ends at 0x3f8
        assertThrows(IllegalArgumentException.class, () -> bus.register("c", 0x3ff, 1, DEV));   // last port
        assertThrows(IllegalArgumentException.class, () -> bus.register("d", 0x3f9, 2, DEV));   // inside
        assertThrows(IllegalArgumentException.class, () -> bus.register("e", 0x300, 0x200, DEV)); // covers
        assertThrows(IllegalArgumentException.class, () -> bus.register("f", 0x100, 0, DEV));
        assertThrows(IllegalArgumentException.class, () -> bus.register("g", 0x100, -1, DEV));
        assertThrows(IllegalArgumentException.class, () -> bus.register("h", 0xffff, 2, DEV));
        assertThrows(IllegalArgumentException.class, () -> bus.register("i", 0x10000, 1, DEV));
        assertThrows(IllegalArgumentException.class, () -> bus.register("j", -1, 1, DEV));
        // Adjacent ranges on both sides are fine, as is the very last port.
        bus.register("below", 0x3f0, 8, DEV);
        bus.register("above", 0x400, 1, DEV);
        bus.register("last", 0xffff, 1, DEV);
        assertEquals(4, bus.ranges().size());

        Bus mmio = new Bus("mmio", Long.MAX_VALUE);
        mmio.register("x", 0xd000_0000L, 0x1000, DEV);
        assertThrows(IllegalArgumentException.class, () -> mmio.register("y", 0xcfff_f000L, 0x1001, DEV));
        assertThrows(IllegalArgumentException.class, () -> mmio.register("z", Long.MAX_VALUE - 4, 8, DEV));
        mmio.register("ok", 0xcfff_f000L, 0x1000, DEV);
    }

    @Test
    void pioLookupAtEdges() {
        Bus bus = new Bus("pio", 0x10000);
        BusDevice com1 = dev();
        BusDevice exit = dev();
        bus.register("com1", 0x3f8, 8, com1);
        bus.register("debug-exit", 0xf4, 1, exit);
        assertNull(bus.find(0x3f7));
        assertSame(com1, bus.find(0x3f8).device());
        assertSame(com1, bus.find(0x3ff).device());
        assertEquals(0x3f8, bus.find(0x3ff).base());
        assertEquals("com1", bus.find(0x3fc).name());
        assertNull(bus.find(0x400));
        assertNull(bus.find(0xf3));
        assertSame(exit, bus.find(0xf4).device());
        assertNull(bus.find(0xf5));
        assertNull(bus.find(-1));
        assertNull(bus.find(0x10000));
        assertNull(bus.find(Long.MIN_VALUE));
    }

    @Test
    void mmioBinarySearchWithManyRanges() {
        Bus bus = new Bus("mmio", Long.MAX_VALUE);
        BusDevice[] devs = new BusDevice[500];
        // Register in a scrambled order so the sorted insert is exercised.
        for (int k = 0; k < devs.length; k++) {
            int i = (k * 7919) % devs.length;
            devs[i] = dev();
            bus.register("d" + i, 0xd000_0000L + i * 0x2000L, 0x1000, devs[i]);
        }
        assertNull(bus.find(0));
        assertNull(bus.find(0xd000_0000L - 1));
        for (int i = 0; i < devs.length; i++) {
            long base = 0xd000_0000L + i * 0x2000L;
            assertSame(devs[i], bus.find(base).device(), "start of " + i);
            assertSame(devs[i], bus.find(base + 0xfff).device(), "end of " + i);
            assertNull(bus.find(base + 0x1000), "gap after " + i);
            assertNull(bus.find(base - 1), "gap before " + i);
        }
        assertNull(bus.find(Long.MAX_VALUE));
        assertNull(bus.find(-1));
        // A range above 4 GiB and one at address 0.
        BusDevice high = dev();
        BusDevice zero = dev();
        bus.register("high", 0x1_0000_0000L, 0x10, high);
        bus.register("zero", 0, 1, zero);
        assertSame(high, bus.find(0x1_0000_000fL).device());
        assertSame(zero, bus.find(0).device());
        assertNull(bus.find(1));
        assertEquals(0, bus.ranges().get(0).base());
    }

    @Test
    void smallNonPioBusUsesTableToo() {
        Bus bus = new Bus("tiny", 16);
        BusDevice d = dev();
        bus.register("d", 15, 1, d);
        assertSame(d, bus.find(15).device());
        assertNull(bus.find(16));
        assertNull(bus.find(14));
    }

    @Test
    void pioRangesAcrossTablePagesAndABusOfOddSize() {
        Bus bus = new Bus("pio", 0x10000);
        BusDevice wide = dev(), next = dev();
        bus.register("wide", 0x1f0, 0x220, wide); // 0x1f0..0x40f: three 256-port pages
        bus.register("next", 0x410, 1, next);     // same page as wide's end: copied again, wide kept
        for (long a = 0x1f0; a < 0x410; a++) assertSame(wide, bus.find(a).device(), Long.toHexString(a));
        assertSame(next, bus.find(0x410).device());
        assertNull(bus.find(0x1ef));
        assertNull(bus.find(0x411));
        assertNull(bus.find(0x500), "an untouched page");

        Bus small = new Bus("small", 0x101); // the last page is partly outside the bus
        small.register("top", 0x100, 1, wide);
        assertSame(wide, small.find(0x100).device());
        assertNull(small.find(0x101));
        assertNull(small.find(0x1ff));
        assertNull(small.find(0x200));
        assertThrows(IllegalArgumentException.class, () -> small.register("out", 0x101, 1, DEV));
    }
}
