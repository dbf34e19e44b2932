package dev.jvmm.device.legacy;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class DebugExitTest extends StatusReportsTest {
    private final DebugExit dev = new DebugExit(this::report);

    @Test
    void statusFormula() {
        dev.write(0, 1, 0x10);
        dev.write(0, 1, 0);
        dev.write(0, 1, 0xff);
        assertEquals(List.of(33, 1, 511), statuses);
        assertEquals("guest wrote 0x10 to isa-debug-exit", reasons.get(0));
        assertEquals("guest wrote 0x00 to isa-debug-exit", reasons.get(1));
    }

    @Test
    void widerWritesUseTheLowByte() {
        dev.write(0, 4, 0x1234_5601L);
        dev.write(0, 2, 0x0100);
        assertEquals(List.of(3, 1), statuses);
        assertEquals(33, DebugExit.exitStatus(0x10));
    }

    @Test
    void readsAllOnes() {
        assertReadsAllOnesAndReportsNothing(dev);
    }
}
