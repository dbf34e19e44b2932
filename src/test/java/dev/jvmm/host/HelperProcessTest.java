package dev.jvmm.host;

import dev.jvmm.sys.UnixSocket;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static dev.jvmm.host.ProcessAssertions.awaitDead;
import static dev.jvmm.host.ProcessAssertions.dead;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class HelperProcessTest {

    private static void requireSetpriv() {
        if (HelperProcess.diesWithJvmm()) return;
        if (System.getenv("CI") != null) fail("setpriv --pdeathsig is not usable here (util-linux); under CI that is an error");
        Assumptions.abort("setpriv --pdeathsig is not usable here");
    }

    @Test
    void runsInAPrivateDirectoryWithItsOutputCapturedAndCloseRemovesBoth() throws Exception {
        HelperProcess h = HelperProcess.start("talker", dir -> List.of("sh", "-c", "echo hello; echo oops >&2; pwd; sleep 100"));
        Path dir = h.directory();
        try {
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (h.recentOutput(10).size() < 3 && System.nanoTime() < deadline) Thread.sleep(10);
            assertEquals(List.of("hello", "oops", dir.toRealPath().toString()), h.recentOutput(10), "stdout and stderr, in the directory");
            assertEquals(List.of(dir.toRealPath().toString()), h.recentOutput(1));
            assertTrue(h.isAlive());
            Files.writeString(dir.resolve("left-behind"), "x");
        } finally {
            h.close();
        }
        assertFalse(h.isAlive());
        assertFalse(Files.exists(dir), "directory removed with what was in it");
        h.close(); // idempotent
    }

    @Test
    void theOutputBufferKeepsOnlyTheTail() throws Exception {
        try (HelperProcess h = HelperProcess.start("chatty", dir -> List.of("sh", "-c", "seq 1 20000; sleep 100"))) {
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (!h.recentOutput(1).equals(List.of("20000")) && System.nanoTime() < deadline) Thread.sleep(10);
            assertEquals(List.of("19998", "19999", "20000"), h.recentOutput(3));
            assertTrue(h.recentOutput(100_000).size() < 20000 / 3, "bounded: " + h.recentOutput(100_000).size() + " lines kept");
        }
    }

    @Test
    void aHelperThatExitsBeforeItsSocketAppearsFailsWithItsOwnWords() throws Exception {
        try (HelperProcess h = HelperProcess.start("failer", dir -> List.of("sh", "-c", "echo starting; echo 'fatal: cannot bind' >&2; exit 3"))) {
            long t0 = System.nanoTime();
            HelperProcess.HelperException e = assertThrows(HelperProcess.HelperException.class,
                    () -> h.awaitSocket(h.directory().resolve("x.sock"), Duration.ofSeconds(10)));
            assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "noticed the exit, did not wait for the timeout");
            assertTrue(e.getMessage().startsWith("failer exited with status 3 before creating its socket"), e.getMessage());
            assertTrue(e.getMessage().endsWith("its last output: starting | fatal: cannot bind"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"));
        }
    }

    @Test
    void directoriesLeftByAJvmmThatIsGoneAreSweptAndNoOthers(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        Process finished = new ProcessBuilder("true").start();
        finished.waitFor();
        Path stale = Files.createDirectory(tmp.resolve("jvmm-virtiofsd-1"));
        Files.writeString(stale.resolve(HelperProcess.OWNER_FILE), finished.pid() + " 12345");
        Files.writeString(stale.resolve("virtiofsd.sock"), "");
        Path reusedPid = Files.createDirectory(tmp.resolve("jvmm-virtiofsd-2"));
        Files.writeString(reusedPid.resolve(HelperProcess.OWNER_FILE), ProcessHandle.current().pid() + " 12345");
        Path mine = Files.createDirectory(tmp.resolve("jvmm-virtiofsd-3"));
        Files.writeString(mine.resolve(HelperProcess.OWNER_FILE), ProcessHandle.current().pid() + " "
                + ProcessHandle.current().info().startInstant().orElseThrow().toEpochMilli());
        Path foreign = Files.createDirectory(tmp.resolve("jvmm-something-else"));

        HelperProcess.sweepStale(tmp);
        assertFalse(Files.exists(stale), "its jvmm is gone");
        assertFalse(Files.exists(reusedPid), "a live process with that pid but another start time is not its jvmm");
        assertTrue(Files.exists(mine), "this JVM's own");
        assertTrue(Files.exists(foreign), "no owner file: not a helper directory");
    }

    @Test
    void aProgramThatDoesNotExistIsRefusedBeforeAnythingRuns() {
        HelperProcess.HelperException e = assertThrows(HelperProcess.HelperException.class,
                () -> HelperProcess.start("ghost", dir -> List.of("/nonexistent/ghostd", "--socket", dir.resolve("s").toString())));
        assertEquals("cannot start ghost: /nonexistent/ghostd is not an executable file", e.getMessage());
        e = assertThrows(HelperProcess.HelperException.class, () -> HelperProcess.start("ghost", dir -> List.of("no-such-ghostd")));
        assertEquals("cannot start ghost: no-such-ghostd is not an executable file on PATH", e.getMessage());
    }

    @Test
    void awaitSocketSeesTheSocketOrTimesOut() throws Exception {
        try (HelperProcess h = HelperProcess.start("quiet", dir -> List.of("sleep", "100"))) {
            Path sock = h.directory().resolve("x.sock");
            HelperProcess.HelperException e = assertThrows(HelperProcess.HelperException.class,
                    () -> h.awaitSocket(sock, Duration.ofMillis(200)));
            assertTrue(e.getMessage().contains("did not create its socket " + sock + " within 200 ms; it printed nothing"), e.getMessage());
            Files.writeString(sock, "a regular file is not a socket");
            assertThrows(HelperProcess.HelperException.class, () -> h.awaitSocket(sock, Duration.ofMillis(100)));
            Files.delete(sock);
            UnixSocket s = UnixSocket.listen(sock, 1);
            try {
                h.awaitSocket(sock, Duration.ofSeconds(1));
            } finally {
                s.close();
            }
        }
    }

    @Test
    void closeKillsAHelperThatIgnoresSigtermAndWhatItForked() throws Exception {
        HelperProcess h = HelperProcess.start("stubborn", dir -> List.of("sh", "-c", "trap '' TERM; sleep 100 & echo $!; wait"));
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (h.recentOutput(1).isEmpty() && System.nanoTime() < deadline) Thread.sleep(10);
        long child = Long.parseLong(h.recentOutput(1).get(0));
        long t0 = System.nanoTime();
        h.close();
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= HelperProcess.TERM_GRACE.toMillis() - 100, "waited for the grace period first: " + ms + " ms");
        assertFalse(h.isAlive());
        awaitDead(child, 2000);
    }

    @Test
    void aHelperOutlivesTheThreadThatAskedForIt() throws Exception {
        requireSetpriv();
        HelperProcess[] h = new HelperProcess[1];
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                h[0] = HelperProcess.start("orphan", dir -> List.of("sleep", "100"));
                // end only once setpriv has surely set the death signal (before that, a parent's death goes unnoticed)
                Thread.sleep(300);
            } catch (HelperProcess.HelperException | InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        t.join();
        try {
            Thread.sleep(300);
            // PDEATHSIG follows the forking thread: this holds only because one long-lived thread starts every helper
            assertTrue(h[0].isAlive(), "the helper died with the thread that started it");
        } finally {
            h[0].close();
        }
    }

    @Test
    void aHelperDiesWhenItsJvmIsKilledWithSigkill() throws Exception {
        requireSetpriv();
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process jvm = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), HelperProcessChild.class.getName())
                .redirectErrorStream(true).start();
        long helperPid;
        Path helperDir;
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(jvm.getInputStream(), StandardCharsets.UTF_8));
            String line;
            do {
                line = out.readLine();
                if (line == null) fail("the child JVM ended without starting its helper");
            } while (!line.startsWith("HELPER "));
            String[] f = line.split(" ");
            helperPid = Long.parseLong(f[1]);
            helperDir = Path.of(f[2]);
            assertEquals("true", f[3], "the child JVM uses setpriv too");
            assertFalse(dead(helperPid), "the helper runs");
        } finally {
            jvm.destroyForcibly(); // SIGKILL: no shutdown hook runs
        }
        assertTrue(jvm.waitFor(10, TimeUnit.SECONDS));
        assertEquals(137, jvm.exitValue(), "killed by SIGKILL");
        long t0 = System.nanoTime();
        awaitDead(helperPid, 2000);
        System.out.println("helper gone " + (System.nanoTime() - t0) / 1_000_000 + " ms after its JVM was SIGKILLed");
        // nothing ran to remove it: a known leftover of SIGKILL
        if (Files.isDirectory(helperDir)) {
            try (var s = Files.list(helperDir)) {
                for (Path p : s.toList()) Files.delete(p);
            }
            Files.delete(helperDir);
        }
    }
}
