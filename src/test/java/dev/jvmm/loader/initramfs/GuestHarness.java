package dev.jvmm.loader.initramfs;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The host-side harnesses guests/Makefile builds beside the test guests (rootfs-job-dump, rootfs-dhcp-dump). */
final class GuestHarness {
    private GuestHarness() { }

    static Path path(String name) {
        String guests = System.getProperty("jvmm.guests");
        assumeTrue(guests != null, "jvmm.guests is not set (run the tests through Maven)");
        Path p = Path.of(guests, name);
        assumeTrue(Files.isExecutable(p), p + " was not built");
        return p;
    }
}
