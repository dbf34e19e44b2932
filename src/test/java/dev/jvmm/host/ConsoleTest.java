package dev.jvmm.host;

import dev.jvmm.device.BrokenPipe;
import dev.jvmm.device.ConsoleEndpoint;
import dev.jvmm.event.EventLoop;
import dev.jvmm.sys.LibC;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConsoleTest {
    /** A synchronized sink: the writer thread writes while the test reads. */
    private static final class Collected extends OutputStream {
        private final ByteArrayOutputStream b = new ByteArrayOutputStream();

        @Override
        public synchronized void write(int x) {
            b.write(x);
        }

        @Override
        public synchronized void write(byte[] buf, int off, int len) {
            b.write(buf, off, len);
        }

        synchronized byte[] bytes() {
            return b.toByteArray();
        }
    }

    @Test
    void outputKeepsEveryByteInOrderAcrossBufferRefills() throws Exception {
        Collected sink = new Collected();
        List<String> failures = new ArrayList<>();
        ConsoleOutput out = new ConsoleOutput(sink, "test", failures::add);
        byte[] expected = new byte[1_000_000]; // several times the buffer: producers wait for the writer
        Thread producer = new Thread(() -> {
            for (int i = 0; i < expected.length; i++) out.put(expected[i] = (byte) (i * 31 + i / 256));
        });
        producer.start();
        producer.join();
        assertTrue(out.close(5000));
        assertArrayEquals(expected, sink.bytes());
        assertEquals(expected.length, out.bytesWritten());
        assertTrue(failures.isEmpty(), failures::toString);
    }

    @Test
    void outputIsWrittenWithoutAnExplicitFlush() throws Exception {
        Collected sink = new Collected();
        ConsoleOutput out = new ConsoleOutput(sink, "test", why -> { });
        for (byte b : "hi\n".getBytes(StandardCharsets.US_ASCII)) out.put(b);
        long deadline = System.nanoTime() + 2_000_000_000L;
        while (sink.bytes().length < 3 && System.nanoTime() < deadline) Thread.sleep(5);
        assertEquals("hi\n", new String(sink.bytes(), StandardCharsets.US_ASCII));
        out.close(1000);
    }

    /**
     * A reader that never reads (a pipe into `sleep`): offers are refused once the buffer is full, a
     * producer waiting in put() is let go by release(), and close() gives up after its bounded wait.
     */
    @Test
    void aStalledReaderNeverBlocksAnyoneForLong() throws Exception {
        CountDownLatch stuck = new CountDownLatch(1);
        OutputStream never = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                stuck.countDown();
                try {
                    Thread.sleep(60_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        ConsoleOutput out = new ConsoleOutput(never, "test", why -> { });
        out.put('x');
        assertTrue(stuck.await(5, TimeUnit.SECONDS), "the writer took the first byte");
        byte[] big = new byte[ConsoleOutput.CAPACITY];
        assertTrue(out.offer(big, 0, big.length), "the buffer takes one buffer's worth");
        assertFalse(out.offer(new byte[1], 0, 1), "then it is full: refused, not blocked");
        int[] space = new int[1];
        out.onSpace(() -> space[0]++);
        Thread producer = new Thread(() -> out.put('y'));
        producer.start();
        producer.join(200);
        assertTrue(producer.isAlive(), "put() waits while the reader is stalled");
        out.release();
        producer.join(2000);
        assertFalse(producer.isAlive(), "release() lets a waiting producer go");
        long t0 = System.nanoTime();
        assertFalse(out.close(300), "not everything could be written");
        assertTrue(System.nanoTime() - t0 < 2_000_000_000L, "close() waited a bounded time");
        assertEquals(0, space[0]);
    }

    @Test
    void aFailedWriteIsReportedOnceWithItsReason() throws Exception {
        OutputStream broken = new BrokenPipe();
        List<String> failures = new ArrayList<>();
        ConsoleOutput out = new ConsoleOutput(broken, "stdout", why -> {
            synchronized (failures) {
                failures.add(why);
            }
        });
        out.put('a');
        long deadline = System.nanoTime() + 2_000_000_000L;
        while (System.nanoTime() < deadline) {
            synchronized (failures) {
                if (!failures.isEmpty()) break;
            }
            Thread.sleep(5);
        }
        for (int i = 0; i < 1000; i++) out.put('b'); // later output is dropped, not reported again
        out.close(1000);
        assertEquals(List.of("cannot write the guest's console output to stdout: Broken pipe"), failures);
    }

    /** Feeds {@code input} from a file through ConsoleInput into a sink that takes {@code chunk} bytes at a time. */
    private static String feed(Path tmp, byte[] input, boolean escapes, int chunk, List<String> stops) throws Exception {
        Path f = tmp.resolve("stdin");
        Files.write(f, input);
        int fd = LibC.open(f.toString(), LibC.O_RDONLY);
        assertTrue(fd >= 0);
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        try (EventLoop loop = new EventLoop()) {
            Runnable[] space = {() -> { }};
            ConsoleEndpoint slow = new ConsoleEndpoint() {
                @Override
                public int offer(byte[] data, int off, int len) {
                    int n = Math.min(len, chunk);
                    got.write(data, off, n);
                    if (n > 0) space[0].run(); // as the UART does when the guest drains its FIFO
                    return n;
                }

                @Override
                public void onInputSpace(Runnable listener) {
                    space[0] = listener;
                }
            };
            ConsoleInput in = new ConsoleInput(fd, loop, slow, escapes, () -> stops.add("quit"));
            in.start();
            for (int i = 0; i < 2000 && stops.isEmpty(); i++) loop.runOnce(1);
        } finally {
            LibC.close(fd);
        }
        return got.toString(StandardCharsets.ISO_8859_1);
    }

    @Test
    void inputIsNeverDroppedWhenTheGuestTakesItSlowly(@TempDir Path tmp) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 3000; i++) sb.append((char) ('a' + i % 26));
        List<String> stops = new ArrayList<>();
        assertEquals(sb.toString(), feed(tmp, sb.toString().getBytes(StandardCharsets.US_ASCII), false, 3, stops));
        assertTrue(stops.isEmpty());
    }

    @Test
    void ctrlAxQuitsAndCtrlActrlASendsOneCtrlA(@TempDir Path tmp) throws Exception {
        List<String> stops = new ArrayList<>();
        String got = feed(tmp, new byte[] {'a', 1, 1, 'b', 1, 'x', 'c'}, true, 16, stops);
        assertEquals("a\u0001b", got);
        assertEquals(List.of("quit"), stops);
    }

    @Test
    void withoutEscapesCtrlAPassesThrough(@TempDir Path tmp) throws Exception {
        List<String> stops = new ArrayList<>();
        assertEquals("\u0001x", feed(tmp, new byte[] {1, 'x'}, false, 16, stops));
        assertTrue(stops.isEmpty());
    }
}
