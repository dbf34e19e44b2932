package dev.jvmm.device.legacy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jvmm.device.BusDevice;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.function.Consumer;

/**
 * Jazzer targets for the legacy devices' register interfaces: sequences of port reads and writes
 * (offsets in and around each window, sizes 1 to 8) and host-side events, all from the fuzzer.
 * Invariants: no access throws; a read returns no more than {@code size} bytes; what a device
 * reports of its own state agrees with what it did (the UART's IRQ level, the PIT's deadlines).
 */
class LegacyDevicesFuzzTest {
    /** Runs up to 200 fuzzer-chosen accesses on a window of {@code length} ports; {@code extra} does the rest. */
    static void accesses(FuzzedDataProvider d, BusDevice dev, int length, Consumer<FuzzedDataProvider> extra) {
        for (int i = 0; i < 200 && d.remainingBytes() > 0; i++) {
            int choice = d.consumeInt(0, 9);
            long offset = d.consumeInt(0, 7) == 0 ? d.consumeLong(-2, length + 2) : d.consumeInt(0, length - 1);
            int size = d.consumeInt(0, 7) == 0 ? d.consumeInt(0, 9) : 1;
            if (choice < 4) {
                long v = dev.read(offset, size);
                if (size >= 1 && size < 8) assertEquals(0, v >>> (8 * size), "a " + size + "-byte read returned " + v);
            } else if (choice < 8) {
                dev.write(offset, size, d.consumeLong());
            } else {
                extra.accept(d);
            }
        }
    }

    @FuzzTest(maxDuration = "30s")
    void uart(FuzzedDataProvider d) {
        boolean[] level = {false};
        Uart16550 uart = new Uart16550(high -> level[0] = high, b -> assertTrue(b >= 0 && b <= 255, "byte " + b));
        uart.setRxSpaceListener(() -> assertTrue(uart.rxSpace() >= 0));
        accesses(d, uart, 8, x -> {
            byte[] in = x.consumeBytes(x.consumeInt(0, 40));
            int n = uart.receive(in, 0, in.length);
            assertTrue(n >= 0 && n <= in.length, "took " + n + " of " + in.length);
        });
        assertEquals(uart.irqLevel(), level[0], "the line is at the level the UART reports");
        assertTrue(uart.rxSpace() >= 0);
    }

    @FuzzTest(maxDuration = "30s")
    void i8042(FuzzedDataProvider d) {
        I8042 kbc = new I8042((status, why) -> assertTrue(why != null && !why.isEmpty()));
        // registered at 0x60 (data) and 0x64 (command/status): one device, offsets 0 and 4
        accesses(d, kbc, 5, x -> { });
    }

    @FuzzTest(maxDuration = "30s")
    void cmosRtc(FuzzedDataProvider d) {
        long mem = d.consumeLong(0, 1L << 40);
        Instant now = Instant.ofEpochSecond(d.consumeLong(0, 253402300799L));   // up to 9999-12-31
        CmosRtc rtc = new CmosRtc(mem, Clock.fixed(now, ZoneOffset.UTC));
        accesses(d, rtc, CmosRtc.LENGTH, x -> { });
    }

    @FuzzTest(maxDuration = "30s")
    void i8254(FuzzedDataProvider d) {
        long[] now = {d.consumeLong(0, Long.MAX_VALUE / 4)};
        int[] edges = {0};
        I8254 pit = new I8254(() -> now[0], high -> {
            if (high) edges[0]++;
        });
        SystemControlPortB port61 = new SystemControlPortB(pit);
        accesses(d, pit, I8254.LENGTH, x -> {
            switch (x.consumeInt(0, 3)) {
                case 0 -> now[0] += x.consumeLong(0, 10_000_000_000L);   // time passes
                case 1 -> {
                    int before = edges[0];
                    boolean raised = pit.advance();
                    assertEquals(raised ? before + 1 : before, edges[0], "advance raises one edge when it says so");
                }
                case 2 -> {
                    long deadline = pit.nextDeadlineNanos();
                    assertTrue(deadline >= 0, "deadline " + deadline);
                }
                default -> {
                    port61.write(0, 1, x.consumeInt(0, 255));
                    assertEquals(0, port61.read(0, 1) >>> 8);
                }
            }
        });
    }

    @FuzzTest(maxDuration = "30s")
    void acpiPm(FuzzedDataProvider d) {
        int[] stops = {0};
        AcpiPm pm = new AcpiPm((status, why) -> {
            assertEquals(0, status, "poweroff ends with status 0");
            stops[0]++;
        }, () -> stops[0]++);
        accesses(d, pm, AcpiPm.LENGTH, x -> { });
        assertTrue(stops[0] >= 0);
    }
}
