package dev.jvmm.device.legacy;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class I8042Test {
    private static final int DATA = 0, CMD = 4;

    private final List<String> stops = new ArrayList<>();
    private final I8042 kbc = new I8042((status, reason) -> stops.add(status + ":" + reason));

    private void cmd(int c) {
        kbc.write(CMD, 1, c);
    }

    private int status() {
        return (int) kbc.read(CMD, 1);
    }

    private int data() {
        return (int) kbc.read(DATA, 1);
    }

    @Test
    void pulseResetStops() {
        assertTrue(stops.isEmpty());
        cmd(0xfe);
        assertEquals(List.of("0:guest reset the machine via the i8042"), stops);
    }

    @Test
    void pulseWithoutResetBitDoesNothing() {
        cmd(0xff);                            // pulses no line
        cmd(0xfd);                            // pulses line 1, not reset
        assertEquals(List.of(), stops);
        cmd(0xf0);                            // pulses all four, reset among them
        assertEquals(1, stops.size());
    }

    @Test
    void outputPortWriteResetsOnlyWithBit0Clear() {
        cmd(0xd1);
        kbc.write(DATA, 1, 0x03);             // A20 on, not in reset
        assertEquals(List.of(), stops);
        kbc.write(DATA, 1, 0x02);             // no pending command: keyboard data, ignored
        assertEquals(List.of(), stops);
        cmd(0xd1);
        kbc.write(DATA, 1, 0x02);
        assertEquals(List.of("0:guest reset the machine via the i8042"), stops);
    }

    @Test
    void selfTestAndInterfaceTest() {
        assertEquals(0, status() & 0x03, "nothing to read, ready for input");
        cmd(0xaa);
        assertEquals(1, status() & 0x01);
        assertEquals(0x55, data());
        assertEquals(0, status() & 0x01, "output buffer drained");
        cmd(0xab);
        assertEquals(1, status() & 0x01);
        assertEquals(0x00, data());
        assertEquals(0, status() & 0x01);
    }

    @Test
    void commandByteRoundTripAndEnableDisable() {
        cmd(0x60);
        kbc.write(DATA, 1, 0x47);
        cmd(0x20);
        assertEquals(0x47, data());
        cmd(0xad);
        cmd(0xa7);
        cmd(0x20);
        assertEquals(0x47 | 0x30, data());
        cmd(0xae);
        cmd(0x20);
        assertEquals(0x47 | 0x20, data());
        cmd(0xa8);
        cmd(0x20);
        assertEquals(0x47, data());
        assertEquals(List.of(), stops);
    }

    @Test
    void auxWritesConsumeTheirDataByte() {
        cmd(0xd4);
        kbc.write(DATA, 1, 0xff);
        cmd(0xd3);
        kbc.write(DATA, 1, 0x5a);
        assertEquals(0, status() & 0x01, "nobody answers");
        // The consumed byte did not become a command byte write.
        cmd(0x20);
        assertEquals(0x45, data());
    }

    @Test
    void commandDataFlagAndUnusedPorts() {
        cmd(0xa7);
        assertEquals(0x08, status() & 0x08);
        kbc.write(DATA, 1, 0xf4);
        assertEquals(0, status() & 0x08);
        assertEquals(0xff, kbc.read(1, 1));
        assertEquals(0xffff, kbc.read(3, 2));
        assertEquals(0x04, status() & 0x04, "system flag set");
    }
}
