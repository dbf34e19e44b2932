package dev.jvmm.host.vsock;

import dev.jvmm.device.virtio.VsockPacket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static dev.jvmm.device.virtio.VsockPacket.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The UNIX-socket side with real host programs (JDK UNIX-domain channels on other threads) and a
 * scripted guest driver ({@link VsockGuest}) on the real device and queues: Firecracker's
 * CONNECT/OK handshake and its malformed variants, guest connections to PATH_PORT, refusals,
 * hostile headers, the connection limit, and a host peer that stops reading.
 */
class VsockMuxerTest {
    @TempDir
    Path tmp;
    Path uds;
    VsockGuest g;

    @BeforeEach
    void start() throws IOException {
        uds = tmp.resolve("v.sock");
        g = new VsockGuest(uds);
    }

    @AfterEach
    void stop() {
        g.close();
        assertFalse(Files.exists(uds), "the socket is removed at the end");
    }

    static SocketChannel connect(Path p) throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        c.connect(UnixDomainSocketAddress.of(p));
        return c;
    }

    /** A host program listening for the guest's connections to {@code port} at PATH_port ({@code backlog} 0: the default). */
    ServerSocketChannel hostListener(int port, int backlog) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(Path.of(uds + "_" + port)), backlog);
        return server;
    }

    /** A host program connecting to the muxer's socket and writing {@code first}, in the background. */
    CompletableFuture<SocketChannel> connectAndWrite(String first) {
        return async(() -> {
            SocketChannel c = connect(uds);
            write(c, first);
            return c;
        });
    }

    static void write(SocketChannel c, String s) throws IOException {
        write(c, s.getBytes(StandardCharsets.US_ASCII));
    }

    static void write(SocketChannel c, byte[] b) throws IOException {
        ByteBuffer bb = ByteBuffer.wrap(b);
        while (bb.hasRemaining()) c.write(bb);
    }

    /** Reads until {@code n} bytes or end of stream. */
    static byte[] read(SocketChannel c, int n) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer bb = ByteBuffer.allocate(65536);
        while (out.size() < n) {
            bb.clear().limit(Math.min(bb.capacity(), n - out.size()));
            int r = c.read(bb);
            if (r < 0) break;
            out.write(bb.array(), 0, r);
        }
        return out.toByteArray();
    }

    /** A line, or null at end of stream or reset (a socket closed with unread bytes resets its peer). */
    static String readLine(SocketChannel c) throws IOException {
        StringBuilder sb = new StringBuilder();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (true) {
            one.clear();
            int r;
            try {
                r = c.read(one);
            } catch (java.net.SocketException e) {
                if (!String.valueOf(e.getMessage()).contains("reset")) throw e;
                r = -1;
            }
            if (r < 0) return sb.isEmpty() ? null : sb.toString();
            char ch = (char) one.get(0);
            sb.append(ch);
            if (ch == '\n') return sb.toString();
        }
    }

    static <T> CompletableFuture<T> async(java.util.concurrent.Callable<T> task) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return task.call();
            } catch (Exception e) {
                throw new java.util.concurrent.CompletionException(e);
            }
        }, r -> Thread.ofVirtual().start(r));
    }

    /** Runs the guest's loop until {@code f} is done. */
    <T> T join(CompletableFuture<T> f) {
        long end = System.nanoTime() + 10_000_000_000L;
        while (!f.isDone()) {
            if (System.nanoTime() > end) throw new AssertionError("timed out; guest received " + g.received);
            g.turn(5);
        }
        return f.join();
    }

    @Test
    void theSocketIsOwnerOnly() throws IOException {
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(uds)));
        assertEquals(0, Files.list(tmp).filter(p -> p.getFileName().toString().startsWith(".jvmm-")).count(), "no private directory left");
    }

    @Test
    void aSecondMuxerOnTheSamePathIsRefusedAndAStaleSocketReplaced() throws IOException {
        IOException e = assertThrows(IOException.class, () -> VsockMuxer.open(uds, 3));
        assertTrue(e.getMessage().contains("in use"), e.getMessage());
        Path stale = tmp.resolve("stale.sock");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(stale));
        } // closed: the file stays, nobody listens, as after a SIGKILLed jvmm
        assertTrue(Files.exists(stale));
        VsockMuxer m = VsockMuxer.open(stale, 3);
        m.close();
        Path file = Files.writeString(tmp.resolve("file"), "x");
        assertTrue(assertThrows(IOException.class, () -> VsockMuxer.open(file, 3)).getMessage().contains("not a socket"));
        assertEquals("x", Files.readString(file), "someone's file is left alone");
        assertNotNull(VsockMuxer.checkPath(tmp.resolve("x".repeat(100))));
    }

    @Test
    void hostProgramConnectsGetsOkAndExchangesBytes() throws Exception {
        CompletableFuture<SocketChannel> client = connectAndWrite("CONNECT 52\nearly");
        VsockGuest.Rx req = g.await(OP_REQUEST, 52, 5000);
        int hostPort = req.header().srcPort();
        assertEquals(1 << 30, hostPort, "host ports start at 2^30, as Firecracker's");
        assertEquals(HOST_CID, req.header().srcCid());
        assertEquals(VsockGuest.CID, req.header().dstCid());
        g.send(OP_RESPONSE, 52, hostPort, 0, 65536, 0, new byte[0]);
        SocketChannel c = join(client);
        assertEquals("OK " + hostPort + "\n", join(async(() -> readLine(c))));
        // what the program wrote after its CONNECT line was left in the stream
        VsockGuest.Rx early = g.await(OP_RW, 52, 5000);
        assertEquals("early", new String(early.data(), StandardCharsets.US_ASCII));
        g.send(OP_RW, 52, hostPort, 0, 65536, 5, "from the guest".getBytes(StandardCharsets.US_ASCII));
        assertEquals("from the guest", new String(join(async(() -> read(c, 14))), StandardCharsets.US_ASCII));
        c.close();
        VsockGuest.Rx sd = g.await(OP_SHUTDOWN, 52, 5000);
        assertEquals(SHUTDOWN_RCV | SHUTDOWN_SEND, sd.header().flags(), "the program closed both ways");
        g.send(OP_RST, 52, hostPort, 0, 0, 0, new byte[0]);
        g.run(50);
        assertEquals(0, g.muxer.connectionCount());
        assertEquals(1L, g.muxer.counters().get("host_connections"));
    }

    @Test
    void aPortNobodyListensOnInTheGuestClosesTheProgramsSocket() throws Exception {
        CompletableFuture<String> client = async(() -> {
            try (SocketChannel c = connect(uds)) {
                write(c, "CONNECT 99\n");
                return String.valueOf(readLine(c));
            }
        });
        VsockGuest.Rx req = g.await(OP_REQUEST, 99, 5000);
        g.send(OP_RST, 99, req.header().srcPort(), 0, 0, 0, new byte[0]);
        assertEquals("null", join(client), "refused: end of stream, no OK");
        assertEquals(1L, g.muxer.counters().get("refused_by_guest"));
    }

    @Test
    void malformedCommandLinesCloseTheConnection() throws Exception {
        String[] lines = {"GET / HTTP/1.0\n", "CONNECT x\n", "CONNECT 4294967296\n", "C".repeat(40), "CONNECT 5 6\n"};
        for (String line : lines) {
            CompletableFuture<String> client = async(() -> {
                try (SocketChannel c = connect(uds)) {
                    write(c, line);
                    return String.valueOf(readLine(c));
                }
            });
            assertEquals("null", join(client), line);
        }
        g.run(20);
        assertEquals(5L, g.muxer.counters().get("handshake_errors"));
        assertTrue(g.received.isEmpty(), "the guest heard nothing: " + g.received);
        // a program that never sends its line is closed after the handshake time
        CompletableFuture<String> silent = async(() -> {
            try (SocketChannel c = connect(uds)) {
                return String.valueOf(readLine(c));
            }
        });
        long t0 = System.nanoTime();
        assertEquals("null", join(silent));
        assertTrue(System.nanoTime() - t0 >= VsockMuxer.HANDSHAKE_NANOS - 500_000_000L);
    }

    @Test
    void guestConnectsToPathPortAndIsRefusedWhereNobodyListens() throws Exception {
        try (ServerSocketChannel server = hostListener(77, 0)) {
            g.send(OP_REQUEST, 40000, 77, 0, 65536, 0, new byte[0]);
            VsockGuest.Rx resp = g.await(OP_RESPONSE, 40000, 5000);
            assertEquals(77, resp.header().srcPort());
            SocketChannel host = join(async(server::accept));
            g.send(OP_RW, 40000, 77, 0, 65536, 0, "ping".getBytes(StandardCharsets.US_ASCII));
            assertEquals("ping", new String(join(async(() -> read(host, 4))), StandardCharsets.US_ASCII));
            write(host, "pong");
            assertEquals("pong", new String(g.await(OP_RW, 40000, 5000).data(), StandardCharsets.US_ASCII));
            g.send(OP_SHUTDOWN, 40000, 77, SHUTDOWN_RCV | SHUTDOWN_SEND, 65536, 4, new byte[0]);
            assertEquals(0, join(async(() -> read(host, 1))).length, "the host peer reads end of stream");
            g.await(OP_RST, 40000, 5000);
            host.close();
        }
        g.send(OP_REQUEST, 40001, 78, 0, 65536, 0, new byte[0]);
        g.await(OP_RST, 40001, 5000);
        assertEquals(1L, g.muxer.counters().get("refused_to_guest"));
        assertEquals(0, g.muxer.connectionCount());
    }

    @Test
    void hostileHeaders() throws Exception {
        // not from the guest's CID: dropped without an answer
        g.send(new VsockPacket(4, HOST_CID, 1, 77, 0, TYPE_STREAM, OP_REQUEST, 0, 0, 0), new byte[0]);
        // to another CID: refused in that CID's name
        g.send(new VsockPacket(VsockGuest.CID, 7, 2, 77, 0, TYPE_STREAM, OP_REQUEST, 0, 0, 0), new byte[0]);
        VsockGuest.Rx rst = g.await(OP_RST, 2, 5000);
        assertEquals(7, rst.header().srcCid());
        // SEQPACKET, an unknown op, a length beyond the chain, flags on a REQUEST
        g.send(new VsockPacket(VsockGuest.CID, HOST_CID, 3, 77, 0, 2, OP_REQUEST, 0, 0, 0), new byte[0]);
        g.send(new VsockPacket(VsockGuest.CID, HOST_CID, 4, 77, 0, TYPE_STREAM, 42, 0, 0, 0), new byte[0]);
        g.send(new VsockPacket(VsockGuest.CID, HOST_CID, 5, 77, 1000, TYPE_STREAM, OP_RW, 0, 0, 0), new byte[10]);
        g.send(new VsockPacket(VsockGuest.CID, HOST_CID, 6, 77, 0, TYPE_STREAM, OP_REQUEST, 1, 0, 0), new byte[0]);
        for (int port = 3; port <= 6; port++) g.await(OP_RST, port, 5000);
        // data for no connection
        g.send(OP_RW, 8, 77, 0, 0, 0, new byte[3]);
        g.await(OP_RST, 8, 5000);
        // an RST for no connection is not answered; a chain shorter than a header is counted
        g.send(OP_RST, 9, 77, 0, 0, 0, new byte[0]);
        g.d.submit(dev.jvmm.device.virtio.VirtioVsock.TXQ, dev.jvmm.device.virtio.TestDriver.Buf.r(VsockGuest.TX_BASE, 20));
        g.d.kick(dev.jvmm.device.virtio.VirtioVsock.TXQ);
        g.run(50);
        assertTrue(g.received.isEmpty(), "nothing else answered: " + g.received);
        assertEquals(6L, g.muxer.counters().get("malformed"));
        assertEquals(1L, g.device.counters().get("short_chains"));

        // a malformed packet on an open connection resets it and closes the host socket
        try (ServerSocketChannel server = hostListener(77, 0)) {
            g.send(OP_REQUEST, 100, 77, 0, 65536, 0, new byte[0]);
            g.await(OP_RESPONSE, 100, 5000);
            SocketChannel host = join(async(server::accept));
            g.send(new VsockPacket(VsockGuest.CID, HOST_CID, 100, 77, 0, TYPE_STREAM, OP_SHUTDOWN, 0x80, 65536, 0), new byte[0]);
            g.await(OP_RST, 100, 5000);
            assertEquals(0, join(async(() -> read(host, 1))).length, "the host socket was closed");
            host.close();
        }
        assertEquals(0, g.muxer.connectionCount());
    }

    @Test
    void aFloodOfRequestsBeyondTheLimitIsRefused() throws Exception {
        try (ServerSocketChannel server = hostListener(80, 4096)) {
            int n = VsockMuxer.MAX_CONNECTIONS + 50;
            for (int i = 0; i < n; i++) {
                g.send(OP_REQUEST, 10_000 + i, 80, 0, 65536, 0, new byte[0]);
                if (i % 32 == 0) g.turn(0);
            }
            int responses = 0, resets = 0;
            long end = System.nanoTime() + 20_000_000_000L;
            while (responses + resets < n && System.nanoTime() < end) {
                g.turn(5);
                VsockGuest.Rx r;
                while ((r = g.received.poll()) != null) {
                    if (r.op() == OP_RESPONSE) responses++;
                    else if (r.op() == OP_RST) resets++;
                }
            }
            assertEquals(VsockMuxer.MAX_CONNECTIONS, responses);
            assertEquals(50, resets);
            assertEquals((long) VsockMuxer.MAX_CONNECTIONS, g.muxer.counters().get("connections"));
            assertEquals(50L, g.muxer.counters().get("limit_refusals"));
            // and a host program is turned away too: jvmm closes it at accept, so its CONNECT line
            // may already meet a closed socket (EPIPE) rather than end of stream; both are refusals
            CompletableFuture<String> client = async(() -> {
                try (SocketChannel c = connect(uds)) {
                    try {
                        write(c, "CONNECT 1\n");
                    } catch (IOException e) {
                        if (!String.valueOf(e.getMessage()).matches("(?i).*(broken pipe|reset).*")) throw e;
                        return "null";
                    }
                    return String.valueOf(readLine(c));
                }
            });
            assertEquals("null", join(client));
            List<SocketChannel> accepted = new ArrayList<>();
            server.configureBlocking(false);
            SocketChannel a;
            while ((a = server.accept()) != null) accepted.add(a);
            assertEquals(VsockMuxer.MAX_CONNECTIONS, accepted.size());
            for (SocketChannel s : accepted) s.close();
        }
    }

    @Test
    void aHostPeerThatStopsReadingStallsOnlyItsOwnConnection() throws Exception {
        try (ServerSocketChannel server = hostListener(81, 0)) {
            g.send(OP_REQUEST, 200, 81, 0, 65536, 0, new byte[0]);
            int credit = g.await(OP_RESPONSE, 200, 5000).header().bufAlloc();
            SocketChannel stuck = join(async(server::accept));
            g.send(OP_REQUEST, 201, 81, 0, 65536, 0, new byte[0]);
            g.await(OP_RESPONSE, 201, 5000);
            SocketChannel live = join(async(server::accept));
            // the guest fills connection 200: the host socket, then jvmm's buffer, up to the credit given
            byte[] chunk = new byte[4096];
            long sent = 0, fwd = 0;
            int lastFwd = 0;
            while (sent - lastFwd + chunk.length <= credit) {
                g.send(OP_RW, 200, 81, 0, 65536, 0, chunk);
                sent += chunk.length;
                g.turn(0);
                for (VsockGuest.Rx r : g.received) if (r.header().dstPort() == 200) lastFwd = r.header().fwdCnt();
                g.received.removeIf(r -> r.header().dstPort() == 200);
                if (sent > 8L << 20) fail("the host socket never filled");
            }
            g.run(20);
            assertTrue(sent > credit, "the host socket took some, jvmm buffers the rest within the credit: " + sent);
            // connection 201 still flows both ways
            for (int i = 0; i < 20; i++) {
                byte[] msg = ("msg " + i).getBytes(StandardCharsets.US_ASCII);
                g.send(OP_RW, 201, 81, 0, 65536, 0, msg);
                assertArrayEquals(msg, join(async(() -> read(live, msg.length))));
                write(live, msg);
                assertArrayEquals(msg, g.await(OP_RW, 201, 5000).data());
            }
            // the stuck peer starts reading: everything arrives, in order
            long total = sent;
            byte[] got = join(async(() -> read(stuck, (int) total)));
            assertEquals(total, got.length);
            stuck.close();
            live.close();
        }
    }

    @Test
    void aGuestThatReturnsNoBuffersMakesTheHostProgramWait() throws Exception {
        CompletableFuture<SocketChannel> client = connectAndWrite("CONNECT 60\n");
        VsockGuest.Rx req = g.await(OP_REQUEST, 60, 5000);
        g.send(OP_RESPONSE, 60, req.header().srcPort(), 0, 1 << 30, 0, new byte[0]);
        SocketChannel c = join(client);
        assertTrue(join(async(() -> readLine(c))).startsWith("OK "));
        g.holdBuffers(true);
        c.configureBlocking(false);
        byte[] chunk = new byte[65536];
        long written = 0;
        long end = System.nanoTime() + 5_000_000_000L;
        int stalls = 0;
        while (stalls < 20 && System.nanoTime() < end) {
            int w = c.write(ByteBuffer.wrap(chunk));
            written += w;
            stalls = w == 0 ? stalls + 1 : 0;
            g.turn(2);
        }
        long taken = 0;
        VsockGuest.Rx rx;
        while ((rx = g.received.poll()) != null) taken += rx.data().length;
        assertTrue(taken <= (long) VsockGuest.RX_BUFFERS * VsockGuest.RX_DATA, "only into the guest's buffers: " + taken);
        assertTrue(written < 16L << 20, "the program's writes stopped: " + written);
        g.holdBuffers(false);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (taken < written && System.nanoTime() < deadline) {
            g.turn(5);
            VsockGuest.Rx r;
            while ((r = g.received.poll()) != null) {
                if (r.op() == OP_RW) taken += r.data().length;
                if (r.op() == OP_CREDIT_REQUEST) fail("the guest offered 1 GiB of credit");
            }
        }
        assertEquals(written, taken, "all of it once the guest reads again");
        c.close();
    }
}
