package dev.jvmm.it;

import dev.jvmm.host.HelperProcess;
import dev.jvmm.host.Virtiofsd;
import dev.jvmm.host.VirtiofsdSupport;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * guests/virtio-fs.c drives jvmm's virtio-fs device on the real /dev/kvm with a virtiofsd jvmm starts
 * for --share: its queue notifications go from KVM's ioeventfd straight to virtiofsd, its replies come
 * back through the rings in shared guest memory. A read-only share refuses the guest's write with
 * EROFS. Needs root and virtiofsd (skipped without them unless CI is set).
 */
class VirtiofsGuestTest {
    private static final String HELLO = "hello from the host, through virtiofsd";

    @BeforeEach
    void requirements() {
        KvmSupport.requireKvm();
        VirtiofsdSupport.requireVirtiofsd();
    }

    /** Helper directories of jvmm processes that are gone would be removed by the next jvmm; ours must be gone at once. */
    private static List<Path> helperDirectoriesOf(long pid) throws IOException {
        try (Stream<Path> dirs = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            return dirs.filter(d -> d.getFileName().toString().startsWith("jvmm-virtiofsd-")).filter(d -> {
                try {
                    return Files.readString(d.resolve("jvmm-owner")).startsWith(pid + " ");
                } catch (IOException e) {
                    return false;
                }
            }).toList();
        }
    }

