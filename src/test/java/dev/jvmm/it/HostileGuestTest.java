package dev.jvmm.it;

import dev.jvmm.vmm.ExitStatus;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * jvmm stays in control whatever the guest does (guests/virtio-flood.c keeps a virtio queue full
 * forever) and whatever the host side does (a reader that never reads). The bounds asserted are
 * correctness bounds with a wide margin for a loaded CI machine (the bug they catch is a run that
 * never ends), not performance figures.
 */
class HostileGuestTest {
    /** How much later than its due time a --timeout or a signal may end the run here. */
    static final long SLACK_MS = 3000;

    @TempDir
    Path tmp;

    @BeforeEach
    void kvm() {
        KvmSupport.requireKvm();
    }

    private List<String> flood(String mode, String... more) throws IOException {
        List<String> args = new ArrayList<>(List.of("run", "--no-stdin", "--mem", "128M", "--cmdline", mode));
        switch (mode) {
            case "blk" -> {
                Path img = tmp.resolve("flood.img");
                try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
                    f.setLength(64 << 20);
                }
                args.addAll(List.of("--disk", img.toString()));
            }
            case "rng" -> args.add("--rng");
            case "console" -> args.addAll(List.of("--console", "virtio"));
            default -> { }
        }
        args.addAll(List.of(more));
        args.add(KvmSupport.guest("virtio-flood.elf").toString());
        return args;
    }

    /** A queue kept full forever no longer keeps the event loop from the --timeout timer. */
    @ParameterizedTest
    @ValueSource(strings = {"blk", "rng", "console"})
    void aFloodedQueueDoesNotHoldOffTheTimeout(String mode) throws IOException {
        Jvmm.Result r = Jvmm.run(null, 30, flood(mode, "--timeout", "5s", "--serial-log", tmp.resolve("log").toString())
                .toArray(String[]::new));
        assertEquals(ExitStatus.TIMEOUT, r.status(), r::toString);
        assertTrue(r.millis() < 5000 + SLACK_MS, "ended " + r.millis() + " ms after the start, --timeout 5s: " + r);
        if (mode.equals("console")) assertTrue(Files.size(tmp.resolve("log")) > 100_000, "the flood reached the log");
    }

    /** Nor does it hold off SIGTERM. */
    @ParameterizedTest
    @ValueSource(strings = {"blk", "console"})
    void aFloodedQueueDoesNotHoldOffSigterm(String mode) throws Exception {
        Process p = Jvmm.command(flood(mode).toArray(String[]::new)).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        CompletableFuture<String> err = Jvmm.drain(p.getErrorStream());
        Thread.sleep(2500); // well into the flood
        if (!p.isAlive()) throw new AssertionError("the flood ended by itself with status " + p.exitValue() + ": " + err.join());
        long t0 = System.nanoTime();
        new ProcessBuilder("kill", "-TERM", String.valueOf(p.pid())).start().waitFor();
        assertTrue(p.waitFor(SLACK_MS, TimeUnit.MILLISECONDS), "still running " + SLACK_MS + " ms after SIGTERM");
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(ExitStatus.SIGTERM, p.exitValue(), err.join());
        assertTrue(err.join().contains("terminated (SIGTERM)"), err.join());
        assertTrue(ms < SLACK_MS, ms + " ms");
    }

    /**
     * stdout is a pipe nobody reads (`jvmm run ... | sleep 60`): the guest is slowed, but --timeout still
     * ends the run on time, and the exit does not wait for the reader.
     */
    @Test
    void aStalledReaderDoesNotHoldOffTheTimeout() throws Exception {
        Process p = Jvmm.command(flood("console", "--timeout", "5s").toArray(String[]::new)).start(); // stdout never read
        CompletableFuture<String> err = Jvmm.drain(p.getErrorStream());
        long t0 = System.nanoTime();
        boolean ended = p.waitFor(5000 + SLACK_MS, TimeUnit.MILLISECONDS);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        if (!ended) p.destroyForcibly();
        p.getInputStream().close();
        assertTrue(ended, "still running " + ms + " ms after a 5 s timeout, with its stdout not read");
        assertEquals(ExitStatus.TIMEOUT, p.exitValue(), err.join());
    }

    /** 300,000 distinct MMIO addresses: the statistics stay bounded (a 32 MiB heap is plenty) and list the busiest. */
    @Test
    void statisticsStayBoundedWhateverTheGuestTouches() throws IOException {
        Path json = tmp.resolve("stats.json");
        List<String> args = new ArrayList<>(List.of("run", "--no-stdin", "--timeout", "120s", "--cmdline", "mmio",
                "--stats-json", json.toString(), KvmSupport.guest("virtio-flood.elf").toString()));
        Jvmm.Result r = Jvmm.run(Jvmm.command(List.of("-Xmx32m"), args.toArray(String[]::new)), null, 150);
        assertEquals(33, r.status(), r::toString); // the guest's EXIT_OK, 0x10, through isa-debug-exit
        assertTrue(r.stdout().contains("read 300000 unclaimed MMIO addresses"), r::toString);
        String s = Files.readString(json);
        java.util.Map<?, ?> unclaimed = (java.util.Map<?, ?>) dev.jvmm.vmm.Json.object(s).get("unclaimed");
        assertEquals(0, ((Number) unclaimed.get("pio")).intValue(), s);
        assertEquals(300000, ((Number) unclaimed.get("mmio")).intValue(), s);
        assertFalse(r.stderr().contains("OutOfMemoryError"), r::toString);
    }

    /** Two VMs never write one disk: the second is refused with the holder named, unless lock=off. */
    @Test
    void aDiskInUseIsRefused() throws Exception {
        Path img = tmp.resolve("shared.img");
        Files.write(img, new byte[1 << 20]);
        Process first = Jvmm.command("run", "--no-stdin", "--disk", img.toString(), KvmSupport.guest("spin.bin").toString())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            waitForLock(img, first);
            Jvmm.Result second = Jvmm.run(null, 30, "run", "--no-stdin", "--disk", img.toString(), KvmSupport.guest("hello.bin").toString());
            assertEquals(ExitStatus.BAD_IMAGE, second.status(), second::toString);
            String line = second.stderr().strip();
            assertEquals(1, line.lines().count(), second::toString);
            assertTrue(line.contains("is in use by process " + first.pid()), line);
            Jvmm.Result ro = Jvmm.run(null, 30, "run", "--no-stdin", "--disk", img + ",ro", KvmSupport.guest("hello.bin").toString());
            assertEquals(ExitStatus.BAD_IMAGE, ro.status(), "a read-only user of a disk being written is refused too: " + ro);
            Jvmm.Result anyway = Jvmm.run(null, 30, "run", "--no-stdin", "--disk", img + ",lock=off", KvmSupport.guest("hello.bin").toString());
            assertEquals(33, anyway.status(), anyway::toString);
        } finally {
            first.destroyForcibly();
            first.waitFor();
        }
        // read-only users share
        Process ro1 = Jvmm.command("run", "--no-stdin", "--disk", img + ",ro", KvmSupport.guest("spin.bin").toString())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            waitForLock(img, ro1);
            Jvmm.Result ro2 = Jvmm.run(null, 30, "run", "--no-stdin", "--disk", img + ",ro", KvmSupport.guest("hello.bin").toString());
            assertEquals(33, ro2.status(), ro2::toString);
        } finally {
            ro1.destroyForcibly();
            ro1.waitFor();
        }
    }

    /** Waits until /proc/locks shows {@code holder} locking the image (it has opened its disks). */
    private static void waitForLock(Path img, Process holder) throws Exception {
        String ino = String.valueOf(Files.getAttribute(img, "unix:ino"));
        for (int i = 0; i < 300; i++) {
            for (String l : Files.readAllLines(Path.of("/proc/locks"))) {
                if (l.contains(" " + holder.pid() + " ") && l.contains(":" + ino + " ")) return;
            }
            assertTrue(holder.isAlive(), "the first VM ended early");
            Thread.sleep(50);
        }
        throw new AssertionError("the first VM never locked " + img);
    }

    /** A guest that resets forever (--on-reboot restart) does not leak descriptors from boot to boot. */
    @Test
    void restartsDoNotLeakDescriptors() throws Exception {
        Process p = Jvmm.command("run", "--no-stdin", "--on-reboot", "restart", "--timeout", "20s",
                KvmSupport.guest("reset.bin").toString()).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            Path fds = Path.of("/proc", String.valueOf(p.pid()), "fd");
            Thread.sleep(3000);
            int early = maxFds(fds);
            Thread.sleep(3000);
            int late = maxFds(fds);
            assertTrue(p.isAlive(), "still rebooting");
            assertTrue(late <= early + 2, "descriptors grew from " + early + " to " + late + " across reboots");
        } finally {
            p.destroyForcibly();
            p.waitFor();
        }
    }

    /** The most descriptors seen over a few samples (a boot opens some and closes them). */
    private static int maxFds(Path fds) throws Exception {
        int max = 0;
        for (int i = 0; i < 10; i++) {
            try (var s = Files.list(fds)) {
                max = Math.max(max, (int) s.count());
            }
            Thread.sleep(30);
        }
        return max;
    }

    /** SIGINT right after the start ends the run: before jvmm's handler (the default action) or after (status 130). */
    @Test
    void anEarlySigintEndsTheRun() throws Exception {
        for (long delay : new long[] {50, 400}) {
            Process p = Jvmm.command("run", "--no-stdin", KvmSupport.guest("spin.bin").toString())
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            Thread.sleep(delay);
            new ProcessBuilder("kill", "-INT", String.valueOf(p.pid())).start().waitFor();
            boolean ended = p.waitFor(SLACK_MS, TimeUnit.MILLISECONDS);
            if (!ended) p.destroyForcibly().waitFor();
            assertTrue(ended, "still running " + SLACK_MS + " ms after a SIGINT sent " + delay + " ms after the start");
            assertTrue(p.exitValue() == ExitStatus.SIGINT || p.exitValue() == 128 + 2, "status " + p.exitValue());
        }
    }

    /** A background job of a non-interactive shell starts with SIGINT ignored; jvmm still honours it. */
    @Test
    void sigintIsHonouredEvenWhenTheParentIgnoredIt() throws Exception {
        List<String> cmd = Jvmm.command("run", "--no-stdin", KvmSupport.guest("spin.bin").toString()).command();
        StringBuilder sh = new StringBuilder("trap '' INT; exec");
        for (String c : cmd) sh.append(" '").append(c.replace("'", "'\\''")).append('\'');
        Process p = new ProcessBuilder("sh", "-c", sh.toString()).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        CompletableFuture<String> err = Jvmm.drain(p.getErrorStream());
        Thread.sleep(3000); // past the JVM's start, when jvmm has taken SIGINT over
        new ProcessBuilder("kill", "-INT", String.valueOf(p.pid())).start().waitFor();
        boolean ended = p.waitFor(SLACK_MS, TimeUnit.MILLISECONDS);
        if (!ended) p.destroyForcibly().waitFor();
        assertTrue(ended, "SIGINT was ignored");
        assertEquals(ExitStatus.SIGINT, p.exitValue(), err.join());
    }

    /** --no-stdin: the guest gets no input and jvmm reads none of it; what follows in the script still can. */
    @Test
    void noStdinLeavesStdinUnread() throws Exception {
        String echo = KvmSupport.guest("echo.bin").toString();
        List<String> cmd = Jvmm.command("run", "--no-stdin", "--timeout", "3s", echo).command();
        StringBuilder sh = new StringBuilder("printf 'q-for-the-guest\\nline2\\n' | { ");
        for (String c : cmd) sh.append(" '").append(c.replace("'", "'\\''")).append('\'');
        sh.append("; echo \"status $?\"; cat; }");
        Process p = new ProcessBuilder("sh", "-c", sh.toString()).start();
        CompletableFuture<String> out = Jvmm.drain(p.getInputStream());
        Jvmm.drain(p.getErrorStream());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        String o = out.join();
        assertTrue(o.contains("status " + ExitStatus.TIMEOUT), "the guest never saw its 'q': " + o);
        assertTrue(o.contains("q-for-the-guest\nline2\n"), "stdin was left for the next reader: " + o);
        assertFalse(o.contains("bye"), o);
        assertTrue(o.startsWith("echo ready"), o);
    }
}
