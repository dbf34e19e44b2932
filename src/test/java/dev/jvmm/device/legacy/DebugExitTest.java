package dev.jvmm.device.legacy;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class DebugExitTest {
    private final List<Integer> statuses = new ArrayList<>();
    private final List<String> reasons = new ArrayList<>();
    private final DebugExit dev = new DebugExit((status, reason) -> {
        statuses.add(status);
        reasons.add(reason);
    });

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
        assertEquals(0xffL, dev.read(0, 1));
        assertEquals(0xffffL, dev.read(0, 2));
        assertEquals(0xffff_ffffL, dev.read(0, 4));
        assertEquals(-1L, dev.read(0, 8));
        assertEquals(List.of(), statuses);
    }
}
