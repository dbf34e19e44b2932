package dev.jvmm.host;

import dev.jvmm.device.virtio.VirtioNet;
import dev.jvmm.event.EventLoop;
import dev.jvmm.sys.Tun;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link Tun} and {@link TapLink} on a real tap device, {@value #TAP}, made with {@code ip tuntap add}
 * (skipped unless running as root with {@code ip} and {@code /dev/net/tun}). The tap gets 10.213.77.1/24
 * and is brought up: a frame written to the tap descriptor arrives on the interface (its rx_packets
 * counter), and a UDP datagram the host sends to 10.213.77.2 makes the kernel send an ARP request out
 * of the tap, which TapLink reads.
 */
class TapLinkTest {
    static final String TAP = "jvmmtap0";
    static final String HOST_IP = "10.213.77.1";
    static final String PEER_IP = "10.213.77.2";
    static final byte[] MAC = {0x52, 0x54, 0x00, 0x0a, 0x0b, 0x0c};

    static boolean created;

    static String ip(String... args) throws IOException, InterruptedException {
        List<String> cmd = new java.util.ArrayList<>(List.of("ip"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(10, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("ip " + String.join(" ", args) + " timed out");
        }
        if (p.exitValue() != 0) throw new IOException("ip " + String.join(" ", args) + ": " + out.trim());
        return out;
    }

    @BeforeAll
    static void createTap() throws Exception {
        Assumptions.assumeTrue(Files.exists(Path.of("/dev/net/tun")), "/dev/net/tun is missing");
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "not root: cannot create a tap device");
        try {
            ip("-V");
        } catch (IOException e) {
            Assumptions.abort("the ip command is not available: " + e.getMessage());
        }
        if (Files.exists(Path.of("/sys/class/net", TAP))) ip("link", "del", TAP); // left over from a killed run
        try {
            ip("tuntap", "add", TAP, "mode", "tap");
        } catch (IOException e) {
            Assumptions.abort("cannot create a tap device here: " + e.getMessage());
        }
        created = true;
        ip("addr", "add", HOST_IP + "/24", "dev", TAP);
        ip("link", "set", TAP, "up");
    }

    @AfterAll
    static void deleteTap() throws Exception {
        if (created) ip("link", "del", TAP);
    }

    static long stat(String name) throws IOException {
        return Long.parseLong(Files.readString(Path.of("/sys/class/net", TAP, "statistics", name)).trim());
    }

    /** A broadcast Ethernet frame with an unused ethertype, behind a zero vnet header. */
    static byte[] frame() {
        byte[] p = new byte[VirtioNet.HDR_BYTES + 60];
        int e = VirtioNet.HDR_BYTES;
        for (int i = 0; i < 6; i++) p[e + i] = (byte) 0xff;
        System.arraycopy(MAC, 0, p, e + 6, 6);
        p[e + 12] = (byte) 0x88;
        p[e + 13] = (byte) 0xb5; // IEEE 802 local experimental ethertype
        return p;
    }

    static boolean isArpForPeer(byte[] p) {
        int e = VirtioNet.HDR_BYTES;
        if (p.length < e + 42 || (p[e + 12] & 0xff) != 0x08 || (p[e + 13] & 0xff) != 0x06) return false;
        byte[] target = {10, (byte) 213, 77, 2};
        return java.util.Arrays.equals(java.util.Arrays.copyOfRange(p, e + 38, e + 42), target);
    }

    @Test
    void tunErrorsAreOneLine() {
        Tun.TapException busy = assertThrows(Tun.TapException.class, () -> {
            try (Tun a = Tun.open(TAP); Tun b = Tun.open(TAP)) {
                fail("a single-queue tap attached twice");
            }
        });
        assertTrue(busy.getMessage().contains("in use by another process"), busy.getMessage());
        Tun.TapException lo = assertThrows(Tun.TapException.class, () -> Tun.open("lo"));
        assertTrue(lo.getMessage().contains("not a single-queue tap"), lo.getMessage());
        Tun.TapException bad = assertThrows(Tun.TapException.class, () -> Tun.open("a-very-long-tap-name"));
        assertTrue(bad.getMessage().contains("longer than 15 bytes"), bad.getMessage());
    }

    @Test
    void guestPacketsReachTheInterfaceAndHostPacketsReachTheDevice() throws Exception {
        try (EventLoop loop = new EventLoop(); TapLink link = new TapLink(Tun.open(TAP))) {
            // guest -> host: the device's port writes packets into the tap; the interface receives them
            long rxBefore = stat("rx_packets");
            byte[] f = frame();
            for (int i = 0; i < 3; i++) assertEquals(f.length, link.send(f, f.length));
            assertEquals(rxBefore + 3, stat("rx_packets"));
            // host -> guest: the device is not active, so nothing can be delivered: packets wait in the backlog
            VirtioNet net = new VirtioNet(MAC, link);
            link.start(net, loop, why -> fail(why));
            try (DatagramSocket s = new DatagramSocket()) {
                byte[] msg = "hello".getBytes(StandardCharsets.UTF_8);
                s.send(new DatagramPacket(msg, msg.length, InetAddress.getByName(PEER_IP), 9));
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (link.backlogSize() == 0 && System.nanoTime() < deadline) loop.runOnce(100);
            assertTrue(link.backlogSize() > 0, "no packet came out of the tap after the host sent to " + PEER_IP);
            // each packet is a 12-byte vnet header and a frame; among them the kernel's ARP request for the peer
            while (link.backlog().stream().noneMatch(TapLinkTest::isArpForPeer) && System.nanoTime() < deadline) loop.runOnce(100);
            assertTrue(link.backlog().stream().anyMatch(TapLinkTest::isArpForPeer), "no ARP request for " + PEER_IP + " from the tap");
            assertEquals(0L, net.counters().get("rx_dropped"));
        }
        assertTrue(Files.exists(Path.of("/sys/class/net", TAP)), "the pre-created tap survives close");
    }

    @Test
    void openCreatesAMissingTapThatGoesAwayOnClose() throws Exception {
        String name = "jvmmtap1";
        if (Files.exists(Path.of("/sys/class/net", name))) ip("link", "del", name);
        try (Tun t = Tun.open(name)) {
            assertTrue(t.fd() >= 0);
            assertTrue(Files.exists(Path.of("/sys/class/net", name)), "TUNSETIFF created " + name);
        } finally {
            if (Files.exists(Path.of("/sys/class/net", name))) {
                // not persistent: closing the only descriptor removes it; clean up if it did not
                Thread.sleep(100);
                if (Files.exists(Path.of("/sys/class/net", name))) ip("link", "del", name);
                else return;
            }
        }
        assertFalse(Files.exists(Path.of("/sys/class/net", name)));
    }
}
