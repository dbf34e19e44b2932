package dev.jvmm.it;

import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Tests that need /dev/kvm or the built guests call these first. Without them a test is skipped with
 * the reason, except where the build says they must run (-Djvmm.requireKvm=true, set by scripts/test
 * under CI=true): there a missing /dev/kvm fails the build instead of skipping silently.
 */
public final class KvmSupport {
    private KvmSupport() { }

    public static final Path KVM = Path.of("/dev/kvm");

    public static boolean required() {
        return Boolean.getBoolean("jvmm.requireKvm");
    }

    public static void requireKvm() {
        boolean usable = Files.isReadable(KVM) && Files.isWritable(KVM);
        String why = Files.exists(KVM) ? "/dev/kvm is not readable and writable by this user" : "this host has no /dev/kvm";
        if (required()) Assertions.assertTrue(usable, why + ", and this build requires the KVM tests to run");
        Assumptions.assumeTrue(usable, why + ": KVM test skipped");
    }

    /** A guest built by guests/Makefile into target/guests. */
    public static Path guest(String name) {
        String dir = System.getProperty("jvmm.guests");
        Assumptions.assumeTrue(dir != null, "jvmm.guests is not set (run the tests through Maven)");
        Path p = Path.of(dir, name);
        Assertions.assertTrue(Files.isRegularFile(p), "guest " + p + " was not built");
        return p;
    }
}
