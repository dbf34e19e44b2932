package dev.jvmm.host;

import dev.jvmm.device.DeviceFailure;
import dev.jvmm.device.virtio.VirtioNet;
import dev.jvmm.event.EventLoop;
import dev.jvmm.log.Log;
import dev.jvmm.sys.Counters;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SocketIo;
import dev.jvmm.sys.UnixSocket;
import dev.jvmm.sys.UnixSocketException;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * User-mode networking for a {@link VirtioNet}: a {@code passt} process (the user-mode TCP/IP stack of
 * Podman, libvirt and QEMU's {@code -netdev stream}) that jvmm starts through {@link HelperProcess}
 * (private directory, stopped with jvmm, {@code --pdeathsig}) and talks to over a UNIX socket in
 * that directory, with {@link FrameStream}'s framing: a 32-bit big-endian length, then the Ethernet
 * frame. VirtioNet's packets carry the 12-byte virtio-net header, which is stripped on the way out and
 * put back (zeroed) on the way in. passt gives the guest DHCP, DNS, NAT to the host's network, and
 * the gateway address reaches the host's own loopback; {@code -t}/{@code -u} forward host ports.
 *
 * <p><b>Back-pressure, both ways.</b> Guest to passt: a packet goes into the bounded send buffer and
 * is written at once if the socket takes it; while the buffer lacks room for a largest frame,
 * {@link #sendReady} says no, so VirtioNet leaves the guest's packets in its transmit queue, and a
 * POLLOUT watch resumes it ({@link VirtioNet#transmitReady}): nothing is dropped for a full socket.
 * passt to guest: passt's socket is always read, and frames go to the guest while it has receive
 * buffers; those that find none wait in a queue here (at most {@link #RX_QUEUE_BYTES}) until it adds
 * some. passt must never find the socket full: Debian 12's passt then drops the frames its write
 * did not take, and a TCP FIN it drops is never sent again (its retransmission resends data, not the
 * FIN), so the guest's connection hangs until passt resets it. When the queue is full, a TCP segment
 * carrying data is dropped (TCP sends it again); every other frame (FIN, SYN, RST, a bare ACK, ARP,
 * DHCP, ...) still gets {@link #RX_CONTROL_BYTES} more room. Drops are counted ({@code passt_rx_drops}).
 *
 * <p><b>When passt goes away</b> (its socket closes or fails, or it sends a length no frame has), the
 * run ends with one line saying how passt ended and what it last printed (status 6), or, for an
 * {@code optional} link, the guest sees the link go down (STATUS, config interrupt), its packets are
 * dropped and counted, and the run goes on.
 *
 * <p>Threads: {@link #send} and {@link #sendReady} run where VirtioNet serves its transmit queue
 * (normally the event loop) with the device lock held, and lock this object for the send buffer;
 * reading, watching and the end happen on the event loop.
 */
public final class PasstLink implements VirtioNet.Backend {
    /** What jvmm asks passt for: a TCP or UDP port of the host forwarded to a guest port. */
    public record Forward(String protocol, String address, int hostPort, int guestPort) {
        public Forward {
            if (!protocol.equals("tcp") && !protocol.equals("udp")) throw new IllegalArgumentException("protocol " + protocol);
            if (hostPort < 1 || hostPort > 65535 || guestPort < 1 || guestPort > 65535) throw new IllegalArgumentException("port out of range");
        }

        /** passt's option for it: {@code -t [ADDR/]HOSTPORT:GUESTPORT}. */
        List<String> passtOptions() {
            return List.of(protocol.equals("tcp") ? "-t" : "-u", (address == null ? "" : address + "/") + hostPort + ":" + guestPort);
        }
    }

    /** How long passt may take to create its socket. */
    public static final Duration START_TIMEOUT = Duration.ofSeconds(10);
    /** The MTU passt announces by DHCP: what VirtioNet's receive buffers take without MRG_RXBUF. */
    static final int MTU = 1500;
    /** The uid:gid passt runs as when jvmm is root (passt will not stay root; numeric, so no passwd entry is needed). */
    static final String ROOT_RUNAS = "65534:65534";
    static final int FRAMES_PER_TURN = 64;
    /**
     * The most frames from passt (in bytes, with their virtio-net headers) waiting for the guest's
     * receive buffers: more than a Linux guest's largest TCP receive window (about 3 MiB by default),
     * so one connection never loses data to it.
     */
    static final int RX_QUEUE_BYTES = 4 << 20;
    /** Room beyond {@link #RX_QUEUE_BYTES} for the frames that are never dropped for a data segment's sake. */
    static final int RX_CONTROL_BYTES = 256 << 10;
    /**
     * What passt prints that says nothing about why it ended: where there is no syslog it says so
     * before every line, and at start-up (even with --quiet) it tells how to start QEMU on its socket.
     */
    static final Pattern NOISE = Pattern.compile("^Failed to send \\d+ bytes to syslog|^UNIX domain socket bound at "
            + "|^You can now start qemu|^\\s*kvm \\.\\.\\. |^or qrap, for earlier|^\\s*\\./qrap |^Don't run as root");

    private final HelperProcess helper;
    private final UnixSocket socket;
    private final boolean optional;
    private final String what;
    private final FrameStream frames = new FrameStream();
    private final byte[] rxPacket = new byte[VirtioNet.MAX_PACKET];
    private final AtomicBoolean retryScheduled = new AtomicBoolean();
    private final Counters counters = new Counters();
    private final AtomicLong txFrames = counters.counter("passt_tx_frames"), rxFrames = counters.counter("passt_rx_frames"),
            txStalls = counters.counter("passt_tx_stalls");
    { counters.add("passt_runts", frames::runts); } // in the counters' order, between the stalls and the drops
    private final AtomicLong droppedAfterEnd = counters.counter("passt_dropped_after_end");
    private final AtomicLong rxDrops = counters.counter("passt_rx_drops");
    private final AtomicLong rxDuplicates = counters.counter("passt_rx_duplicates");
    private VirtioNet net;
    private EventLoop loop;
    private Thread loopThread;
    private DeviceFailure failure;
    /** A frame (virtio-net header space, then the frame) waiting for a receive buffer; its {@link #segmentKey}. */
    private record Waiting(byte[] packet, long key) {
    }

    /** Frames waiting for receive buffers, oldest first. */
    private final ArrayDeque<Waiting> rxQueue = new ArrayDeque<>();
    private long rxQueued;          // their bytes
    /** The keys of the TCP data segments among them. */
    private final HashSet<Long> rxQueuedSegments = new HashSet<>();
    private volatile boolean rxWaiting; // the guest had no buffer for the queue's head
    private short watched;
    private boolean watching;
    private volatile boolean ended;
    private boolean txStalled;
    private boolean closed;
    private volatile boolean watchScheduled;

    PasstLink(HelperProcess helper, UnixSocket socket, boolean optional, String what) {
        this.helper = helper;
        this.socket = socket;
        this.optional = optional;
        this.what = what;
    }

    /**
     * Starts passt ({@code program}, or {@code passt} on PATH) with {@code forwards}, waits for its
     * socket and connects to it. When jvmm runs as root, passt runs as {@value #ROOT_RUNAS} (it drops
     * root itself and binds its socket after that), in a subdirectory only that user can enter.
     */
    public static PasstLink launch(Path program, List<Forward> forwards, boolean optional) throws HelperProcess.HelperException {
        String passt = program != null ? program.toString() : onPath("passt");
        if (passt == null) {
            throw new HelperProcess.HelperException("passt is not installed (it is on no directory of PATH); install the package passt"
                    + " (Debian, Ubuntu: apt-get install passt; Fedora: dnf install passt) or give --passt PATH");
        }
        if (program != null && !(Files.isRegularFile(program) && Files.isExecutable(program))) {
            throw new HelperProcess.HelperException("--passt " + program + " is not an executable file");
        }
        boolean root = runningAsRoot();
        Path[] socketPath = new Path[1];
        HelperProcess h;
        try {
            h = HelperProcess.start("passt", dir -> {
                Path sockDir = dir;
                if (root) sockDir = passtOwnedDirectory(dir);
                socketPath[0] = sockDir.resolve("passt.sock");
                List<String> cmd = new ArrayList<>(List.of(passt, "--foreground", "--stderr", "--quiet", "--one-off",
                        "--mtu", Integer.toString(MTU), "--socket", socketPath[0].toString()));
                if (root) cmd.addAll(List.of("--runas", ROOT_RUNAS));
                for (Forward f : forwards) cmd.addAll(f.passtOptions());
                return cmd;
            });
        } catch (UncheckedIOException e) {
            throw new HelperProcess.HelperException("cannot prepare passt's directory: " + e.getCause().getMessage(), e);
        }
        h.ignoreOutput(NOISE);
        try {
            h.awaitSocket(socketPath[0], START_TIMEOUT);
            UnixSocket s = UnixSocket.connect(socketPath[0], 2000);
            return new PasstLink(h, s, optional, "passt (pid " + h.pid() + ")");
        } catch (HelperProcess.HelperException e) {
            h.close();
            throw e;
        } catch (UnixSocketException e) {
            h.close();
            throw new HelperProcess.HelperException("cannot connect to passt: " + e.getMessage(), e);
        }
    }

    /** A directory in the private one that the user passt switches to can write (the private one stays traversable only). */
    private static Path passtOwnedDirectory(Path dir) {
        try {
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
            Path d = Files.createDirectory(dir.resolve("net"), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            String[] ids = ROOT_RUNAS.split(":");
            Files.setAttribute(d, "unix:uid", Integer.parseInt(ids[0]), LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(d, "unix:gid", Integer.parseInt(ids[1]), LinkOption.NOFOLLOW_LINKS);
            return d;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static boolean runningAsRoot() {
        try {
            return ((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid")) == 0;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return "root".equals(System.getProperty("user.name"));
        }
    }

    private static String onPath(String program) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (d.isEmpty()) continue;
            Path p = Path.of(d, program);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) return p.toString();
        }
        return null;
    }

    /** The passt process (null for a link made on a plain socket, in tests). */
    public HelperProcess helper() {
        return helper;
    }

    // ---- wiring ----

    @Override
    public void start(VirtioNet net, EventLoop loop, DeviceFailure failure) {
        this.net = net;
        this.loop = loop;
        this.loopThread = Thread.currentThread();
        this.failure = failure;
        net.onReceiveBuffers(() -> {
            if (rxWaiting && retryScheduled.compareAndSet(false, true)) loop.execute(this::resumeReceive);
        });
        updateWatch();
    }

    /** Watches passt's socket for input, always, and for output while bytes wait. Loop thread. */
    private void updateWatch() {
        watchScheduled = false;
        if (closed || ended) return;
        short want = LibC.POLLIN;
        synchronized (this) {
            if (frames.pendingOut() > 0) want |= LibC.POLLOUT;
        }
        if (watching && want == watched) return;
        loop.watch(socket.fd(), want, (fd, revents) -> ready(revents));
        watched = want;
        watching = true;
    }

    private void watchLater() {
        if (loop == null) return;
        if (Thread.currentThread() == loopThread) {
            updateWatch();
        } else if (!watchScheduled) {
            watchScheduled = true;
            loop.execute(this::updateWatch);
        }
    }

    // ---- guest to passt ----

    @Override
    public synchronized boolean sendReady() {
        boolean ready = ended || closed || frames.canQueue(VirtioNet.MAX_FRAME);
        if (!ready && !txStalled) {
            txStalled = true; // the transmit queue waits for POLLOUT
            txStalls.incrementAndGet();
        }
        return ready;
    }

    @Override
    public synchronized int send(byte[] packet, int len) {
        if (ended || closed) {
            droppedAfterEnd.incrementAndGet();
            return -1;
        }
        int frame = len - VirtioNet.HDR_BYTES; // passt takes bare Ethernet frames
        if (frame <= 0 || !frames.canQueue(frame)) return -1; // sendReady said yes: cannot happen
        frames.queue(packet, VirtioNet.HDR_BYTES, frame);
        txFrames.incrementAndGet();
        long n = frames.flush(socket.fd());
        if (n < 0) {
            endLater("writing to passt's socket: " + LibC.strerror((int) -n));
        } else if (frames.pendingOut() > 0) {
            watchLater();
        }
        return len;
    }

    private void writable() {
        boolean resume;
        long n;
        synchronized (this) {
            n = frames.flush(socket.fd());
            resume = n >= 0 && txStalled && frames.canQueue(VirtioNet.MAX_FRAME);
            if (resume) txStalled = false;
        }
        // outside our lock: VirtioNet's is taken first, as in send
        if (n < 0) end("writing to passt's socket: " + LibC.strerror((int) -n));
        else if (resume) net.transmitReady();
    }

    // ---- passt to guest ----

    private void ready(short revents) {
        if (closed || ended) return;
        if ((revents & LibC.POLLOUT) != 0) writable();
        if (!ended && (revents & (LibC.POLLIN | LibC.POLLHUP | LibC.POLLERR)) != 0) receive();
        updateWatch();
    }

    /**
     * Reads frames until the socket is empty or this turn's share is used, each to the guest or, while
     * it has no receive buffer (or older frames wait), to the queue.
     */
    private void receive() {
        for (int i = 0; i < FRAMES_PER_TURN && !ended; i++) {
            int n;
            try {
                n = frames.nextFrame(rxPacket, VirtioNet.HDR_BYTES);
            } catch (FrameStream.FramingException e) {
                end("passt sent " + e.getMessage());
                return;
            }
            if (n < 0) {
                long r = frames.fill(socket.fd());
                if (r == SocketIo.WOULD_BLOCK) return;
                if (r == 0) {
                    end("passt closed its socket");
                    return;
                }
                if (r < 0) {
                    end("reading passt's socket: " + LibC.strerror((int) -r));
                    return;
                }
                i--; // a read is not a frame
                continue;
            }
            take(VirtioNet.HDR_BYTES + n);
        }
        // this turn's share is used; frames already read would not wake poll again
        if (!ended && frames.pendingIn()) loop.execute(this::receiveAgain);
    }

    /** The packet in {@code rxPacket[0, len)}: delivered now if nothing waits and the guest has a buffer, else queued or dropped. */
    private void take(int len) {
        if (rxQueue.isEmpty()) {
            // set first: a notification of new buffers that races with a NO_BUFFER answer (one from a
            // vCPU thread's QueueNotify write) then schedules a retry rather than being missed
            rxWaiting = true;
            int result = net.deliver(rxPacket, len); // the header is rewritten by deliver
            if (result != VirtioNet.NO_BUFFER) {
                rxWaiting = false;
                if (result == VirtioNet.DELIVERED) rxFrames.incrementAndGet();
                return;
            }
        }
        long key = segmentKey(rxPacket, VirtioNet.HDR_BYTES, len - VirtioNet.HDR_BYTES);
        if (key != NOT_DATA && rxQueuedSegments.contains(key)) {
            // passt sent it again (its ACK timer ran out while the first copy waited here): the guest
            // gets the copy already queued; a second one would only take the room fresh data needs
            rxDuplicates.incrementAndGet();
            net.countRxDrop();
            return;
        }
        long room = RX_QUEUE_BYTES + (key != NOT_DATA ? 0 : RX_CONTROL_BYTES);
        if (rxQueued + len > room) {
            rxDrops.incrementAndGet();
            net.countRxDrop();
            return;
        }
        rxQueue.add(new Waiting(Arrays.copyOf(rxPacket, len), key));
        rxQueued += len;
        if (key != NOT_DATA) rxQueuedSegments.add(key);
    }

    /** Delivers waiting frames, oldest first, until none waits or the guest has no buffer. Loop thread. */
    private void deliverQueued() {
        while (!rxQueue.isEmpty() && !ended) {
            Waiting w = rxQueue.peek();
            int result = net.deliver(w.packet(), w.packet().length);
            if (result == VirtioNet.NO_BUFFER) return;
            rxQueue.poll();
            rxQueued -= w.packet().length;
            if (w.key() != NOT_DATA) rxQueuedSegments.remove(w.key());
            if (result == VirtioNet.DELIVERED) rxFrames.incrementAndGet();
        }
        rxWaiting = false;
    }

    /**
     * Whether the Ethernet frame {@code f[off, off + len)} is a TCP segment over IPv4 or IPv6 that
     * carries data and no SYN, FIN or RST: one whose loss TCP repairs by sending it again (passt does,
     * from its socket's data). Anything this does not recognise is not.
     */
    static boolean droppable(byte[] f, int off, int len) {
        return segmentKey(f, off, len) != NOT_DATA;
    }

    /** {@link #segmentKey} of a frame that is not a {@link #droppable} TCP data segment. */
    static final long NOT_DATA = Long.MIN_VALUE;

    /**
     * For a {@link #droppable} TCP data segment, a 64-bit hash of what makes a copy of it the same
     * segment (addresses, ports, sequence number, data length); {@link #NOT_DATA} for any other frame.
     */
    static long segmentKey(byte[] f, int off, int len) {
        if (len < 14) return NOT_DATA;
        int ip = off + 14, ipLen = len - 14, type = u16(f, off + 12);
        int tcp, segment, addrs, addrBytes;
        if (type == 0x0800) {
            if (ipLen < 20 || (f[ip] & 0xf0) != 0x40 || f[ip + 9] != 6) return NOT_DATA;
            int ihl = (f[ip] & 0xf) * 4, total = u16(f, ip + 2);
            if (ihl < 20 || total > ipLen || total < ihl + 20) return NOT_DATA;
            tcp = ip + ihl;
            segment = total - ihl;
            addrs = ip + 12;
            addrBytes = 8;
        } else if (type == 0x86dd) {
            if (ipLen < 40 || f[ip + 6] != 6) return NOT_DATA; // passt sends no extension headers
            segment = u16(f, ip + 4);
            if (segment > ipLen - 40 || segment < 20) return NOT_DATA;
            tcp = ip + 40;
            addrs = ip + 8;
            addrBytes = 32;
        } else {
            return NOT_DATA;
        }
        int doff = (f[tcp + 12] >> 4 & 0xf) * 4, flags = f[tcp + 13];
        if (doff < 20 || segment <= doff || (flags & (TCP_SYN | TCP_FIN | TCP_RST)) != 0) return NOT_DATA;
        long h = 0xcbf29ce484222325L; // FNV-1a over the addresses, the ports and the sequence number
        for (int i = 0; i < addrBytes; i++) h = (h ^ (f[addrs + i] & 0xff)) * 0x100000001b3L;
        for (int i = 0; i < 8; i++) h = (h ^ (f[tcp + i] & 0xff)) * 0x100000001b3L;
        h = (h ^ (segment - doff)) * 0x100000001b3L;
        return h == NOT_DATA ? h + 1 : h;
    }

    private static final int TCP_FIN = 1, TCP_SYN = 2, TCP_RST = 4;

    private static int u16(byte[] b, int at) {
        return (b[at] & 0xff) << 8 | (b[at + 1] & 0xff);
    }

    private void receiveAgain() {
        if (closed || ended) return;
        receive();
        updateWatch();
    }

    private void resumeReceive() {
        retryScheduled.set(false);
        if (closed || ended) return;
        deliverQueued();
    }

    // ---- the end ----

    private void endLater(String why) {
        if (loop == null) return;
        loop.execute(() -> end(why));
    }

    /** passt is gone: the run ends with one line (status 6), or an optional link goes down. Loop thread. */
    private void end(String why) {
        if (ended || closed) return;
        ended = true;
        if (watching) loop.unwatch(socket.fd());
        watching = false;
        if (optional) net.setLinkUp(false);
        net.transmitReady(); // let a waiting transmit queue drain (into the void)
        // describing how passt ended may wait a moment for it to exit: not on the loop
        Thread.ofVirtual().name("passt end").start(() -> {
            String how = helper == null ? what : helper.describeEnd(Duration.ofSeconds(1));
            String line = what + ": " + why + "; " + how;
            if (optional) Log.warn(PasstLink.class, "{}; the link is down (optional), the run goes on", line);
            else failure.failed(line);
        });
    }

    /** Whether passt went away. */
    public boolean ended() {
        return ended;
    }

    @Override
    public Map<String, Long> counters() {
        return counters.snapshot();
    }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        socket.close(); // passt --one-off exits when its client goes
        if (helper != null) helper.close();
        synchronized (this) {
            frames.close();
        }
    }
}
