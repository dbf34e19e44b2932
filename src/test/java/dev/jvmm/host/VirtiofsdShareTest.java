package dev.jvmm.host;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The command lines VirtiofsdShare builds: read-only for either virtiofsd, and the sandbox on an initramfs root. */
class VirtiofsdShareTest {
    private static final Virtiofsd.Binary C = new Virtiofsd.Binary(Path.of("/usr/lib/qemu/virtiofsd"), Virtiofsd.Flavor.QEMU_C, "7.2", false);
    private static final Virtiofsd.Binary RUST = new Virtiofsd.Binary(Path.of("/usr/libexec/virtiofsd"), Virtiofsd.Flavor.RUST, "1.10", true);
    private static final Path DIR = Path.of("/srv/share"), SOCK = Path.of("/tmp/j/virtiofsd.sock");

    @Test
    void writableSharesAreVirtiofsdsOwnCommandLine() throws Exception {
        assertEquals(List.of("/usr/lib/qemu/virtiofsd", "--socket-path=/tmp/j/virtiofsd.sock", "-o", "source=/srv/share"),
                VirtiofsdShare.command(C, DIR, false, SOCK, false));
        assertEquals(List.of("/usr/libexec/virtiofsd", "--socket-path", "/tmp/j/virtiofsd.sock", "--shared-dir", "/srv/share"),
                VirtiofsdShare.command(RUST, DIR, false, SOCK, false));
    }

    @Test
    void theRustVirtiofsdSharesReadOnlyItself() throws Exception {
        assertEquals(List.of("/usr/libexec/virtiofsd", "--socket-path", "/tmp/j/virtiofsd.sock", "--shared-dir", "/srv/share", "--readonly"),
                VirtiofsdShare.command(RUST, DIR, true, SOCK, false));
    }

    @Test
    void theCVirtiofsdRunsInAPrivateMountNamespaceWithTheDirectoryReadOnly() throws Exception {
        List<String> cmd = VirtiofsdShare.command(C, DIR, true, SOCK, false);
        assertTrue(cmd.get(0).endsWith("/unshare"), cmd.toString());
        assertEquals(List.of("--mount", "--propagation", "private", "--", "/bin/sh", "-c", VirtiofsdShare.READ_ONLY_SCRIPT, "sh", "/srv/share", "/tmp/j",
                "/usr/lib/qemu/virtiofsd", "--socket-path=/tmp/j/virtiofsd.sock", "-o", "source=/srv/share"), cmd.subList(1, cmd.size()));
    }

    @Test
    void onAnInitramfsRootVirtiofsdUsesItsChrootSandbox() throws Exception {
        assertEquals(List.of("/usr/lib/qemu/virtiofsd", "--socket-path=/tmp/j/virtiofsd.sock", "-o", "source=/srv/share", "-o", "sandbox=chroot"),
                VirtiofsdShare.command(C, DIR, false, SOCK, true));
        assertEquals(List.of("--sandbox", "chroot"), VirtiofsdShare.command(RUST, DIR, false, SOCK, true).subList(5, 7));
        List<String> ro = VirtiofsdShare.command(C, DIR, true, SOCK, true);
        assertEquals(List.of("-o", "sandbox=chroot"), ro.subList(ro.size() - 2, ro.size()), "inside the read-only wrapper too");
    }

    @Test
    void aShareOfTheRootUsesTheChrootSandbox() throws Exception {
        assertEquals(List.of("/usr/lib/qemu/virtiofsd", "--socket-path=/tmp/j/virtiofsd.sock", "-o", "source=/", "-o", "sandbox=chroot"),
                VirtiofsdShare.command(C, Path.of("/"), false, SOCK, false));
        assertEquals(List.of("--sandbox", "chroot"), VirtiofsdShare.command(RUST, Path.of("/"), true, SOCK, false).subList(6, 8));
        assertFalse(VirtiofsdShare.command(C, DIR, false, SOCK, false).contains("sandbox=chroot"), "elsewhere, the namespace sandbox");
    }

    @Test
    void theRootFileSystemFromMountinfo() {
        String initramfs = """
                1 1 0:2 / / rw - rootfs rootfs rw,size=1003044k,nr_inodes=250761
                17 1 0:5 / /dev rw,relatime shared:2 - devtmpfs devtmpfs rw,size=1003044k
                18 1 0:18 / /proc rw,relatime - proc proc rw
                """;
        assertEquals("rootfs", VirtiofsdShare.rootFsType(initramfs));
        String disk = """
                21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
                22 21 0:20 / /sys rw,nosuid shared:7 - sysfs sysfs rw
                """;
        assertEquals("ext4", VirtiofsdShare.rootFsType(disk));
        String switched = """
                1 1 0:2 / / rw - rootfs rootfs rw
                30 1 0:40 / / rw,relatime - tmpfs tmpfs rw
                """;
        assertEquals("tmpfs", VirtiofsdShare.rootFsType(switched), "the last mount on / is the one in use");
        assertNull(VirtiofsdShare.rootFsType("garbage\n"));
        assertFalse(VirtiofsdShare.rootIsInitramfs(), "this test does not run from an initramfs");
    }
}
