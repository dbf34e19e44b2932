package dev.jvmm.gdb;

import dev.jvmm.sys.SocketFiles;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * {@code --gdb}: listens on TCP or a UNIX socket, serves one debugger at a time on a {@link GdbTarget}
 * and refuses others with an error packet. Each client gets a reader thread (bytes in) and a session
 * thread, which alone talks to the target; the target's stop reports join the same queue, so the
 * session is single-threaded. Nothing a client does reaches beyond its own session.
 */
public final class GdbServer implements AutoCloseable {
    /** Where to listen: {@code tcp:[HOST:]PORT} (127.0.0.1 by default) or {@code unix:PATH}. */
    public record Address(String host, int port, Path path) {
        public static Address parse(String s) {
            if (s.startsWith("unix:")) {
                String p = s.substring(5);
                if (p.isEmpty()) throw new IllegalArgumentException("--gdb unix:PATH needs a path");
                return new Address(null, 0, Path.of(p));
            }
            if (!s.startsWith("tcp:")) throw new IllegalArgumentException("--gdb '" + s + "': use tcp:[HOST:]PORT or unix:PATH");
            String rest = s.substring(4);
            int colon = rest.lastIndexOf(':');
            String host = colon < 0 ? "127.0.0.1" : rest.substring(0, colon);
            String port = colon < 0 ? rest : rest.substring(colon + 1);
            if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
            if (host.isEmpty()) throw new IllegalArgumentException("--gdb '" + s + "': empty host");
            int p;
            try {
                p = Integer.parseInt(port);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--gdb '" + s + "': the port must be a number 0-65535");
            }
            if (p < 0 || p > 65535) throw new IllegalArgumentException("--gdb '" + s + "': the port must be a number 0-65535");
            return new Address(host, p, null);
        }

        @Override
        public String toString() {
            return path != null ? "unix:" + path : "tcp:" + host + ":" + port;
        }
    }

    /** What the server tells its owner (log lines). */
    public interface Log {
        void info(String message);
    }

    private final ServerSocketChannel listener;
    private final GdbTarget target;
    private final Log log;
    private final Path socketPath;
    private final Thread acceptThread;
    private volatile boolean closed;
    private volatile Client client;
    private final String boundTo;

    private GdbServer(ServerSocketChannel listener, GdbTarget target, Log log, Path socketPath, String boundTo) {
        this.listener = listener;
        this.target = target;
        this.log = log;
        this.socketPath = socketPath;
        this.boundTo = boundTo;
        this.acceptThread = Thread.ofPlatform().name("gdb listener").daemon(true).unstarted(this::acceptLoop);
    }

