package dev.jvmm.loader.initramfs;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The DHCP client of the rootfs init (guests/rootfs-dhcp.c), through its host-side harness
 * rootfs-dhcp-dump: the requests it sends, and what it takes from replies, which come from the
 * network and are checked before use (a malformed one is ignored, never read beyond its end).
 */
class RootfsDhcpTest {
    private static final String MAC = "52:54:00:12:34:56";
    private static final int XID = 0x1234abcd;

    @TempDir
    Path dir;

    private static Path harness() {
        return GuestHarness.path("rootfs-dhcp-dump");
    }

    private static byte[] run(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(harness().toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), "rootfs-dhcp-dump " + String.join(" ", args));
        return out;
    }

    private String parse(byte[] packet) throws Exception {
        return parse(packet, XID, MAC);
    }

    private String parse(byte[] packet, int xid, String mac) throws Exception {
        Path f = Files.createTempFile(dir, "reply", "");
        Files.write(f, packet);
        return new String(run("reply", f.toString(), Integer.toHexString(xid), mac), StandardCharsets.US_ASCII);
    }

    /** A DHCP option: code, length, value. */
    private static byte[] opt(int code, int... value) {
        byte[] b = new byte[2 + value.length];
        b[0] = (byte) code;
        b[1] = (byte) value.length;
        for (int i = 0; i < value.length; i++) b[2 + i] = (byte) value[i];
        return b;
    }

    /** A whole IPv4/UDP packet from the server (67) to the client (68) with a BOOTREPLY and these options. */
    private static byte[] reply(int xid, byte[] chaddr, int[] yiaddr, byte[]... options) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (byte[] x : options) o.writeBytes(x);
        o.write(255);
        byte[] opts = o.toByteArray();
        int bootp = 236 + 4 + opts.length;
        ByteBuffer b = ByteBuffer.allocate(20 + 8 + bootp);
        b.put((byte) 0x45).put((byte) 0).putShort((short) b.capacity()).putInt(0).put((byte) 64).put((byte) 17).putShort((short) 0)
                .put(new byte[] {10, 0, 2, 2}).put(new byte[] {(byte) 255, (byte) 255, (byte) 255, (byte) 255});
        b.putShort((short) 67).putShort((short) 68).putShort((short) (8 + bootp)).putShort((short) 0);
        b.put((byte) 2).put((byte) 1).put((byte) 6).put((byte) 0).putInt(xid).putInt(0).putInt(0);
        for (int v : yiaddr) b.put((byte) v);
        b.position(b.position() + 8); // siaddr, giaddr
        b.put(chaddr);
        b.position(20 + 8 + 236);
        b.putInt(0x63825363).put(opts);
        return b.array();
    }

    private static byte[] mac() {
        return new byte[] {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    }

    private static byte[] offer(byte[]... extra) {
        List<byte[]> opts = new ArrayList<>(List.of(opt(53, 2), opt(54, 10, 0, 2, 2), opt(1, 255, 255, 255, 0),
                opt(3, 10, 0, 2, 2), opt(6, 10, 0, 2, 3, 1, 1, 1, 1), opt(26, 0x05, 0xdc)));
        opts.addAll(List.of(extra));
        return reply(XID, mac(), new int[] {10, 0, 2, 15}, opts.toArray(byte[][]::new));
    }

    @Test
    void anOfferGivesTheAddressRoutesAndNameServers() throws Exception {
        String out = parse(offer());
        assertEquals("""
                type=2
                addr=10.0.2.15
                mask=255.255.255.0
                server=10.0.2.2
                mtu=1500
                route=0.0.0.0/0.0.0.0 via 10.0.2.2
                dns=10.0.2.3
                dns=1.1.1.1
                """, out);
    }

    @Test
    void classlessRoutesReplaceTheRouterOption() throws Exception {
        // passt's form when the gateway is off the subnet: gw/32 on the link, then 0/0 via gw
        String out = parse(offer(opt(121, 32, 192, 168, 1, 1, 0, 0, 0, 0, 0, 192, 168, 1, 1)));
        assertTrue(out.contains("route=192.168.1.1/255.255.255.255 via 0.0.0.0\nroute=0.0.0.0/0.0.0.0 via 192.168.1.1\n"), out);
        assertTrue(!out.contains("via 10.0.2.2"), "option 3 is moot with option 121: " + out);
        // a width above 32 ends the list: what came before stays
        out = parse(offer(opt(121, 24, 10, 9, 8, 10, 0, 2, 1, 33, 1, 2, 3, 4, 5, 6, 7, 8)));
        assertTrue(out.contains("route=10.9.8.0/255.255.255.0 via 10.0.2.1\n") && !out.contains("via 10.0.2.2"), out);
    }

    @Test
    void repliesForSomeoneElseOrMalformedOnesAreIgnored() throws Exception {
        assertEquals("type=0\n", parse(offer(), XID + 1, MAC), "another transaction");
        assertEquals("type=0\n", parse(offer(), XID, "52:54:00:12:34:57"), "another client");
        byte[] p = offer();
        p[22] = 0; // UDP destination port 69, not 68
        p[23] = 69;
        assertEquals("type=0\n", parse(p), "another port");
        assertEquals("type=0\n", parse(reply(XID, mac(), new int[] {0, 0, 0, 0}, opt(53, 2))), "no address");
        assertEquals("type=0\n", parse(reply(XID, mac(), new int[] {224, 0, 0, 1}, opt(53, 2))), "a multicast address");
        assertEquals("type=0\n", parse(reply(XID, mac(), new int[] {10, 0, 2, 15}, opt(53, 7))), "a RELEASE is no reply");
        // an option whose length runs past the message
        byte[] bad = reply(XID, mac(), new int[] {10, 0, 2, 15}, opt(53, 2), new byte[] {6, (byte) 200, 1, 2, 3, 4});
        assertEquals("type=0\n", parse(java.util.Arrays.copyOf(bad, bad.length - 1)), "option past the end");
        // an IP total length beyond what arrived
        byte[] longer = offer();
        longer[3] = (byte) (longer[3] + 1);
        assertEquals("type=0\n", parse(longer), "IP length beyond the packet");
        // a NAK needs no address
        assertEquals("type=6\n", parse(reply(XID, mac(), new int[] {0, 0, 0, 0}, opt(53, 6))));
    }

    @Test
    void noProperPrefixOfAReplyIsTaken() throws Exception {
        Path f = Files.createTempFile(dir, "reply", "");
        Files.write(f, offer(opt(121, 32, 192, 168, 1, 1, 0, 0, 0, 0, 0, 192, 168, 1, 1)));
        assertEquals("taken=0\n", new String(run("prefixes", f.toString(), Integer.toHexString(XID), MAC), StandardCharsets.US_ASCII));
    }

    @Test
    void requestsAreBroadcastWithTheFlagSet() throws Exception {
        for (boolean request : new boolean[] {false, true}) {
            byte[] p = request ? run("request", Integer.toHexString(XID), MAC, "10.0.2.15", "10.0.2.2")
                    : run("request", Integer.toHexString(XID), MAC);
            ByteBuffer b = ByteBuffer.wrap(p);
            assertEquals(0x45, b.get(0));
            assertEquals(p.length, b.getShort(2) & 0xffff);
            assertEquals(0, checksum(p, 20), "IP header checksum");
            assertEquals(17, b.get(9));
            assertEquals(0, b.getInt(12), "from 0.0.0.0");
            assertEquals(-1, b.getInt(16), "to 255.255.255.255");
            assertEquals(68, b.getShort(20));
            assertEquals(67, b.getShort(22));
            assertEquals(p.length - 20, b.getShort(24) & 0xffff);
            assertTrue(p.length >= 328, "BOOTP's 300-byte minimum");
            assertEquals(1, b.get(28), "BOOTREQUEST");
            assertEquals(XID, b.getInt(32));
            assertEquals(0x8000, b.getShort(38) & 0xffff, "broadcast flag");
            assertEquals(java.util.HexFormat.of().formatHex(mac()), java.util.HexFormat.of().formatHex(p, 56, 62));
            assertEquals(0x63825363, b.getInt(28 + 236));
            byte[] o = java.util.Arrays.copyOfRange(p, 28 + 240, p.length);
            assertEquals(53, o[0]);
            assertEquals(request ? 3 : 1, o[2]);
            if (request) {
                assertEquals("32040a00020f36040a000202", java.util.HexFormat.of().formatHex(o, 3, 15), "requested address and server");
            }
        }
    }

    private static int checksum(byte[] p, int n) {
        int sum = 0;
        for (int i = 0; i < n; i += 2) sum += (p[i] & 0xff) << 8 | (p[i + 1] & 0xff);
        while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
        return ~sum & 0xffff;
    }
}
