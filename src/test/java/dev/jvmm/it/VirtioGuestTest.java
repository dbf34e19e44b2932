package dev.jvmm.it;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * guests/virtio-blk.c drives a virtio-blk device through jvmm's virtio-mmio transport on the real
 * /dev/kvm: reads, a write and a flush that must reach the image file, GET_ID, and two hostile
 * requests (a descriptor loop, a buffer outside RAM) after each of which the device must recover.
 */
class VirtioGuestTest {
    @BeforeEach
    void kvm() {
        KvmSupport.requireKvm();
    }

    static Path image(Path dir) throws IOException {
        byte[] disk = new byte[64 * 1024];
        byte[] marker = "JVMM-DISK-TEST sector zero".getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(marker, 0, disk, 0, marker.length);
        return Files.write(dir.resolve("disk.img"), disk);
    }

    @Test
    void blockDeviceServesAGuestAndSurvivesHostileRings(@TempDir Path tmp) throws IOException {
        Path img = image(tmp);
        Jvmm.Result r = Jvmm.run("run", "--disk", img + ",id=test-disk", "--stats",
                KvmSupport.guest("virtio-blk.elf").toString());
        assertEquals(33, r.status(), r::toString);
        for (String line : new String[] {"sector 0: JVMM-DISK-TEST", "wrote sector 1 and flushed", "id test-disk",
                "loop refused", "served again after reset", "out-of-RAM buffer refused", "all ok"}) {
            assertTrue(r.stdout().contains("virtio-blk: " + line), "missing '" + line + "': " + r);
        }
        byte[] sector1 = Arrays.copyOfRange(Files.readAllBytes(img), 512, 512 + 16);
        assertArrayEquals("GUEST-WROTE-THIS".getBytes(StandardCharsets.US_ASCII), sector1, "the write reached the file");
        assertTrue(r.stderr().matches("(?s).*virtio-blk\\.0: requests=[1-9].*"), "per-device counters: " + r);
    }

    @Test
    void readOnlyDiskRefusesWrites(@TempDir Path tmp) throws IOException {
        Path img = image(tmp);
        byte[] before = Files.readAllBytes(img);
        Jvmm.Result r = Jvmm.run("run", "--disk", img + ",ro", KvmSupport.guest("virtio-blk.elf").toString());
        assertEquals(35, r.status(), r::toString);
        assertTrue(r.stdout().contains("FAIL write of sector 1: status 0x1"), "IOERR for the write: " + r);
        assertArrayEquals(before, Files.readAllBytes(img), "the image is unchanged");
    }

    @Test
    void badDiskOptionsAreOneLineErrors(@TempDir Path tmp) {
        Jvmm.Result missing = Jvmm.run("run", "--disk", tmp.resolve("none.img").toString(), KvmSupport.guest("hello.bin").toString());
        BadInputTest.assertOneLineError(missing, 4, "none.img");
        Jvmm.Result badOpt = Jvmm.run("run", "--disk", tmp.resolve("x.img") + ",rw", KvmSupport.guest("hello.bin").toString());
        BadInputTest.assertOneLineError(badOpt, 2, "unknown option 'rw'");
    }

    @Test
    void badNetOptionsAreOneLineErrors() {
        String hello = KvmSupport.guest("hello.bin").toString();
        BadInputTest.assertOneLineError(Jvmm.run("run", "--net", "t0", hello), 2, "unknown option 't0'");
        BadInputTest.assertOneLineError(Jvmm.run("run", "--net", "mac=52:54:00:00:00:01", hello), 2, "the tap device is missing");
        BadInputTest.assertOneLineError(Jvmm.run("run", "--net", "tap=t0,mac=52:54:00:00:01", hello), 2, "invalid MAC address");
        BadInputTest.assertOneLineError(Jvmm.run("run", "--net", "tap=t0,mac=01:00:5e:00:00:01", hello), 2, "multicast");
        BadInputTest.assertOneLineError(Jvmm.run("run", "--net", "tap=a-very-long-tap-name", hello), 2, "longer than 15 bytes");
        BadInputTest.assertOneLineError(Jvmm.run("run", "--net", "tap=t0", "--net", "tap=t0", hello), 2, "already used");
    }

