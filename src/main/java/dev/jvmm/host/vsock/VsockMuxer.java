package dev.jvmm.host.vsock;

import dev.jvmm.device.DeviceFailure;
import dev.jvmm.device.virtio.DescriptorChain;
import dev.jvmm.device.virtio.VirtioVsock;
import dev.jvmm.device.virtio.VsockPacket;
import dev.jvmm.event.EventLoop;
import dev.jvmm.log.Log;
import dev.jvmm.sys.Counters;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SocketFiles;
import dev.jvmm.sys.SocketIo;
import dev.jvmm.sys.UnixSocket;
import dev.jvmm.sys.UnixSocketException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * The host side of virtio-vsock over UNIX sockets, Firecracker's protocol: the back end of
 * {@link VirtioVsock} that routes the guest's packets to {@link VsockConnection}s and their host
 * sockets, and brings host bytes and control packets to the guest's receive buffers.
 *
 * <p><b>Host-initiated.</b> jvmm listens on {@code PATH} (created owner-only, removed at the end). A
 * program connects, writes {@code CONNECT <port>\n} ({@link ConnectCommand}, within
 * {@link #HANDSHAKE_NANOS}) and, once the guest answers the REQUEST, reads {@code OK <hostport>\n};
 * from then on the socket is a byte stream to the guest's port. When nothing listens there the guest
 * answers RST and the socket is closed.
 *
 * <p><b>Guest-initiated.</b> A REQUEST to CID 2 port P connects (non-blocking) to the UNIX socket
 * {@code PATH_P}; when that fails (no such socket, nobody listening, a full backlog) the guest gets RST.
 *
 * <p><b>Bounds.</b> At most {@link #MAX_CONNECTIONS} connections and {@link #MAX_HANDSHAKES} programs
 * that have not sent their CONNECT line yet; beyond that a guest REQUEST gets RST and a host
 * program's socket is closed, with one warning. The first {@link #BIG_CREDIT_CONNECTIONS} connections
 * give the guest {@link #BIG_CREDIT} bytes of credit, later ones {@link #SMALL_CREDIT}, which bounds
 * what the guest can make jvmm buffer (about 46 MiB with every connection full). RSTs for packets
 * that match no connection wait in a queue of at most {@link #MAX_QUEUED_RSTS}; beyond it they are
 * dropped and counted. Each turn on the loop fills at most {@link #PACKETS_PER_TURN} receive buffers
 * and accepts at most {@link #ACCEPTS_PER_TURN} programs, so the console and other devices keep their turns.
 *
 * <p><b>Threads.</b> Everything runs on the event loop with the device lock held; sockets are
 * non-blocking and watched with poll (POLLIN while the guest can take data, POLLOUT while bytes wait
 * for a host peer), so neither the loop nor a vCPU ever waits for a host program.
 */
public final class VsockMuxer implements VirtioVsock.Backend {
    public static final int MAX_CONNECTIONS = 1024;
    static final int MAX_HANDSHAKES = 64;
    static final int MAX_QUEUED_RSTS = 2048;
    static final int BIG_CREDIT = 256 * 1024, SMALL_CREDIT = 32 * 1024, BIG_CREDIT_CONNECTIONS = 64;
    static final long HANDSHAKE_NANOS = 5_000_000_000L;
    static final int PACKETS_PER_TURN = 64;
    static final int ACCEPTS_PER_TURN = 16;
    static final long SWEEP_NANOS = 250_000_000L;
    /** Host ports of host-initiated connections: [2^30, 2^31), as Firecracker's. */
    static final int FIRST_LOCAL_PORT = 1 << 30;
    /** The longest suffix a guest port adds to PATH: "_4294967295". */
    public static final int PORT_SUFFIX_BYTES = 11;

    /** A host program that connected and has not sent its CONNECT line yet. */
    private static final class Handshake {
        final int fd;
        final byte[] line = new byte[ConnectCommand.MAX_LINE];
        int len;
        boolean done;
        EventLoop.Timer timer;

        Handshake(int fd) {
            this.fd = fd;
        }
    }

    private final Path path;
    private final long guestCid;
    private final UnixSocket listener;
    private final Object fileKey;
    private final Map<Long, VsockConnection> connections = new HashMap<>();
    private final Set<Integer> localPorts = new HashSet<>();
    private final Set<Handshake> handshakes = new HashSet<>();
    private final ArrayDeque<VsockConnection> rxQueue = new ArrayDeque<>();
    private final ArrayDeque<VsockPacket> rsts = new ArrayDeque<>();
    private final List<VsockConnection> doomed = new ArrayList<>();
    private final MemorySegment oneByte = Arena.ofAuto().allocate(1);
    private final byte[] headerBytes = new byte[VsockPacket.HEADER_BYTES];
    private VirtioVsock device;
    private Object lock = this;
    private EventLoop loop;
    private DescriptorChain spare;
    private boolean pumpScheduled, sweepScheduled, closed;
    private int nextLocalPort = FIRST_LOCAL_PORT;
    private boolean warnedLimit, warnedAccept;

    /** What {@link #counters} reports, in this order. */
    private final Counters counters = new Counters();
    private final AtomicLong open = counters.counter("connections"),
            hostConnections = counters.counter("host_connections"), guestConnections = counters.counter("guest_connections"),
            refusedByGuest = counters.counter("refused_by_guest"), refusedToGuest = counters.counter("refused_to_guest"),
            limitRefusals = counters.counter("limit_refusals"), handshakeErrors = counters.counter("handshake_errors"),
            malformed = counters.counter("malformed"), resetsSent = counters.counter("resets_sent"),
            rstsDropped = counters.counter("rsts_dropped"), rxPackets = counters.counter("rx_packets"),
            txPackets = counters.counter("tx_packets"), rxBytes = counters.counter("rx_bytes"),
            txBytes = counters.counter("tx_bytes"), shortRxBuffers = counters.counter("short_rx_buffers");

    private VsockMuxer(Path path, long guestCid, UnixSocket listener, Object fileKey) {
        this.path = path;
        this.guestCid = guestCid;
        this.listener = listener;
        this.fileKey = fileKey;
    }

    /** Why {@code path} cannot be the vsock socket (too long for a guest port's path), or null. */
    public static String checkPath(Path path) {
        int n = path.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8).length;
        if (n + PORT_SUFFIX_BYTES >= UnixSocket.SUN_PATH_BYTES) {
            return "the socket path " + path.toAbsolutePath() + " is " + n + " bytes long; with a guest port's _PORT suffix at most "
                    + (UnixSocket.SUN_PATH_BYTES - 1 - PORT_SUFFIX_BYTES) + " fit in a UNIX socket address";
        }
        return null;
    }

    /**
     * Listens on {@code path} for the guest with CID {@code guestCid}. A socket left there by a jvmm
     * that was killed is replaced; one someone listens on, or any other file, is not. The socket is
     * bound in a private directory beside {@code path}, made owner-only and only then linked to
     * {@code path}, so no one else can connect in between.
     */
    public static VsockMuxer open(Path path, long guestCid) throws IOException {
        Path p = path.toAbsolutePath();
        String bad = checkPath(p);
        if (bad != null) throw new IOException(bad);
        SocketFiles.removeStale(p);
        Path parent = p.getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new IOException("the directory of " + p + " does not exist");
        UnixSocket listener = SocketFiles.listen(p, at -> UnixSocket.listen(at, 128));
        try {
            listener.setNonBlocking(true);
            Object key = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            return new VsockMuxer(p, guestCid, listener, key);
        } catch (IOException | RuntimeException e) {
            listener.close();
            Files.deleteIfExists(p);
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    // ---- wiring ----

    @Override
    public void start(VirtioVsock device, EventLoop loop, DeviceFailure failure) {
        this.device = Objects.requireNonNull(device);
        this.lock = device;
        this.loop = loop;
        watchListener();
    }

    private void locked(Runnable r) {
        synchronized (lock) {
            if (!closed) r.run();
        }
    }

    private void watchListener() {
        loop.watch(listener.fd(), LibC.POLLIN, (fd, revents) -> locked(this::accept));
    }

    private static long key(int localPort, int peerPort) {
        return (Integer.toUnsignedLong(localPort) << 32) | Integer.toUnsignedLong(peerPort);
    }

    private static long key(VsockConnection c) {
        return key(c.localPort, c.peerPort);
    }

    private int creditForNew() {
        return connections.size() < BIG_CREDIT_CONNECTIONS ? BIG_CREDIT : SMALL_CREDIT;
    }

    private void warnLimit(String what) {
        limitRefusals.incrementAndGet();
        if (warnedLimit) return;
        warnedLimit = true;
        Log.warn(VsockMuxer.class, "vsock {}: {} connections are open, the limit; refusing {} (further refusals are only counted)",
                path, MAX_CONNECTIONS, what);
    }

    // ---- host programs connecting to PATH ----

    private void accept() {
        for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
            int fd = SocketIo.accept(listener.fd());
            if (fd == SocketIo.WOULD_BLOCK) return;
            if (fd < 0) {
                // EMFILE and friends: the connection stays queued; stop looking for a second
                if (!warnedAccept) {
                    warnedAccept = true;
                    Log.warn(VsockMuxer.class, "vsock {}: accept: {}; trying again every second", path, LibC.strerror(-fd));
                }
                loop.unwatch(listener.fd());
                loop.schedule(1_000_000_000L, () -> locked(this::watchListener));
                return;
            }
            if (connections.size() >= MAX_CONNECTIONS) {
                LibC.close(fd);
                warnLimit("a host program");
                continue;
            }
            if (handshakes.size() >= MAX_HANDSHAKES) {
                LibC.close(fd);
                limitRefusals.incrementAndGet();
                continue;
            }
            Handshake h = new Handshake(fd);
            handshakes.add(h);
            loop.watch(fd, LibC.POLLIN, (f, revents) -> locked(() -> readCommand(h)));
            h.timer = loop.schedule(HANDSHAKE_NANOS, () -> locked(() -> endHandshake(h, "no CONNECT line within "
                    + HANDSHAKE_NANOS / 1_000_000_000L + " s")));
        }
    }

    /** Reads the CONNECT line a byte at a time, so nothing after its newline is taken from the stream. */
    private void readCommand(Handshake h) {
        if (h.done) return;
        while (h.len < h.line.length) {
            long r = SocketIo.recv(h.fd, oneByte, 1);
            if (r == SocketIo.WOULD_BLOCK) return;
            if (r <= 0) {
                endHandshake(h, r == 0 ? "closed before its CONNECT line" : LibC.strerror((int) -r));
                return;
            }
            byte b = oneByte.get(JAVA_BYTE, 0);
            h.line[h.len++] = b;
            if (b == '\n') break;
        }
        ConnectCommand.Parsed cmd = ConnectCommand.parse(h.line, h.len);
        if (!cmd.ok()) {
            handshakeErrors.incrementAndGet();
            endHandshake(h, cmd.error());
            return;
        }
        if (!device.active()) {
            refusedByGuest.incrementAndGet();
            endHandshake(h, "the guest has no vsock driver yet");
            return;
        }
        if (connections.size() >= MAX_CONNECTIONS) {
            warnLimit("a host program");
            endHandshake(h, "too many connections");
            return;
        }
        finishHandshake(h);
        int local = allocateLocalPort();
        VsockConnection c = VsockConnection.hostInitiated(local, (int) cmd.port(), guestCid, creditForNew(), HostStream.ofSocket(h.fd));
        connections.put(key(c), c);
        localPorts.add(local);
        hostConnections.incrementAndGet();
        open.set(connections.size());
        sync(c);
    }

    private void finishHandshake(Handshake h) {
        h.done = true;
        handshakes.remove(h);
        if (h.timer != null) h.timer.cancel();
        loop.unwatch(h.fd);
    }

    private void endHandshake(Handshake h, String why) {
        if (h.done) return;
        finishHandshake(h);
        Log.debug(VsockMuxer.class, "vsock {}: closing a host program's connection: {}", path, why);
        LibC.close(h.fd);
    }

    private int allocateLocalPort() {
        while (true) {
            int p = nextLocalPort;
            nextLocalPort = p == Integer.MAX_VALUE ? FIRST_LOCAL_PORT : p + 1;
            if (!localPorts.contains(p)) return p; // at most MAX_CONNECTIONS are taken: this ends
        }
    }

    // ---- packets from the guest ----

    @Override
    public void fromGuest(VsockPacket p, DescriptorChain chain) {
        txPackets.incrementAndGet();
        VsockPacket.Check check = p.check(guestCid, chain.readableLength() - VsockPacket.HEADER_BYTES);
        long key = key(p.dstPort(), p.srcPort());
        VsockConnection c = connections.get(key);
        switch (check.verdict()) {
            case DROP -> {
                malformed.incrementAndGet();
                device.countError();
                Log.debug(VsockMuxer.class, "vsock: dropping {}: {}", p, check.reason());
                return;
            }
            case RESET -> {
                malformed.incrementAndGet();
                device.countError();
                Log.debug(VsockMuxer.class, "vsock: resetting {}: {}", p, check.reason());
                if (c != null && p.dstCid() == VsockPacket.HOST_CID) {
                    c.reset(check.reason());
                    sync(c);
                } else {
                    queueRst(p.reset());
                }
                return;
            }
            case OK -> { }
        }
        if (c != null && p.op() == VsockPacket.OP_REQUEST && c.guestGone()) {
            c.close(); // still writing what the guest sent before its RST: the guest has moved on
            sync(c);
            c = null;
        }
        if (c == null) {
            switch (p.op()) {
                case VsockPacket.OP_REQUEST -> guestRequest(p);
                case VsockPacket.OP_RST -> { }
                default -> queueRst(p.reset()); // no such connection
            }
            return;
        }
        if (p.op() == VsockPacket.OP_REQUEST) {
            c.reset("a REQUEST for a connection that is open");
            sync(c);
            return;
        }
        if (p.op() == VsockPacket.OP_RST && c.state() == VsockConnection.State.LOCAL_INIT) refusedByGuest.incrementAndGet();
        if (p.op() == VsockPacket.OP_RW) txBytes.addAndGet(p.payloadLength());
        c.fromGuest(p, chain.readableSegments(VsockPacket.HEADER_BYTES, p.payloadLength()));
        sync(c);
    }

    private void guestRequest(VsockPacket p) {
        if (connections.size() >= MAX_CONNECTIONS) {
            warnLimit("the guest's connection to port " + Integer.toUnsignedString(p.dstPort()));
            queueRst(p.reset());
            return;
        }
        Path target = Path.of(path + "_" + Integer.toUnsignedString(p.dstPort()));
        UnixSocket s;
        try {
            s = UnixSocket.connect(target, 0); // one non-blocking attempt
        } catch (UnixSocketException | RuntimeException e) {
            refusedToGuest.incrementAndGet();
            Log.debug(VsockMuxer.class, "vsock: the guest's connection to port {} is refused: {}", Integer.toUnsignedString(p.dstPort()),
                    e.getMessage());
            queueRst(p.reset());
            return;
        }
        VsockConnection c = VsockConnection.guestInitiated(p, creditForNew(), HostStream.ofSocket(s));
        connections.put(key(c), c);
        guestConnections.incrementAndGet();
        open.set(connections.size());
        sync(c);
    }

    private void queueRst(VsockPacket rst) {
        if (rsts.size() >= MAX_QUEUED_RSTS) {
            rstsDropped.incrementAndGet();
            return;
        }
        rsts.add(rst);
        schedulePump();
    }

    @Override
    public void receiveBuffersAdded() {
        if (!rsts.isEmpty() || !rxQueue.isEmpty()) pump();
    }

    // ---- connection bookkeeping ----

    /** After anything happened to {@code c}: its watch, its host socket, its place in the receive queue, its removal. */
    private void sync(VsockConnection c) {
        if (c.hostDone()) {
            releaseHost(c);
        } else {
            short want = c.interest();
            if (want != c.watched) {
                if (want == 0) loop.unwatch(c.host.fd());
                else loop.watch(c.host.fd(), want, (fd, revents) -> locked(() -> hostEvent(c, revents)));
                c.watched = want;
            }
        }
        if (c.state() == VsockConnection.State.CLOSED) {
            if (connections.get(key(c)) == c) {
                connections.remove(key(c));
                if (c.hostInitiated) localPorts.remove(c.localPort);
                open.set(connections.size());
            }
            releaseHost(c);
            return;
        }
        if (!c.inRxQueue && c.hasPendingRx()) {
            c.inRxQueue = true;
            rxQueue.add(c);
            schedulePump();
        }
        if (c.expiry() != 0) scheduleSweep();
    }

    private void releaseHost(VsockConnection c) {
        if (c.released) return;
        c.released = true;
        if (c.watched != 0) loop.unwatch(c.host.fd()); // before close: the number may be reused at once
        c.watched = 0;
        c.host.close();
    }

    private void hostEvent(VsockConnection c, short revents) {
        if (c.released || c.state() == VsockConnection.State.CLOSED) return;
        c.hostEvent(revents);
        sync(c);
        if (!rxQueue.isEmpty()) pump();
    }

    private void scheduleSweep() {
        if (sweepScheduled) return;
        sweepScheduled = true;
        loop.schedule(SWEEP_NANOS, () -> locked(this::sweep));
    }

    private void sweep() {
        sweepScheduled = false;
        long now = System.nanoTime();
        for (VsockConnection c : List.copyOf(connections.values())) {
            if (c.expiry() != 0 && now - c.expiry() >= 0) {
                Log.debug(VsockMuxer.class, "{}: time is up", c);
                c.expire();
                sync(c);
            } else if (c.expiry() != 0) {
                scheduleSweep();
            }
        }
    }

    // ---- packets to the guest ----

    private void schedulePump() {
        if (pumpScheduled || loop == null) return;
        pumpScheduled = true;
        loop.execute(() -> locked(this::pump));
    }

    /** Fills receive buffers: queued RSTs first, then the connections with something to say, in turn. */
    private void pump() {
        pumpScheduled = false;
        if (!device.active()) return;
        int delivered = 0;
        for (int i = 0; i < 2 * PACKETS_PER_TURN && delivered < PACKETS_PER_TURN; i++) {
            if (rsts.isEmpty() && rxQueue.isEmpty()) break;
            DescriptorChain chain = takeChain();
            if (chain == null) break; // the guest has no buffer: receiveBuffersAdded resumes
            if (!rsts.isEmpty()) {
                deliver(chain, rsts.poll());
                delivered++;
                continue;
            }
            VsockConnection c = rxQueue.poll();
            c.inRxQueue = false;
            long room = Math.min(chain.writableLength() - VsockPacket.HEADER_BYTES, VsockPacket.MAX_PAYLOAD);
            VsockPacket p = c.nextPacket(chain.writableSegments(VsockPacket.HEADER_BYTES, room));
            if (p == null) {
                spare = chain; // nothing after all (the socket was empty): the buffer serves the next packet
            } else {
                deliver(chain, p);
                delivered++;
            }
            sync(c); // back at the end of the queue if it has more
        }
        if (delivered > 0) device.receiveFlush();
        if (delivered > 0 && (!rsts.isEmpty() || !rxQueue.isEmpty())) schedulePump();
    }

    private void deliver(DescriptorChain chain, VsockPacket p) {
        p.encode(headerBytes, 0);
        chain.write(0, headerBytes, 0, headerBytes.length);
        device.receiveDone(chain, VsockPacket.HEADER_BYTES + p.payloadLength(), p.payloadLength());
        rxPackets.incrementAndGet();
        rxBytes.addAndGet(p.payloadLength());
        if (p.op() == VsockPacket.OP_RST) resetsSent.incrementAndGet();
    }

    /** The spare buffer or the guest's next one with room for a header (smaller ones go back empty, counted). */
    private DescriptorChain takeChain() {
        if (spare != null) {
            DescriptorChain c = spare;
            spare = null;
            return c;
        }
        for (int i = 0; i < VirtioVsock.QUEUE_SIZE; i++) {
            DescriptorChain c = device.nextReceive();
            if (c == null) return null;
            if (c.writableLength() >= VsockPacket.HEADER_BYTES) return c;
            shortRxBuffers.incrementAndGet();
            device.countError();
            device.receiveDone(c, 0, 0);
        }
        return null;
    }

    // ---- reset and close ----

    @Override
    public void deviceReset() {
        synchronized (lock) {
            // the driver is gone: so are its connections (host sockets are closed on the loop)
            doomed.addAll(connections.values());
            for (VsockConnection c : connections.values()) c.close();
            connections.clear();
            localPorts.clear();
            for (VsockConnection c : rxQueue) c.inRxQueue = false;
            rxQueue.clear();
            rsts.clear();
            spare = null;
            open.set(0);
            if (loop != null && !doomed.isEmpty()) loop.execute(() -> locked(this::reapDoomed));
        }
    }

    private void reapDoomed() {
        for (VsockConnection c : doomed) releaseHost(c);
        doomed.clear();
    }

    @Override
    public void close() {
        synchronized (lock) {
            if (closed) return;
            closed = true;
            for (VsockConnection c : connections.values()) c.host.close();
            for (VsockConnection c : doomed) c.host.close();
            for (Handshake h : handshakes) LibC.close(h.fd);
            connections.clear();
            handshakes.clear();
            doomed.clear();
            listener.close();
            try {
                Object now = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
                if (Objects.equals(now, fileKey)) Files.deleteIfExists(path); // ours, not one put there since
            } catch (IOException e) {
                // already gone
            }
        }
    }

    /** Open connections (for tests). */
    int connectionCount() {
        synchronized (lock) {
            return connections.size();
        }
    }

    @Override
    public Map<String, Long> counters() {
        return counters.snapshot();
    }
}
