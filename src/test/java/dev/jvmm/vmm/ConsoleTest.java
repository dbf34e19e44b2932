package dev.jvmm.vmm;

import dev.jvmm.sys.LibC;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConsoleTest {
    @Test
    void outputKeepsEveryByteInOrderAcrossBufferRefills() throws Exception {
        try (EventLoop loop = new EventLoop()) {
            ByteArrayOutputStream sink = new ByteArrayOutputStream();
            ConsoleOutput out = new ConsoleOutput(sink, loop);
            byte[] expected = new byte[200_000];
            Thread writer = new Thread(() -> {
                for (int i = 0; i < expected.length; i++) out.accept(expected[i] = (byte) (i * 31 + i / 256));
            });
            writer.start();
            while (writer.isAlive()) loop.runOnce(5);
            writer.join();
            out.flush();
            assertArrayEquals(expected, sink.toByteArray());
            assertEquals(expected.length, out.bytesWritten());
        }
    }

    @Test
    void outputIsFlushedByTheLoopWithoutAnExplicitFlush() {
        try (EventLoop loop = new EventLoop()) {
            ByteArrayOutputStream sink = new ByteArrayOutputStream();
            ConsoleOutput out = new ConsoleOutput(sink, loop);
            for (byte b : "hi\n".getBytes(StandardCharsets.US_ASCII)) out.accept(b);
            long deadline = System.nanoTime() + 2_000_000_000L;
            while (sink.size() < 3 && System.nanoTime() < deadline) loop.runOnce(10);
            assertEquals("hi\n", sink.toString(StandardCharsets.US_ASCII));
        }
    }

    /** Feeds {@code input} from a file through ConsoleInput into a sink that takes {@code chunk} bytes at a time. */
    private static String feed(Path tmp, byte[] input, boolean escapes, int chunk, List<String> stops) throws Exception {
        Path f = tmp.resolve("stdin");
        Files.write(f, input);
        int fd = LibC.open(f.toString(), LibC.O_RDONLY);
        assertTrue(fd >= 0);
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        try (EventLoop loop = new EventLoop()) {
            ConsoleInput[] in = new ConsoleInput[1];
            in[0] = new ConsoleInput(fd, loop, (data, off, len) -> {
                int n = Math.min(len, chunk);
                got.write(data, off, n);
                if (n > 0) in[0].spaceAvailable(); // as the UART does when the guest drains its FIFO
                return n;
            }, escapes, (status, why) -> stops.add(status + " " + why));
            in[0].start();
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
        assertEquals(List.of("0 user quit with Ctrl-A x"), stops);
    }

    @Test
    void withoutEscapesCtrlAPassesThrough(@TempDir Path tmp) throws Exception {
        List<String> stops = new ArrayList<>();
        assertEquals("\u0001x", feed(tmp, new byte[] {1, 'x'}, false, 16, stops));
        assertTrue(stops.isEmpty());
    }
}
