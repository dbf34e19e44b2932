package dev.jvmm.it;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * scripts/nested-kvm: jvmm inside a QEMU (TCG) VM whose /dev/kvm is AMD-V with nested paging, as a
 * normal KVM host would have. Slow (a VM boot per test, tens of seconds the first time while it fetches
 * the Debian kernel and builds its cache), so it runs only with -Djvmm.nested=true.
 */
class NestedKvmTest {
    private static final Path SCRIPT = Path.of("scripts", "nested-kvm").toAbsolutePath();

    @BeforeAll
    static void gate() {
        Assumptions.assumeTrue(Boolean.getBoolean("jvmm.nested"),
                "nested-KVM tests are off: run with -Djvmm.nested=true (boots QEMU VMs, needs apt access on first use)");
        Assumptions.assumeTrue(Files.isExecutable(SCRIPT), SCRIPT + " is missing");
    }

    @Test
    void jvmmCheckSeesHardwareVirtualization() {
        Jvmm.Result r = nested("--", "jvmm", "check");
        assertEquals(0, r.status(), r::toString);
        assertTrue(r.stdout().contains("hardware virtualization"), r::toString);
        assertTrue(r.stdout().contains("KVM API version 12"), r::toString);
    }

    @Test
    void exitStatusOfTheCommandComesBack() {
        Jvmm.Result r = nested("--", "sh", "-c", "echo out; echo err >&2; exit 7");
        assertEquals(7, r.status(), r::toString);
        assertEquals("out\n", r.stdout(), r::toString);
        assertTrue(r.stderr().contains("err\n"), r::toString);
    }

    /**
     * Debian's cloud kernel, unmodified, booted by jvmm inside the nested VM with a busybox initramfs and
     * 2 vCPUs: as a bzImage decompressed on the host, as a bzImage decompressing itself, and as the
     * vmlinux inside it through the 64-bit entry. The guest's nproc, /proc/cmdline and poweroff decide.
     */
    @Test
    void unmodifiedLinuxBootsToInitAndPowersOff(@TempDir Path tmp) throws Exception {
        Process fetch = new ProcessBuilder(Path.of("scripts", "fetch-guest-kernel").toAbsolutePath().toString())
                .redirectErrorStream(true).start();
        String fetched = new String(fetch.getInputStream().readAllBytes());
        assertEquals(0, fetch.waitFor(), fetched);
        String vmlinuz = fetched.lines().filter(l -> l.startsWith("vmlinuz=")).findFirst()
                .orElseThrow(() -> new AssertionError("no vmlinuz= in " + fetched)).substring("vmlinuz=".length());
        Path bz = tmp.resolve("bzImage");
        Files.copy(Path.of(vmlinuz), bz);
        Files.write(tmp.resolve("vmlinux"), dev.jvmm.loader.LinuxLoader.extractVmlinux(bz, Files.readAllBytes(bz)));
        Files.writeString(tmp.resolve("init"), """
                #!/bin/sh
                /bin/busybox mount -t proc proc /proc
                echo "SMOKE nproc=$(/bin/busybox nproc) cmdline=$(/bin/busybox cat /proc/cmdline)"
                /bin/busybox poweroff -f
                """);
        Process mk = new ProcessBuilder(Path.of("scripts", "mkinitramfs").toAbsolutePath().toString(), "--init",
                tmp.resolve("init").toString(), "--out", tmp.resolve("initrd.gz").toString()).redirectErrorStream(true).start();
        String mkOut = new String(mk.getInputStream().readAllBytes());
        assertEquals(0, mk.waitFor(), mkOut);
        String[][] variants = {{"bzImage"}, {"--no-host-decompress", "bzImage"}, {"--boot", "64", "vmlinux"}};
        StringBuilder script = new StringBuilder("#!/bin/sh\n");
        for (String[] v : variants) {
            String opts = String.join(" ", java.util.Arrays.copyOf(v, v.length - 1));
            script.append("jvmm run --smp 2 --mem 256M --timeout 150s ").append(opts)
                    .append(" --cmdline 'console=ttyS0 quiet panic=-1 jvmm.test=").append(v.length).append("'")
                    .append(" --initrd ").append(tmp.resolve("initrd.gz")).append(' ').append(tmp.resolve(v[v.length - 1]))
                    .append(" > /tmp/out 2>&1; echo \"RESULT ").append(String.join(" ", v))
                    .append(" status=$? $(grep SMOKE /tmp/out)\"; grep -q SMOKE /tmp/out || tail -20 /tmp/out\n");
        }
        Files.writeString(tmp.resolve("run.sh"), script.toString());
        assertTrue(tmp.resolve("run.sh").toFile().setExecutable(true));
        Jvmm.Result r = nested("--smp", "2", "--share", tmp.toString(), "--", tmp.resolve("run.sh").toString());
        assertEquals(0, r.status(), r::toString);
        for (String[] v : variants) {
            String line = r.stdout().lines().filter(l -> l.startsWith("RESULT " + String.join(" ", v) + " "))
                    .findFirst().orElseThrow(() -> new AssertionError("no result for " + String.join(" ", v) + ": " + r));
            assertTrue(line.contains("status=0 "), "poweroff ends jvmm with 0: " + line + "\n" + r);
            assertTrue(line.contains("nproc=2 "), "the guest sees 2 CPUs: " + line);
            assertTrue(line.contains("jvmm.test=" + v.length), "the guest sees our command line: " + line);
        }
    }

    /** Runs scripts/nested-kvm with the given arguments from the project directory. */
    private static Jvmm.Result nested(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(SCRIPT.toString());
        cmd.add("--timeout");
        cmd.add("10m");
        // jvmm from the classes under test (target/jvmm.jar is only packaged after the tests)
        cmd.add("--classpath");
        cmd.add(String.join(":", java.util.Arrays.stream(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(e -> !e.contains("test-classes") && !e.contains("junit") && !e.contains("opentest4j")
                        && !e.contains("apiguardian") && !e.contains("surefire"))
                .toList()));
        cmd.addAll(List.of(args));
        try {
            long t0 = System.nanoTime();
            Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            CompletableFuture<String> out = Jvmm.drain(p.getInputStream());
            CompletableFuture<String> err = Jvmm.drain(p.getErrorStream());
            if (!p.waitFor(12, TimeUnit.MINUTES)) {
                p.destroy();
                throw new AssertionError("nested-kvm did not finish: " + String.join(" ", cmd));
            }
            return new Jvmm.Result(p.exitValue(), out.join(), err.join(), (System.nanoTime() - t0) / 1_000_000);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
