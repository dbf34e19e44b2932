package dev.jvmm.it;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

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
