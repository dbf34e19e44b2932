package dev.jvmm.it;

import dev.jvmm.vmm.ExitStatus;
import dev.jvmm.host.HostInfo;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CliTest {
    @Test
    void versionAndHelp() {
        Jvmm.Result v = Jvmm.run("--version");
        assertEquals(0, v.status(), v::toString);
        assertTrue(v.stdout().startsWith("jvmm "), v::toString);
        Jvmm.Result h = Jvmm.run("run", "--help");
        assertEquals(0, h.status(), h::toString);
        for (String opt : List.of("--smp", "--mem", "--cmdline", "--initrd", "--serial-log", "--timeout", "--stats",
                "--stats-json", "--format", "-v", "Exit codes")) {
            assertTrue(h.stdout().contains(opt), "help mentions " + opt);
        }
    }

    @Test
    void noCommandIsAUsageError() {
        Jvmm.Result r = Jvmm.run();
        assertEquals(ExitStatus.USAGE, r.status(), r::toString);
    }

    @Test
    void checkReportsKvmAndHowGuestsRunHere() {
        KvmSupport.requireKvm();
        Jvmm.Result r = Jvmm.run("check");
        assertEquals(0, r.status(), r::toString);
        assertTrue(r.stdout().contains("KVM API version 12"), r::toString);
        assertTrue(r.stdout().contains("IRQCHIP"), r::toString);
        if (HostInfo.virtualization() == HostInfo.Virtualization.EMULATED) {
            assertTrue(r.stdout().contains("cannot run ordinary guests"), r::toString);
        } else {
            assertTrue(r.stdout().contains("can run here"), r::toString);
        }
    }

    /** --smp 4 shows threads "CPU 0/KVM" .. "CPU 3/KVM" in /proc/PID/task/{@literal *}/comm. */
    @Test
    void vcpuThreadsAreNamed() throws Exception {
        KvmSupport.requireKvm();
        Process p = Jvmm.command("run", "--smp", "4", "--timeout", "30s", "--stats", KvmSupport.guest("spin.bin").toString())
                .redirectErrorStream(true).start();
        var output = Jvmm.drain(p.getInputStream());
        try {
            Set<String> names = new TreeSet<>();
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (names.size() < 4 && System.nanoTime() < deadline && p.isAlive()) {
                names.clear();
                try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(p.pid()), "task"))) {
                    for (Path t : tasks.toList()) {
                        try {
                            String comm = Files.readString(t.resolve("comm")).strip();
                            if (comm.endsWith("/KVM")) names.add(comm);
                        } catch (IOException gone) {
                            // thread ended meanwhile
                        }
                    }
                }
                Thread.sleep(50);
            }
            assertEquals(new TreeSet<>(List.of("CPU 0/KVM", "CPU 1/KVM", "CPU 2/KVM", "CPU 3/KVM")), names);
            // SIGTERM takes the normal stop path: status 143 and the stats still printed
            // (Process.destroy would also close our end of its output)
            assertEquals(0, new ProcessBuilder("kill", "-TERM", Long.toString(p.pid())).start().waitFor());
            assertTrue(p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS));
            String out = output.get(10, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals(ExitStatus.SIGTERM, p.exitValue(), out);
            assertTrue(out.contains("vCPU 3:"), out);
        } finally {
            p.destroyForcibly();
        }
    }
}
