package dev.jvmm.device.legacy;

import dev.jvmm.device.BusDevice;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Tests of a device that reports an exit status and its reason: {@link #report} keeps each, in order. */
abstract class StatusReportsTest {
    final List<Integer> statuses = new ArrayList<>();
    final List<String> reasons = new ArrayList<>();

    void report(int status, String reason) {
        statuses.add(status);
        reasons.add(reason);
    }

    /** A write-only port: reads of every width are all ones, and reading reports nothing. */
    void assertReadsAllOnesAndReportsNothing(BusDevice port) {
        assertEquals(0xffL, port.read(0, 1));
        assertEquals(0xffffL, port.read(0, 2));
        assertEquals(0xffff_ffffL, port.read(0, 4));
        assertEquals(-1L, port.read(0, 8));
        assertEquals(List.of(), statuses);
    }
}