    @Test
    void netDeviceOnATap() {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")) && Files.exists(Path.of("/dev/net/tun")),
                "needs root and /dev/net/tun to create a tap device");
        String hello = KvmSupport.guest("hello.bin").toString();
        // "lo" exists and is no tap: a host problem, status 6
        BadInputTest.assertOneLineError(Jvmm.run("run", "--net", "tap=lo", hello), 6, "not a single-queue tap");
        // jvmm creates the tap (it goes away when jvmm exits); the guest ignores the device
        Jvmm.Result r = Jvmm.run("run", "--net", "tap=jvmmtap3,mac=52:54:00:ab:cd:ef", "--stats", hello);
        assertEquals(33, r.status(), r::toString);
        assertTrue(r.stderr().contains("virtio-net.0"), "the device is in the statistics: " + r);
        assertFalse(Files.exists(Path.of("/sys/class/net/jvmmtap3")), "the tap jvmm created is gone");
    }
    @Test
    void vsockDeviceListensOnItsSocketAndRefusesWhileTheGuestHasNoDriver(@TempDir Path tmp) throws Exception {
        Path uds = tmp.resolve("vm.sock");
        String spin = KvmSupport.guest("spin.bin").toString();
        Process p = Jvmm.command("run", "--vsock", "cid=3,uds=" + uds, "--timeout", "30s", "--stats", spin).start();
        java.util.concurrent.CompletableFuture<String> out = Jvmm.drain(p.getInputStream()), err = Jvmm.drain(p.getErrorStream());
        try {
            long deadline = System.nanoTime() + 9_000_000_000L;
            while (!Files.exists(uds) && System.nanoTime() < deadline) Thread.sleep(20);
            assertTrue(Files.exists(uds), "jvmm listens on " + uds);
            assertTrue(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(uds)).endsWith("------"),
                    "owner only: " + Files.getPosixFilePermissions(uds));
            try (java.nio.channels.SocketChannel c = java.nio.channels.SocketChannel.open(java.net.UnixDomainSocketAddress.of(uds))) {
                c.write(java.nio.ByteBuffer.wrap("CONNECT 1234\n".getBytes(StandardCharsets.US_ASCII)));
                // spin.bin has no vsock driver: the connection is closed without an OK, at once
                java.util.concurrent.CompletableFuture<Integer> read = new java.util.concurrent.CompletableFuture<>();
                Thread.ofPlatform().daemon(true).start(() -> {
                    try {
                        read.complete(c.read(java.nio.ByteBuffer.allocate(64)));
                    } catch (IOException e) {
                        read.completeExceptionally(e);
                    }
                });
                Integer n = read.completeOnTimeout(-9, 5, java.util.concurrent.TimeUnit.SECONDS).get();
                if (n == -9) {
                    p.destroy();
                    p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
                }
                assertEquals(-1, n, () -> "end of stream, no OK line: " + err.getNow("") + out.getNow(""));
            }
            p.toHandle().destroy(); // SIGTERM (without closing our ends of its pipes): the normal way out, statistics included
            assertTrue(p.waitFor(20, java.util.concurrent.TimeUnit.SECONDS));
        } finally {
            if (p.isAlive()) p.destroyForcibly();
        }
        String stderr = err.get();
        assertEquals(143, p.exitValue(), stderr + out.get());
        assertTrue(stderr.matches("(?s).*virtio-vsock\\.0: .*connections=0 host_connections=0 guest_connections=0 refused_by_guest=1 .*"),
                "per-device counters: " + stderr);
        assertFalse(Files.exists(uds, java.nio.file.LinkOption.NOFOLLOW_LINKS), "the socket is removed when jvmm ends");
    }

    @Test
    void badVsockOptionsAreOneLineErrors(@TempDir Path tmp) {
        String hello = KvmSupport.guest("hello.bin").toString();
        BadInputTest.assertOneLineError(Jvmm.inProcess("run", "--vsock", "cid=2,uds=" + tmp.resolve("v"), hello), 2, "is not a guest CID");
        BadInputTest.assertOneLineError(Jvmm.inProcess("run", "--vsock", "cid=3", hello), 2, "the socket path is missing");
        BadInputTest.assertOneLineError(Jvmm.run("run", "--vsock", "cid=3,uds=" + tmp.resolve("none/v.sock"), hello), 6, "does not exist");
    }
    /** passt drops its privileges and cannot be inspected much; its comm can. */
    static boolean isPasst(ProcessHandle h) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(h.pid()), "comm")).strip().matches("passt(\\.avx2)?"); // Debian execs passt.avx2 where it can
        } catch (IOException e) {
            return false;
        }
    }

    static boolean passtInstalled() {
        return Arrays.stream(System.getenv().getOrDefault("PATH", "").split(":"))
                .anyMatch(d -> !d.isEmpty() && Files.isExecutable(Path.of(d, "passt")));
    }

    @Test
    void userNetworkThroughPasstEndsTheRunWhenPasstIsKilledAndLeavesNoPasst() throws Exception {
        Assumptions.assumeTrue(passtInstalled(), "needs passt (Debian package passt)");
        String spin = KvmSupport.guest("spin.bin").toString();
        Process p = Jvmm.command("run", "--net", "user,fwd=tcp:127.0.0.1:28081:80", "--timeout", "30s", "--stats", spin).start();
        java.util.concurrent.CompletableFuture<String> out = Jvmm.drain(p.getInputStream()), err = Jvmm.drain(p.getErrorStream());
        ProcessHandle passt = null;
        try {
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (passt == null && System.nanoTime() < deadline) {
                passt = p.toHandle().descendants().filter(VirtioGuestTest::isPasst).findFirst().orElse(null);
                Thread.sleep(50);
            }
            assertTrue(passt != null, "jvmm started passt");
            // passt's forward listens on the host
            deadline = System.nanoTime() + 10_000_000_000L;
            boolean listening = false;
            while (!listening && System.nanoTime() < deadline) {
                try (java.net.Socket s = new java.net.Socket("127.0.0.1", 28081)) {
                    listening = true;
                } catch (IOException e) {
                    Thread.sleep(50);
                }
            }
            assertTrue(listening, "fwd=tcp:127.0.0.1:28081:80 listens");
            Thread.sleep(300); // the run is under way
            passt.destroyForcibly();
            assertTrue(p.waitFor(20, java.util.concurrent.TimeUnit.SECONDS), "jvmm ends when passt is killed");
        } finally {
            if (p.isAlive()) p.destroyForcibly();
        }
        String stderr = err.get();
        assertEquals(6, p.exitValue(), stderr + out.get());
        List<String> lines = stderr.lines().filter(l -> l.startsWith("jvmm: ")).toList();
        assertEquals(1, lines.size(), stderr);
        assertTrue(lines.get(0).matches("jvmm: virtio-net\\.0: passt \\(pid " + passt.pid() + "\\): passt closed its socket; passt was killed by signal 9.*"),
                lines.get(0));
        assertTrue(stderr.contains("ended_by") || stderr.contains("passt_tx_frames="), "statistics: " + stderr);
    }

    @Test
    void passtGoesAwayWithJvmmAndAMissingPasstIsNamed(@TempDir Path tmp) throws Exception {
        String hello = KvmSupport.guest("hello.bin").toString();
        if (passtInstalled()) {
            Jvmm.Result r = Jvmm.run("run", "--net", "user,optional", "--stats", hello);
            assertEquals(33, r.status(), r::toString);
            assertTrue(r.stderr().contains("virtio-net.0: ") && r.stderr().contains(" passt_tx_frames=0"), r::toString);
            // SIGTERM to jvmm mid-run: passt goes too
            Process p = Jvmm.command("run", "--net", "user", "--timeout", "30s", KvmSupport.guest("spin.bin").toString()).start();
            Jvmm.drain(p.getInputStream());
            Jvmm.drain(p.getErrorStream());
            ProcessHandle passt = null;
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (passt == null && System.nanoTime() < deadline) {
                passt = p.toHandle().descendants().filter(VirtioGuestTest::isPasst).findFirst().orElse(null);
                Thread.sleep(50);
            }
            assertTrue(passt != null, "jvmm started passt");
            p.toHandle().destroy();
            assertTrue(p.waitFor(20, java.util.concurrent.TimeUnit.SECONDS));
            assertEquals(143, p.exitValue());
            ProcessHandle gone = passt;
            deadline = System.nanoTime() + 5_000_000_000L;
            while (gone.isAlive() && System.nanoTime() < deadline) Thread.sleep(20);
            assertFalse(gone.isAlive(), "passt ended with jvmm");
        }
        BadInputTest.assertOneLineError(Jvmm.run("run", "--net", "user", "--passt", tmp.resolve("none").toString(), hello), 6,
                "--passt " + tmp.resolve("none") + " is not an executable file");
        ProcessBuilder noPath = Jvmm.command("run", "--net", "user", hello);
        noPath.environment().put("PATH", tmp.toString());
        BadInputTest.assertOneLineError(Jvmm.run(noPath, null, 60), 6, "passt is not installed");
        BadInputTest.assertOneLineError(Jvmm.run(noPath, null, 60), 6, "install the package passt");
        BadInputTest.assertOneLineError(Jvmm.inProcess("run", "--passt", "/usr/bin/passt", hello), 2, "--passt is for --net user, and there is none");
        BadInputTest.assertOneLineError(Jvmm.inProcess("run", "--net", "user,fwd=tcp:1.2.3:4:5", hello), 2, "is not an IPv4 address");
    }
}