    /** Binds the address now (a bad address or a port in use fails here, before the VM starts). */
    public static GdbServer open(Address a, GdbTarget target, Log log) throws IOException {
        ServerSocketChannel ch;
        String bound;
        if (a.path() != null) {
            if (Files.exists(a.path())) throw new IOException(a.path() + " exists");
            // the file appears once the socket listens (a script may wait for it, then connect), 0600
            ch = SocketFiles.listen(a.path(), at -> {
                ServerSocketChannel c = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    c.bind(UnixDomainSocketAddress.of(at), 1);
                } catch (IOException | RuntimeException e) {
                    c.close();
                    throw e;
                }
                return c;
            });
            bound = "unix:" + a.path();
        } else {
            ch = ServerSocketChannel.open();
            ch.bind(new InetSocketAddress(a.host(), a.port()), 1);
            SocketAddress local = ch.getLocalAddress();
            bound = "tcp:" + (local instanceof InetSocketAddress i ? i.getAddress().getHostAddress() + ":" + i.getPort() : local);
        }
        return new GdbServer(ch, target, log, a.path(), bound);
    }

    /** "tcp:127.0.0.1:1234" (the port the system chose, for port 0) or "unix:PATH". */
    public String boundTo() {
        return boundTo;
    }

    public void start() {
        acceptThread.start();
    }

    /** The VM ended with this status: the client hears it (W), then the server closes. */
    public void targetExited(int status) {
        Client c = client;
        if (c != null) c.queue.offer(new Exited(status));
    }

    private record Exited(int status) { }
    private record Bytes(byte[] data, int length) { }
    private static final Object EOF = new Object();

    private void acceptLoop() {
        while (!closed) {
            SocketChannel s;
            try {
                s = listener.accept();
            } catch (IOException e) {
                if (!closed) log.info("gdb stub: accept failed: " + e.getMessage());
                return;
            }
            if (client != null) {
                refuse(s);
                continue;
            }
            Client c = new Client(s);
            client = c;
            c.start();
        }
    }

    /** Refused connections being answered now; past this many, a refused one is just closed. */
    private static final int MAX_REFUSING = 4;
    private final java.util.Set<SocketChannel> refusing = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * A second debugger: its first packet (gdb's qSupported) gets an error naming the reason, which
     * gdb prints ("Remote failure reply: E.another debugger ..."), then the connection closes.
     */
    private void refuse(SocketChannel s) {
        log.info("gdb stub: refused a second debugger (one is attached)");
        if (refusing.size() >= MAX_REFUSING) {
            closeQuietly(s);
            return;
        }
        refusing.add(s);
        Thread.ofPlatform().name("gdb refusal").daemon(true).start(() -> {
            byte[] refusal = Rsp.frame("E.another debugger is attached to this VM");
            int[] owed = {0};
            RspDecoder d = new RspDecoder(Rsp.PACKET_SIZE, new RspDecoder.Listener() {
                @Override public void packet(byte[] data) { owed[0]++; }
                @Override public void badPacket(String why) { owed[0]++; }
                @Override public void interrupt() { }
                @Override public void oversized() { owed[0] = -1; }
            });
            // every packet gets the refusal until the client gives up and closes (gdb does after one
            // or two); closing first would make gdb's own ack fail and hide the reason behind EPIPE
            try (s) {
                ByteBuffer buf = ByteBuffer.allocate(1024);
                while (!closed && owed[0] >= 0) {
                    buf.clear();
                    int n = s.read(buf);
                    if (n < 0) return;
                    d.feed(buf.array(), 0, n);
                    for (; owed[0] > 0; owed[0]--) {
                        s.write(ByteBuffer.wrap(new byte[] {'+'}));
                        s.write(ByteBuffer.wrap(refusal));
                    }
                }
            } catch (IOException ignored) {
                // it went away
            } finally {
                refusing.remove(s);
            }
        });
    }

    private static void closeQuietly(SocketChannel s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    private final class Client implements GdbTarget.Listener {
        final SocketChannel socket;
        final LinkedBlockingQueue<Object> queue = new LinkedBlockingQueue<>();

        Client(SocketChannel socket) {
            this.socket = socket;
        }

        void start() {
            Thread.ofPlatform().name("gdb session").daemon(true).start(this::session);
        }

        @Override
        public void stopped(StopEvent event) {
            queue.offer(event);
        }

        @Override
        public void exited(int status) {
            queue.offer(new Exited(status));
        }

        private void reader() {
            ByteBuffer buf = ByteBuffer.allocate(4096);
            try {
                while (true) {
                    buf.clear();
                    int n = socket.read(buf);
                    if (n < 0) break;
                    queue.offer(new Bytes(java.util.Arrays.copyOf(buf.array(), n), n));
                    // bounded: at most a few packets' worth waits for the session
                    while (queue.size() > 64 && socket.isOpen()) Thread.sleep(1);
                }
            } catch (IOException | InterruptedException e) {
                // closed by the session, or the client went away
            }
            queue.offer(EOF);
        }

        private void session() {
            GdbSession session = new GdbSession(target, this::write);
            log.info("gdb stub: debugger attached from " + remote());
            try {
                target.attach(this);
                Thread.ofPlatform().name("gdb reader").daemon(true).start(this::reader);
                while (!session.closed()) {
                    Object e = queue.take();
                    if (e instanceof Bytes b) session.receive(b.data(), 0, b.length());
                    else if (e instanceof StopEvent s) session.targetStopped(s);
                    else if (e instanceof Exited x) session.targetExited(x.status());
                    else if (e == EOF) session.disconnected();
                }
                log.info("gdb stub: " + session.closeReason());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (RuntimeException e) {
                log.info("gdb stub: session failed: " + e);
                try {
                    target.detach(() -> { });
                } catch (RuntimeException ignored) {
                    // the VM is going away
                }
            } finally {
                try {
                    socket.close();
                } catch (IOException ignored) {
                    // nothing to do
                }
                client = null;
            }
        }

        private void write(byte[] data) {
            try {
                ByteBuffer b = ByteBuffer.wrap(data);
                while (b.hasRemaining()) socket.write(b);
            } catch (IOException e) {
                // the reader sees the EOF and the session detaches
            }
        }

        private String remote() {
            try {
                SocketAddress r = socket.getRemoteAddress();
                return r == null || r.toString().isEmpty() ? boundTo : r.toString();
            } catch (IOException e) {
                return boundTo;
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            listener.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        Client c = client;
        if (c != null) closeQuietly(c.socket);
        for (SocketChannel r : refusing) closeQuietly(r);
        if (socketPath != null) {
            try {
                Files.deleteIfExists(socketPath);
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

}