    @Test
    void aGuestReadsAndWritesTheSharedDirectory(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("hello.txt"), HELLO + "\nsecond line\n");
        Jvmm.Result r = Jvmm.run("run", "--share", dir + ",tag=jvmmtest", "--stats", KvmSupport.guest("virtio-fs.elf").toString());
        assertEquals(33, r.status(), r::toString);
        for (String line : new String[] {"tag jvmmtest, request queues 1", "queue size max 1024", "DRIVER_OK; interrupt status 0x1",
                "FUSE_INIT: protocol 7.", "read: " + HELLO, "create and write: 21 bytes", "all ok"}) {
            assertTrue(r.stdout().contains("virtio-fs: " + line), "missing '" + line + "': " + r);
        }
        assertEquals("written by the guest\n", Files.readString(dir.resolve("guest.txt")));
        assertTrue(r.stderr().contains("virtio-fs.0: requests=0 bytes=0 errors=0 notifications=0 interrupts=0 vhost_requests="),
                "the guest's notifications never reached jvmm (ioeventfd to virtiofsd): " + r);
        assertTrue(r.stderr().contains("activations=1 resets=0 queues_started=2"), r::toString);
    }

    @Test
    void aReadOnlyShareRefusesTheGuestsWrite(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("hello.txt"), HELLO + "\n");
        Jvmm.Result r = Jvmm.run("run", "--share", dir + ",tag=jvmmtest,ro", KvmSupport.guest("virtio-fs.elf").toString());
        assertEquals(33, r.status(), r::toString);
        assertTrue(r.stdout().contains("virtio-fs: read: " + HELLO), r::toString);
        assertTrue(r.stdout().contains("virtio-fs: create: error -30"), "EROFS: " + r);
        assertFalse(Files.exists(dir.resolve("guest.txt")));
    }

    /**
     * A share of / itself (what --rootfs / is): virtiofsd's namespace sandbox cannot pivot_root into the
     * root it already has (EBUSY: before 2026-12-01 the run ended at once with "closed the connection
     * (sending GET_FEATURES)", and --rootfs / did not work on a host with a disk root), so jvmm gives it
     * its chroot sandbox there. The guest gets through FUSE_INIT; / has no hello.txt for its lookup.
     */
    @Test
    void aShareOfTheRootServesTheGuest() throws IOException {
        Assumptions.assumeFalse(Files.exists(Path.of("/hello.txt")), "/hello.txt exists here");
        for (String mode : new String[] {",ro", ""}) {
            Jvmm.Result r = Jvmm.run("run", "--share", "/,tag=root" + mode, KvmSupport.guest("virtio-fs.elf").toString());
            assertTrue(r.stdout().contains("virtio-fs: FUSE_INIT: protocol 7."), mode + ": " + r);
            assertTrue(r.stdout().contains("virtio-fs: FAIL FUSE_LOOKUP hello.txt error 0xfffffffe"), "ENOENT: no /hello.txt: " + r);
            assertEquals(35, r.status(), r::toString);
        }
    }

    @Test
    void aBackEndSomeoneElseStartedServesTheGuest(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("hello.txt"), HELLO + "\n");
        try (HelperProcess theirs = Virtiofsd.start(Virtiofsd.find(), dir, false, java.time.Duration.ofSeconds(10))) {
            Jvmm.Result r = Jvmm.run("run", "--share", "socket=" + Virtiofsd.socket(theirs) + ",tag=theirs",
                    KvmSupport.guest("virtio-fs.elf").toString());
            assertEquals(33, r.status(), r::toString);
            assertTrue(r.stdout().contains("virtio-fs: tag theirs, request queues 1"), r::toString);
            assertTrue(r.stdout().contains("virtio-fs: read: " + HELLO), r::toString);
        }
        assertEquals("written by the guest\n", Files.readString(dir.resolve("guest.txt")));
    }

    @Test
    void usageAndHostErrorsHaveTheirStatus(@TempDir Path dir) throws IOException {
        Path guest = KvmSupport.guest("virtio-fs.elf");
        Jvmm.Result r = Jvmm.run("run", "--share", dir.resolve("missing").toString(), guest.toString());
        assertEquals(2, r.status(), r::toString);
        assertEquals("jvmm: --share " + dir.resolve("missing") + " (tag missing): " + dir.resolve("missing") + " is not a directory",
                r.stderr().strip());
        r = Jvmm.run("run", "--share", dir + ",tag=a", "--share", dir + ",tag=a", guest.toString());
        assertEquals(2, r.status(), r::toString);
        assertTrue(r.stderr().contains("tag 'a' is used twice"), r::toString);
        r = Jvmm.run("run", "--share", dir.toString(), "--virtiofsd", "/bin/true", guest.toString());
        assertEquals(6, r.status(), r::toString);
        assertTrue(r.stderr().strip().startsWith("jvmm: --share " + dir + " (tag " + dir.getFileName() + "): /bin/true does not look like virtiofsd"),
                r::toString);
        assertEquals(1, r.stderr().strip().lines().count(), "one line: " + r);
    }

    @Test
    void nothingOfVirtiofsdOutlivesTheRun(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("hello.txt"), HELLO + "\n");
        // --timeout ends a guest that spins after virtiofsd is up; SIGTERM and normal exits are the same close path
        Process p = Jvmm.command("run", "--no-stdin", "--share", dir.toString(), "--timeout", "3s",
                KvmSupport.guest("spin.bin").toString()).redirectErrorStream(true).start();
        var out = Jvmm.drain(p.getInputStream());
        long deadline = System.nanoTime() + 10_000_000_000L;
        List<ProcessHandle> helpers = List.of();
        // the one serving the share has a socket path (jvmm also runs virtiofsd --help to identify it)
        while (helpers.isEmpty() && System.nanoTime() < deadline) {
            helpers = p.toHandle().descendants().filter(h -> h.info().command().orElse("").contains("virtiofsd")
                    && String.join(" ", h.info().arguments().orElse(new String[0])).contains("--socket-path")).toList();
            Thread.sleep(20);
        }
        assertFalse(helpers.isEmpty(), "virtiofsd was started");
        assertFalse(helperDirectoriesOf(p.pid()).isEmpty(), "in its private directory");
        assertTrue(p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS), "jvmm ended");
        assertEquals(124, p.exitValue(), out::join);
        for (ProcessHandle h : helpers) dev.jvmm.host.ProcessAssertions.awaitDead(h.pid(), 2000);
        assertEquals(List.of(), helperDirectoriesOf(p.pid()), "the private directory is removed");
    }
}
