package dev.jvmm.gdb;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The listener over a fake target: addresses, one client at a time, a client that goes away. */
class GdbServerTest {
    @Test
    void addressesParse() {
        assertEquals(new GdbServer.Address("127.0.0.1", 1234, null), GdbServer.Address.parse("tcp:1234"));
        assertEquals(new GdbServer.Address("0.0.0.0", 1, null), GdbServer.Address.parse("tcp:0.0.0.0:1"));
        assertEquals(new GdbServer.Address("::1", 9, null), GdbServer.Address.parse("tcp:[::1]:9"));
        assertEquals(Path.of("/tmp/s"), GdbServer.Address.parse("unix:/tmp/s").path());
        for (String bad : List.of("1234", "tcp:", "tcp:x", "tcp:65536", "tcp:-1", "tcp::80", "unix:", "udp:1")) {
            assertThrows(IllegalArgumentException.class, () -> GdbServer.Address.parse(bad), bad);
        }
    }

    private static String readPacket(SocketChannel c) throws IOException {
        StringBuilder sb = new StringBuilder();
        ByteBuffer b = ByteBuffer.allocate(1);
        int hashAt = -1;
        while (hashAt < 0 || sb.length() < hashAt + 3) {
            b.clear();
            if (c.read(b) < 0) return sb.isEmpty() ? null : sb.toString();
            char ch = (char) (b.get(0) & 0xff);
            if (sb.isEmpty() && ch != '$') continue; // acks
            sb.append(ch);
            if (ch == '#' && hashAt < 0) hashAt = sb.length() - 1;
        }
        return sb.toString();
    }

    @Test
    void oneDebuggerAtATimeAndADisconnectDetaches(@TempDir Path tmp) throws Exception {
        Path sock = tmp.resolve("g.sock");
        GdbSessionTest.FakeTarget target = new GdbSessionTest.FakeTarget();
        List<String> log = new CopyOnWriteArrayList<>();
        try (GdbServer server = GdbServer.open(GdbServer.Address.parse("unix:" + sock), target, log::add)) {
            server.start();
            try (SocketChannel first = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                first.connect(UnixDomainSocketAddress.of(sock));
                first.write(ByteBuffer.wrap(Rsp.frame("qC")));
                assertTrue(readPacket(first).startsWith("$QC1#"));
                try (SocketChannel second = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                    second.connect(UnixDomainSocketAddress.of(sock));
                    second.write(ByteBuffer.wrap(Rsp.frame("qSupported:swbreak+")));
                    String refusal = readPacket(second);
                    assertTrue(refusal.startsWith("$E.another debugger is attached"), refusal);
                    second.write(ByteBuffer.wrap(Rsp.frame("?")));
                    assertTrue(readPacket(second).startsWith("$E.another debugger"), "every packet is refused");
                }
                // the first is still served
                first.write(ByteBuffer.wrap(Rsp.frame("qfThreadInfo")));
                assertTrue(readPacket(first).startsWith("$m1,2#"));
                // it goes away in the middle of a packet: a clean detach
                first.write(ByteBuffer.wrap("$m0,".getBytes(StandardCharsets.ISO_8859_1)));
            }
            // the session thread sees the EOF and detaches; the next client is served then
            try (SocketChannel third = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                third.connect(UnixDomainSocketAddress.of(sock));
                third.write(ByteBuffer.wrap(Rsp.frame("qC")));
                String r = readPacket(third);
                // the listener may still have been finishing the first session: then this one was refused
                while (r.startsWith("$E.")) {
                    third.close();
                    try (SocketChannel again = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                        again.connect(UnixDomainSocketAddress.of(sock));
                        again.write(ByteBuffer.wrap(Rsp.frame("qC")));
                        r = readPacket(again);
                    }
                }
                assertTrue(r.startsWith("$QC1#"), r);
            }
            assertTrue(target.detaches >= 1, "the disconnect detached");
            assertTrue(log.stream().anyMatch(l -> l.contains("middle of a packet")), log.toString());
            assertTrue(log.stream().anyMatch(l -> l.contains("refused a second debugger")), log.toString());
        }
        assertFalse(sock.toFile().exists(), "the socket is removed when the server closes");
    }
}
