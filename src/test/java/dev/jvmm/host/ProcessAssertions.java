package dev.jvmm.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;

/** Whether a process still runs, for tests that check that helpers are gone. */
public final class ProcessAssertions {
    private ProcessAssertions() { }

    /** Gone, or a zombie nobody reaped yet (PID 1 of a container may never reap): either way it runs no more. */
    public static boolean dead(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
        } catch (IOException e) {
            return true;
        }
    }

    public static void awaitDead(long pid, long ms) throws InterruptedException {
        long deadline = System.nanoTime() + ms * 1_000_000L;
        while (!dead(pid)) {
            if (System.nanoTime() - deadline > 0) fail("process " + pid + " still runs after " + ms + " ms");
            Thread.sleep(20);
        }
    }
}
