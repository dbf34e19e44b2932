package dev.jvmm.device.legacy;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Uart16550Test {
    private static final int RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4,
            LSR = 5, MSR = 6, SCR = 7;

    private final List<Boolean> irqCalls = new ArrayList<>();
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final AtomicInteger spaceCalls = new AtomicInteger();
    private Uart16550 uart;

    @BeforeEach
    void setUp() {
        uart = new Uart16550(irqCalls::add, out::write);
        uart.setRxSpaceListener(spaceCalls::incrementAndGet);
    }

    private void w(int offset, int value) {
        uart.write(offset, 1, value);
    }

    private int r(int offset) {
        return (int) uart.read(offset, 1);
    }

    private int receive(int... bytes) {
        byte[] b = new byte[bytes.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) bytes[i];
        }
        return uart.receive(b, 0, b.length);
    }

    @Test
    void resetState() {
        assertEquals(0x01, r(IIR));
        assertEquals(0x60, r(LSR));
        assertEquals(0xb0, r(MSR));          // CTS, DSR, DCD asserted, no deltas
        assertEquals(0, r(IER));
        assertEquals(0, r(LCR));
        assertEquals(0, r(MCR));
        assertEquals(0, r(RBR));
        assertTrue(irqCalls.isEmpty());
    }

    @Test
    void divisorLatchRoundTripAndRegisterShadowing() {
        w(IER, 0x05);
        w(LCR, 0x83);                        // DLAB + 8N1
        w(DLL, 0x01);
        w(DLM, 0x02);
        assertEquals(0x01, r(DLL));
        assertEquals(0x02, r(DLM));
        assertEquals(0x83, r(LCR));
        assertEquals(0, out.size(), "a DLL write is not a THR write");
        w(LCR, 0x03);
        assertEquals(0x05, r(IER), "IER untouched by DLM");
        assertEquals(0x03, r(LCR));
        w(THR, 'x');
        assertEquals("x", out.toString());
        w(LCR, 0x83);
        assertEquals(0x01, r(DLL), "THR write did not touch DLL");
        assertEquals(0x02, r(DLM));
    }

    @Test
    void lcrMcrScrAndIerMasks() {
        w(LCR, 0x1b);
        assertEquals(0x1b, r(LCR));
        w(MCR, 0xff);
        assertEquals(0x1f, r(MCR), "MCR bits 5-7 read 0");
        w(MCR, 0x0b);
        assertEquals(0x0b, r(MCR));
        w(SCR, 0xa5);
        assertEquals(0xa5, r(SCR));
        w(SCR, 0x5a);
        assertEquals(0x5a, r(SCR));
        w(IER, 0xff);
        assertEquals(0x0f, r(IER), "IER bits 4-7 read 0");
    }

    @Test
    void transmitGoesToSinkAndLeavesThreTemtSet() {
        for (char c : "hello".toCharArray()) {
            w(THR, c);
            assertEquals(0x60, r(LSR) & 0x60);
        }
        w(THR, 0x1ff);                       // only the low byte
        uart.write(THR, 4, 0xabcdef00L | 0x80);
        byte[] bytes = out.toByteArray();
        assertEquals("hello", new String(bytes, 0, 5));
        assertEquals(0xff, bytes[5] & 0xff);
        assertEquals(0x80, bytes[6] & 0xff);
        assertTrue(irqCalls.isEmpty());
    }

    @Test
    void loopbackEchoesAndMapsModemLines() {
        w(MCR, 0x10);                        // loopback, all outputs low
        // Leaving "CTS/DSR/DCD asserted" for "all low" sets the matching deltas.
        assertEquals(0x01 | 0x02 | 0x08, r(MSR));
        assertEquals(0x00, r(MSR), "deltas cleared by reading MSR");
        w(THR, 'A');
        assertEquals(0, out.size(), "loopback keeps bytes off the sink");
        assertEquals(0x61, r(LSR));
        assertEquals('A', r(RBR));
        assertEquals(0x60, r(LSR));

        w(MCR, 0x10 | 0x02);                 // RTS -> CTS
        assertEquals(0x10 | 0x01, r(MSR));
        w(MCR, 0x10 | 0x01);                 // DTR -> DSR, RTS off
        assertEquals(0x20 | 0x02 | 0x01, r(MSR));
        w(MCR, 0x10 | 0x04);                 // OUT1 -> RI (leading edge: no TERI)
        assertEquals(0x40 | 0x02, r(MSR));
        w(MCR, 0x10 | 0x08);                 // OUT2 -> DCD, RI falls -> TERI
        assertEquals(0x80 | 0x04 | 0x08, r(MSR));
        w(MCR, 0x1f);
        assertEquals(0xf0 | 0x01 | 0x02, r(MSR));

        w(MCR, 0x0b);                        // leave loopback: CTS, DSR, DCD asserted again
        assertEquals(0xb0 | 0x04, r(MSR));    // RI fell
        w(THR, 'B');
        assertEquals("B", out.toString());
    }

    @Test
    void loopbackOverrunSetsOeAndRlsInterrupt() {
        w(IER, 0x04);                        // ELSI only
        w(MCR, 0x10);
        w(THR, 1);
        assertEquals(0x61, r(LSR));
        w(THR, 2);                           // non-FIFO: overwrites RBR
        assertTrue(uart.irqLevel());
        assertEquals(0x06, r(IIR));
        assertEquals(0x63, r(LSR));
        assertEquals(0x61, r(LSR), "OE cleared by reading LSR");
        assertFalse(uart.irqLevel());
        assertEquals(2, r(RBR));
        assertEquals(List.of(true, false), irqCalls);
    }

    @Test
    void hostInputRefusedInLoopbackAndListenerRunsWhenItEnds() {
        w(MCR, 0x10);
        assertEquals(0, uart.rxSpace());
        assertEquals(0, receive('a', 'b'));
        w(MCR, 0x00);
        assertEquals(1, spaceCalls.get());
        assertEquals(1, receive('a', 'b'));
        assertEquals('a', r(RBR));
    }

    @Test
    void nonFifoHoldsOneByte() {
        assertEquals(1, uart.rxSpace());
        assertEquals(1, receive('x', 'y', 'z'));
        assertEquals(0, uart.rxSpace());
        assertEquals(0, receive('y'));
        assertEquals(0x61, r(LSR));
        assertEquals('x', r(RBR));
        assertEquals(0x60, r(LSR));
        assertEquals(1, spaceCalls.get(), "emptied and the host had been refused: one call");
    }

    @Test
    void fifoCapacityPartialReceiveAndOrder() {
        w(FCR, 0x01);
        assertEquals(16, uart.rxSpace());
        byte[] data = new byte[40];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (0xe0 + i);
        }
        assertEquals(10, uart.receive(data, 0, 10));
        assertEquals(6, uart.rxSpace());
        assertEquals(6, uart.receive(data, 10, 30), "only what fits");
        assertEquals(0, uart.receive(data, 16, 24));
        assertEquals(0, uart.rxSpace());
        assertEquals(0x61, r(LSR), "no overrun: host input is never dropped");
        assertEquals(0, spaceCalls.get());

        assertEquals(0xe0, r(RBR));
        assertEquals(1, spaceCalls.get(), "space after a refusal");
        assertEquals(0xe1, r(RBR));
        assertEquals(1, spaceCalls.get(), "no refusal since: no call");
        assertEquals(2, uart.receive(data, 16, 24));
        byte[] got = new byte[18];
        int n = 0;
        while ((r(LSR) & 0x01) != 0) {
            got[n++] = (byte) r(RBR);
        }
        assertEquals(16, n);
        byte[] want = new byte[16];
        System.arraycopy(data, 2, want, 0, 16);
        assertArrayEquals(want, Arrays.copyOf(got, 16));
        assertEquals(3, spaceCalls.get(), "refused again (22 of 24): first read calls, emptying calls");
    }

    @Test
    void fifoWrapsAround() {
        w(FCR, 0x01);
        for (int round = 0; round < 5; round++) {
            for (int i = 0; i < 11; i++) {
                assertEquals(1, receive(round * 16 + i));
            }
            for (int i = 0; i < 11; i++) {
                assertEquals(round * 16 + i, r(RBR));
            }
        }
    }

    @Test
    void fcrClearsNeverDiscardHostInputButDoDiscardLoopbackData() {
        w(FCR, 0x01);
        assertEquals(5, receive(1, 2, 3, 4, 5));
        w(FCR, 0x01 | 0x04);                 // clear TX only
        assertEquals(0x61, r(LSR));
        w(FCR, 0x01 | 0x02);                 // clear RX: host input survives it
        assertEquals(0x61, r(LSR));
        assertEquals(0xc1, r(IIR), "FIFO enabled (no interrupt: IER is 0)");
        w(FCR, 0x00);                        // FIFOs off: the bytes stay, one at a time
        assertEquals(0, uart.rxSpace(), "no room while more than the 1-byte holding register is queued");
        for (int i = 1; i <= 5; i++) assertEquals(i, r(RBR));
        assertEquals(0x60, r(LSR));
        assertEquals(1, uart.rxSpace());
        w(FCR, 0x02);                        // ignored without the enable bit
        assertEquals(0x01, r(IIR));

        w(FCR, 0x01);
        w(MCR, 0x10);                        // loopback: what the guest sends comes back
        w(THR, 0x41);
        w(THR, 0x42);
        assertEquals(0x61, r(LSR) & 0x61);
        w(FCR, 0x01 | 0x02);                 // and a clear discards it
        assertEquals(0x60, r(LSR) & 0x61);
    }

    @Test
    void fifoGrowthNotifiesRefusedHost() {
        assertEquals(1, receive(1, 2));       // refused one
        w(FCR, 0x01);                        // enabling FIFOs: the queued byte stays, room for 15 more
        assertEquals(1, spaceCalls.get());
        assertEquals(15, uart.rxSpace());
        assertEquals(1, r(RBR));
    }

    @Test
    void triggerLevelsAndCharacterTimeout() {
        int[] fcrBits = {0x00, 0x40, 0x80, 0xc0};
        int[] levels = {1, 4, 8, 14};
        for (int k = 0; k < 4; k++) {
            uart = new Uart16550(irqCalls::add, out::write);
            w(IER, 0x01);
            w(FCR, 0x01 | fcrBits[k]);
            for (int i = 1; i < levels[k]; i++) {
                receive(i);
                assertEquals(0xcc, r(IIR), "below trigger " + levels[k] + ": timeout with " + i);
                assertTrue(uart.irqLevel());
            }
            receive(0);
            assertEquals(0xc4, r(IIR), "at trigger " + levels[k]);
            r(RBR);
            if (levels[k] > 1) {
                assertEquals(0xcc, r(IIR), "below the trigger again");
            }
            while ((r(LSR) & 1) != 0) {
                r(RBR);
            }
            assertEquals(0xc1, r(IIR));
            assertFalse(uart.irqLevel());
        }
    }

    @Test
    void rxInterruptFollowsDataAndIer() {
        receive('q');
        assertTrue(irqCalls.isEmpty(), "ERBFI off");
        assertEquals(0x01, r(IIR));
        w(IER, 0x01);
        assertEquals(List.of(true), irqCalls);
        assertEquals(0x04, r(IIR), "non-FIFO: data available, never timeout");
        assertEquals(0x04, r(IIR), "reading IIR does not clear RDA");
        assertEquals('q', r(RBR));
        assertEquals(List.of(true, false), irqCalls);
        assertEquals(0x01, r(IIR));
    }

    @Test
    void threInterruptRaisedOnEnableAndClearedByIirRead() {
        w(IER, 0x02);
        assertEquals(List.of(true), irqCalls, "enabling ETBEI with THR empty raises THRE");
        assertEquals(0x02, r(IIR));
        assertEquals(List.of(true, false), irqCalls, "reading IIR acknowledged it");
        assertEquals(0x01, r(IIR));
        w(IER, 0x02);                        // not newly enabled: nothing
        assertEquals(0x01, r(IIR));
        assertEquals(2, irqCalls.size());
        w(IER, 0x00);
        w(IER, 0x02);                        // newly enabled again
        assertEquals(List.of(true, false, true), irqCalls);
        w(IER, 0x00);                        // disabling drops it
        assertEquals(List.of(true, false, true, false), irqCalls);
        assertEquals(0x01, r(IIR));
    }

    @Test
    void threInterruptAfterThrWrite() {
        w(IER, 0x02);
        r(IIR);
        irqCalls.clear();
        w(THR, 'a');                         // THR empties at once: THRE raised again
        assertEquals(List.of(true), irqCalls);
        w(THR, 'b');                         // still pending: no redundant call
        w(THR, 'c');
        assertEquals(List.of(true), irqCalls);
        assertEquals(0x02, r(IIR));
        assertEquals(List.of(true, false), irqCalls);
        assertEquals("abc", out.toString());
        // Without ETBEI a THR write raises nothing.
        w(IER, 0x00);
        irqCalls.clear();
        w(THR, 'd');
        assertTrue(irqCalls.isEmpty());
        assertEquals(0x01, r(IIR));
    }

    @Test
    void iirReadOnlyClearsThreWhenItIsTheReportedSource() {
        w(IER, 0x03);                        // ERBFI + ETBEI: THRE pending
        receive('z');                        // RDA outranks THRE
        assertEquals(0x04, r(IIR));
        assertEquals('z', r(RBR));
        assertEquals(0x02, r(IIR), "THRE survived the IIR read that reported RDA");
        assertEquals(0x01, r(IIR));
        assertFalse(uart.irqLevel());
    }

    @Test
    void iirPriorityOrder() {
        w(MCR, 0x10);                        // loopback: gives RLS (overrun) and modem status sources
        w(THR, 1);
        w(THR, 2);                           // overrun
        w(MCR, 0x12);                        // CTS changes: modem status delta
        assertEquals(0x01, r(IIR), "nothing enabled");
        assertTrue(irqCalls.isEmpty());
        w(IER, 0x0f);                        // all four, THRE newly enabled
        assertEquals(List.of(true), irqCalls);
        assertEquals(0x06, r(IIR), "line status first");
        assertEquals(0x06, r(IIR), "not cleared by IIR");
        r(LSR);
        assertEquals(0x04, r(IIR), "then received data");
        r(RBR);
        assertEquals(0x02, r(IIR), "then THRE (cleared by this read)");
        assertEquals(0x00, r(IIR), "then modem status");
        assertTrue(uart.irqLevel());
        r(MSR);
        assertEquals(0x01, r(IIR));
        assertEquals(List.of(true, false), irqCalls, "level stayed high until the last source cleared");
    }

    @Test
    void modemStatusInterrupt() {
        w(IER, 0x08);
        assertTrue(irqCalls.isEmpty());
        w(MCR, 0x10);                        // loopback drops CTS/DSR/DCD: deltas
        assertEquals(List.of(true), irqCalls);
        assertEquals(0x00, r(IIR));
        assertEquals(0x0b, r(MSR));
        assertEquals(List.of(true, false), irqCalls);
        w(MCR, 0x14);                        // RI rises: not a delta
        assertEquals(2, irqCalls.size());
        w(MCR, 0x10);                        // RI falls: TERI
        assertEquals(List.of(true, false, true), irqCalls);
        assertEquals(0x04, r(MSR));
    }

    @Test
    void irqOnlySetOnChange() {
        w(IER, 0x01);
        w(FCR, 0x01);
        receive(1);
        receive(2);
        receive(3);
        r(IIR);
        r(LSR);
        assertEquals(List.of(true), irqCalls);
        r(RBR);
        r(RBR);
        assertEquals(List.of(true), irqCalls);
        r(RBR);
        assertEquals(List.of(true, false), irqCalls);
        r(RBR);                              // empty read
        w(SCR, 1);
        assertEquals(List.of(true, false), irqCalls);
    }

    @Test
    void unknownOffsetsAndWiderAccesses() {
        assertEquals(0xff, uart.read(8, 1));
        assertEquals(0xff, uart.read(0x1_0000_0000L, 1), "no wrap to RBR");
        uart.write(8, 1, 0x12);              // ignored
        uart.write(0x1_0000_0000L, 1, 'w');  // not THR
        assertEquals(0, out.size());
        w(LSR, 0x00);                        // read-only
        assertEquals(0x60, r(LSR));
        w(SCR, 0x42);
        assertEquals(0x42, uart.read(SCR, 4));
    }

    @Test
    void manyTransmittedBytesReachTheSinkInOrder() {
        AtomicInteger count = new AtomicInteger();
        int[] last = {-1};
        Uart16550 u = new Uart16550(h -> { throw new AssertionError("no irq expected"); }, b -> {
            count.incrementAndGet();
            last[0] = b;
        });
        for (int i = 0; i < 100_000; i++) {
            u.write(THR, 1, i & 0xff);
        }
        assertEquals(100_000, count.get());
        assertEquals(99_999 & 0xff, last[0]);
    }

    @Test
    void concurrentReceiveAndGuestReadsLoseNothing() throws InterruptedException {
        w(FCR, 0x01);
        int total = 50_000;
        Thread host = new Thread(() -> {
            byte[] buf = new byte[64];
            int sent = 0;
            while (sent < total) {
                int len = Math.min(buf.length, total - sent);
                for (int i = 0; i < len; i++) {
                    buf[i] = (byte) (sent + i);
                }
                int off = 0;
                while (off < len) {
                    off += uart.receive(buf, off, len - off);
                    Thread.onSpinWait();
                }
                sent += len;
            }
        });
        host.start();
        for (int i = 0; i < total; ) {
            if ((r(LSR) & 1) != 0) {
                assertEquals(i & 0xff, r(RBR), "byte " + i);
                i++;
            }
        }
        host.join();
        assertEquals(0x60, r(LSR));
    }
}
