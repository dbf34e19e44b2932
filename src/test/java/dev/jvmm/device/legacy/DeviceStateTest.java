package dev.jvmm.device.legacy;

import dev.jvmm.device.DeviceState;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device models' snapshot state: saved and loaded into a fresh device, every register reads
 * the same and the state saves to the same bytes; a truncated, other-version or out-of-range state
 * is refused and leaves the device as it was.
 */
class DeviceStateTest {
    private static final long MIB = 1 << 20;

    /** Every kind of damage to {@code good} is refused by a fresh device, which stays as it was. */
    private static void refusesDamage(byte[] good, Supplier<DeviceState> fresh) {
        for (int len = 0; len < good.length; len++) {
            DeviceState d = fresh.get();
            byte[] before = d.saveState();
            byte[] cut = Arrays.copyOf(good, len);
            assertThrows(IllegalArgumentException.class, () -> d.loadState(cut), "truncated to " + len);
            assertArrayEquals(before, d.saveState(), "unchanged after a refused load");
        }
        byte[] longer = Arrays.copyOf(good, good.length + 1);
        assertThrows(IllegalArgumentException.class, () -> fresh.get().loadState(longer));
        byte[] version = good.clone();
        version[0]++;
        String msg = assertThrows(IllegalArgumentException.class, () -> fresh.get().loadState(version)).getMessage();
        assertTrue(msg.contains("version"), msg);
    }

    private static Uart16550 uart(List<Boolean> irq) {
        return new Uart16550(irq::add, b -> { });
    }

    private static int[] uartRegisters(Uart16550 u) {
        int[] r = new int[8];
        for (int off : new int[] {1, 3, 4, 5, 6, 7}) r[off] = (int) u.read(off, 1);
        return r;
    }

    @Test
    void uartRoundTrips() {
        List<Boolean> irq = new ArrayList<>();
        Uart16550 u = uart(irq);
        u.write(3, 1, 0x83);          // DLAB
        u.write(0, 1, 0x01);
        u.write(1, 1, 0x00);
        u.write(3, 1, 0x1b);          // 8E1, DLAB off
        u.write(2, 1, 0xc1);          // FIFO on, trigger 14
        u.write(4, 1, 0x0b);          // DTR, RTS, OUT2
        u.write(7, 1, 0x5a);
        u.write(1, 1, 0x05);          // RX data and line status interrupts
        u.receive("hello".getBytes(), 0, 5);
        byte[] state = u.saveState();

        List<Boolean> irq2 = new ArrayList<>();
        Uart16550 v = uart(irq2);
        v.loadState(state);
        assertArrayEquals(state, v.saveState());
        assertArrayEquals(uartRegisters(u), uartRegisters(v));
        assertEquals(u.read(2, 1), v.read(2, 1), "IIR");
        assertEquals(List.of(true), irq2, "the loaded UART drives its line as the state says (data below the trigger: timeout)");
        StringBuilder a = new StringBuilder(), b = new StringBuilder();
        for (int i = 0; i < 5; i++) {
            a.append((char) u.read(0, 1));
            b.append((char) v.read(0, 1));
        }
        assertEquals("hello", b.toString());
        assertEquals(a.toString(), b.toString());
        refusesDamage(state, () -> uart(new ArrayList<>()));

        byte[] badCount = state.clone();
        int countAt = 1 + Uart16550.FIFO_SIZE + 4; // version, FIFO, rx head, then rx count
        badCount[countAt] = 0;
        badCount[countAt + 1] = 0;
        badCount[countAt + 2] = 0;
        badCount[countAt + 3] = 17;
        assertThrows(IllegalArgumentException.class, () -> uart(new ArrayList<>()).loadState(badCount));
    }

    @Test
    void i8042RoundTrips() {
        I8042 k = new I8042((s, why) -> { });
        k.write(I8042.STATUS_COMMAND, 1, 0x60); // write command byte
        k.write(I8042.DATA, 1, 0x47);
        k.write(I8042.STATUS_COMMAND, 1, 0x20); // read command byte: into the output buffer
        byte[] state = k.saveState();
        I8042 l = new I8042((s, why) -> { });
        l.loadState(state);
        assertArrayEquals(state, l.saveState());
        assertEquals(k.read(I8042.STATUS_COMMAND, 1), l.read(I8042.STATUS_COMMAND, 1));
        assertEquals(k.read(I8042.DATA, 1), l.read(I8042.DATA, 1));
        refusesDamage(state, () -> new I8042((s, why) -> { }));
    }

    @Test
    void cmosRoundTripsWithTheGuestsClock() {
        Clock clock = Clock.fixed(Instant.parse("2024-03-09T21:05:07Z"), ZoneOffset.UTC);
        CmosRtc c = new CmosRtc(256 * MIB, clock);
        c.write(0, 1, 0x40);
        c.write(1, 1, 0xab);                   // RAM
        c.write(0, 1, CmosRtc.STATUS_B);
        c.write(1, 1, CmosRtc.B_24H | CmosRtc.B_BINARY);
        c.write(0, 1, CmosRtc.YEAR);
        c.write(1, 1, 30);                     // the guest sets its clock six years ahead
        c.write(0, 1, 0x40);
        byte[] state = c.saveState();
        CmosRtc d = new CmosRtc(1 * MIB, clock); // another VM's defaults: all replaced
        d.loadState(state);
        assertArrayEquals(state, d.saveState());
        for (int reg = 0; reg < 128; reg++) {
            c.write(0, 1, reg);
            d.write(0, 1, reg);
            assertEquals(c.read(1, 1), d.read(1, 1), "register 0x" + Integer.toHexString(reg));
        }
        refusesDamage(state, () -> new CmosRtc(256 * MIB, clock));
        byte[] badIndex = state.clone();
        badIndex[1 + 128 + 3] = (byte) 0x80;
        assertThrows(IllegalArgumentException.class, () -> new CmosRtc(256 * MIB, clock).loadState(badIndex));
    }
}
