package dev.jvmm.host.vhost;

import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.UnixSocket;
import dev.jvmm.sys.UnixSocketException;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static dev.jvmm.host.vhost.VhostUserProtocol.FLAG_NEED_REPLY;
import static dev.jvmm.host.vhost.VhostUserProtocol.PROTOCOL_F_CONFIG;
import static dev.jvmm.host.vhost.VhostUserProtocol.PROTOCOL_F_MQ;
import static dev.jvmm.host.vhost.VhostUserProtocol.PROTOCOL_F_REPLY_ACK;
import static dev.jvmm.host.vhost.VhostUserProtocol.VERSION;
import static dev.jvmm.host.vhost.VhostUserProtocol.VHOST_USER_F_PROTOCOL_FEATURES;
import static dev.jvmm.host.vhost.VhostUserProtocol.VRING_NOFD;
import static dev.jvmm.host.vhost.VhostUserProtocol.has;

/**
 * The front-end side of one vhost-user connection: one method per request, plus the few steps a device
 * model needs ({@link #negotiate}, {@link #setMemTable(GuestMemory)}, {@link #startQueue},
 * {@link #stopQueue}). It knows nothing about any particular device.
 *
 * <p>Every request, and its reply, must complete within the connection's timeout: a back end that stops
 * answering ends in a {@link VhostUserException} of kind TIMEOUT, one that goes away in kind CLOSED.
 * Every reply is checked (request code, version, REPLY flag, exact payload size, no descriptors) before
 * its payload is read, so a peer's length is never used to size anything. After a failure that may have
 * left the byte stream out of step (anything but a refusal) the socket is closed and every later request
 * fails at once, naming the first failure.
 *
 * <p>Methods are synchronized: requests from several threads are sent one after the other.
 */
public final class VhostUserFrontend implements AutoCloseable {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(5);

    private final UnixSocket socket;
    private final String name;
    private final Duration timeout;
    private long offeredFeatures = -1;
    private long protocolFeatures;
    private boolean protocolFeaturesNegotiated;
    private String broken;
    private boolean closed;
    /** Requests sent, for statistics: read without the lock (a request in progress holds it). */
    private final AtomicLong requestsSent = new AtomicLong();

    private VhostUserFrontend(UnixSocket socket, String name, Duration timeout) {
        if (timeout.isNegative() || timeout.isZero()) throw new IllegalArgumentException("timeout " + timeout);
        this.socket = socket;
        this.name = name;
        this.timeout = timeout;
    }

    /**
     * Connects to the back end listening at {@code path}, waiting up to {@code timeout} for the socket to
     * exist and accept.
     */
    public static VhostUserFrontend connect(Path path, Duration timeout) throws VhostUserException {
        try {
            return new VhostUserFrontend(UnixSocket.connect(path, timeout.toMillis()), path.toString(), timeout);
        } catch (UnixSocketException e) {
            throw new VhostUserException(e.reason() == UnixSocketException.Reason.TIMED_OUT ? VhostUserException.Kind.TIMEOUT
                    : VhostUserException.Kind.IO, "vhost-user back end " + path + ": " + e.getMessage(), e);
        }
    }

    /** A front end over an already connected socket (tests; a back end handed over as a descriptor). */
    public static VhostUserFrontend over(UnixSocket connected, String name, Duration timeout) {
        connected.setNonBlocking(true);
        return new VhostUserFrontend(connected, name, timeout);
    }

    public String name() {
        return name;
    }

    /** How many requests were sent (any thread, never blocks). */
    public long requestsSent() {
        return requestsSent.get();
    }

    /** Why the connection is unusable (the first failure that broke it, or "closed"), or null while it works. */
    public synchronized String broken() {
        return closed ? "closed" : broken;
    }

    /**
     * A descriptor for the connection's socket that the caller owns and must close: poll it (events 0)
     * to learn of the back end hanging up, without reading anything the front end expects.
     */
    public synchronized int duplicateSocket() {
        return socket.duplicate();
    }

    /** The protocol features both sides agreed on (0 before {@link #setProtocolFeatures}). */
    public synchronized long protocolFeatures() {
        return protocolFeatures;
    }

    // ---- the device model's steps ----

    /**
     * Opens the session: GET_FEATURES, SET_OWNER and, when the back end offers them, GET_PROTOCOL_FEATURES
     * and SET_PROTOCOL_FEATURES with what both sides support.
     * @return the back end's features, VHOST_USER_F_PROTOCOL_FEATURES included if offered
     */
    public synchronized long handshake() throws VhostUserException {
        long offered = getFeatures();
        setOwner();
        if (has(offered, VHOST_USER_F_PROTOCOL_FEATURES)) {
            setProtocolFeatures(getProtocolFeatures() & VhostUserProtocol.SUPPORTED_PROTOCOL_FEATURES);
        }
        return offered;
    }

    /**
     * {@link #handshake}, then SET_FEATURES with the wanted features the back end offers (and
     * VHOST_USER_F_PROTOCOL_FEATURES when offered, which makes rings start disabled until
     * {@link #setVringEnable}).
     * @return the device features agreed on, without VHOST_USER_F_PROTOCOL_FEATURES (a transport bit the
     *         guest never sees)
     */
    public synchronized long negotiate(long wantedFeatures) throws VhostUserException {
        long offered = handshake();
        long transport = 1L << VHOST_USER_F_PROTOCOL_FEATURES;
        long agreed = offered & wantedFeatures & ~transport;
        setFeatures(agreed | (offered & transport));
        return agreed;
    }

    /**
     * The memory table for {@code memory}: every region must have been allocated shared
     * ({@link GuestMemory#allocateShared}), since the back end maps it from its descriptor.
     */
    public static List<MemRegion> memTable(GuestMemory memory) {
        List<MemRegion> out = new ArrayList<>();
        for (GuestMemory.Region r : memory.regions()) {
            if (r.fd() < 0) {
                throw new IllegalArgumentException(String.format("guest RAM at 0x%x is private anonymous memory; a vhost-user back end"
                        + " can only use RAM allocated with GuestMemory.allocateShared", r.gpa()));
            }
            out.add(new MemRegion(r.gpa(), r.size(), r.host().address(), r.fdOffset(), r.fd()));
        }
        return out;
    }

    public synchronized void setMemTable(GuestMemory memory) throws VhostUserException {
        setMemTable(memTable(memory));
    }

    /** {@link #startQueue(int, int, int, long, long, long, int, int, int)} from avail index 0: a fresh queue. */
    public synchronized void startQueue(int index, int size, long descHva, long availHva, long usedHva,
                                        int kickFd, int callFd, int errFd) throws VhostUserException {
        startQueue(index, size, 0, descHva, availHva, usedHva, kickFd, callFd, errFd);
    }

    /**
     * Hands queue {@code index} to the back end: SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_ERR
     * (only with {@code errFd >= 0}), SET_VRING_CALL, SET_VRING_KICK (which starts the ring; the call
     * descriptor is set before it so the first completion is never lost) and, when protocol features were
     * negotiated, SET_VRING_ENABLE. The ring addresses are this process's virtual addresses of the rings
     * ({@code memory.slice(gpa, len).address()}).
     * @param kickFd eventfd the guest's notifications arrive on (-1: the back end polls)
     * @param callFd eventfd the back end signals used buffers on (-1: none)
     */
    public synchronized void startQueue(int index, int size, int base, long descHva, long availHva, long usedHva,
                                        int kickFd, int callFd, int errFd) throws VhostUserException {
        setVringNum(index, size);
        setVringBase(index, base);
        setVringAddr(new VringAddress(index, 0, descHva, usedHva, availHva, 0));
        if (errFd >= 0) setVringErr(index, errFd);
        setVringCall(index, callFd);
        setVringKick(index, kickFd);
        if (protocolFeaturesNegotiated) setVringEnable(index, true);
    }

    /**
     * Stops queue {@code index} (SET_VRING_ENABLE 0 when protocol features were negotiated, then
     * GET_VRING_BASE, which stops the ring in the back end).
     * @return the next available-ring index the back end would have processed, to resume from
     */
    public synchronized int stopQueue(int index) throws VhostUserException {
        if (protocolFeaturesNegotiated) setVringEnable(index, false);
        return getVringBase(index);
    }

    // ---- one method per request ----

    public synchronized long getFeatures() throws VhostUserException {
        long f = VhostUserMessage.u64(transact(VhostUserRequest.GET_FEATURES, new byte[0], new int[0], VhostUserMessage.U64_BYTES));
        offeredFeatures = f;
        return f;
    }

    public synchronized void setFeatures(long features) throws VhostUserException {
        if (offeredFeatures != -1 && (features & ~offeredFeatures) != 0) {
            throw new IllegalArgumentException(String.format("features 0x%x were not offered by %s", features & ~offeredFeatures, name));
        }
        transact(VhostUserRequest.SET_FEATURES, VhostUserMessage.u64(features), new int[0], -1);
        protocolFeaturesNegotiated = has(features, VHOST_USER_F_PROTOCOL_FEATURES);
    }

    public synchronized long getProtocolFeatures() throws VhostUserException {
        requireProtocolFeaturesOffered(VhostUserRequest.GET_PROTOCOL_FEATURES);
        return VhostUserMessage.u64(transact(VhostUserRequest.GET_PROTOCOL_FEATURES, new byte[0], new int[0], VhostUserMessage.U64_BYTES));
    }

    /** Takes effect from the next request: with REPLY_ACK, every request without a reply is acknowledged. */
    public synchronized void setProtocolFeatures(long features) throws VhostUserException {
        requireProtocolFeaturesOffered(VhostUserRequest.SET_PROTOCOL_FEATURES);
        transact(VhostUserRequest.SET_PROTOCOL_FEATURES, VhostUserMessage.u64(features), new int[0], -1);
        protocolFeatures = features;
    }

    public synchronized void setOwner() throws VhostUserException {
        transact(VhostUserRequest.SET_OWNER, new byte[0], new int[0], -1);
    }

    public synchronized void resetOwner() throws VhostUserException {
        transact(VhostUserRequest.RESET_OWNER, new byte[0], new int[0], -1);
    }

    /** SET_MEM_TABLE; each region's descriptor goes with the message, in the regions' order. */
    public synchronized void setMemTable(List<MemRegion> regions) throws VhostUserException {
        int[] fds = regions.stream().mapToInt(MemRegion::fd).toArray();
        transact(VhostUserRequest.SET_MEM_TABLE, VhostUserMessage.memTable(regions), fds, -1);
    }

    public synchronized void setVringNum(int index, int size) throws VhostUserException {
        checkIndex(index);
        // the largest queue virtio allows (split rings also need a power of two, which is the device model's rule)
        if (size < 1 || size > 32768) throw new IllegalArgumentException("queue size " + size + " is not in 1..32768");
        transact(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(index, size), new int[0], -1);
    }

    public synchronized void setVringAddr(VringAddress address) throws VhostUserException {
        checkIndex(address.index());
        transact(VhostUserRequest.SET_VRING_ADDR, VhostUserMessage.vringAddress(address), new int[0], -1);
    }

    public synchronized void setVringBase(int index, int base) throws VhostUserException {
        checkIndex(index);
        if (base < 0 || base > 0xffff) throw new IllegalArgumentException("ring base " + base + " is not a 16-bit index");
        transact(VhostUserRequest.SET_VRING_BASE, VhostUserMessage.vringState(index, base), new int[0], -1);
    }

    /** GET_VRING_BASE: stops the ring and returns its next available index. */
    public synchronized int getVringBase(int index) throws VhostUserException {
        checkIndex(index);
        VhostUserMessage.VringState s = VhostUserMessage.vringState(transact(VhostUserRequest.GET_VRING_BASE,
                VhostUserMessage.vringState(index, 0), new int[0], VhostUserMessage.VRING_STATE_BYTES));
        if (s.index() != index || s.num() < 0 || s.num() > 0xffff) {
            throw fail(VhostUserException.Kind.PROTOCOL, "answered GET_VRING_BASE for queue " + index + " with queue "
                    + Integer.toUnsignedString(s.index()) + ", base " + Integer.toUnsignedString(s.num()));
        }
        return s.num();
    }

    public synchronized void setVringKick(int index, int fd) throws VhostUserException {
        vringFile(VhostUserRequest.SET_VRING_KICK, index, fd);
    }

    public synchronized void setVringCall(int index, int fd) throws VhostUserException {
        vringFile(VhostUserRequest.SET_VRING_CALL, index, fd);
    }

    public synchronized void setVringErr(int index, int fd) throws VhostUserException {
        vringFile(VhostUserRequest.SET_VRING_ERR, index, fd);
    }

    /** Sends the queue index with {@code fd} attached, or with the NOFD bit and nothing attached when {@code fd < 0}. */
    private void vringFile(VhostUserRequest request, int index, int fd) throws VhostUserException {
        checkIndex(index);
        long payload = index | (fd < 0 ? VRING_NOFD : 0);
        transact(request, VhostUserMessage.u64(payload), fd < 0 ? new int[0] : new int[] {fd}, -1);
    }

    public synchronized void setVringEnable(int index, boolean enable) throws VhostUserException {
        checkIndex(index);
        if (!protocolFeaturesNegotiated) {
            throw new IllegalStateException("SET_VRING_ENABLE needs VHOST_USER_F_PROTOCOL_FEATURES in SET_FEATURES first");
        }
        transact(VhostUserRequest.SET_VRING_ENABLE, VhostUserMessage.vringState(index, enable ? 1 : 0), new int[0], -1);
    }

    /** GET_QUEUE_NUM: how many queues the back end supports (needs PROTOCOL_F_MQ). */
    public synchronized long getQueueNum() throws VhostUserException {
        if (!has(protocolFeatures, PROTOCOL_F_MQ)) throw new IllegalStateException("GET_QUEUE_NUM needs protocol feature MQ");
        long n = VhostUserMessage.u64(transact(VhostUserRequest.GET_QUEUE_NUM, new byte[0], new int[0], VhostUserMessage.U64_BYTES));
        if (n < 1 || n > 0xffff) throw fail(VhostUserException.Kind.PROTOCOL, "answered GET_QUEUE_NUM with " + Long.toUnsignedString(n));
        return n;
    }

    /** GET_CONFIG: {@code size} bytes of the device's config space from {@code offset} (needs PROTOCOL_F_CONFIG). */
    public synchronized byte[] getConfig(int offset, int size) throws VhostUserException {
        if (!has(protocolFeatures, PROTOCOL_F_CONFIG)) throw new IllegalStateException("GET_CONFIG needs protocol feature CONFIG");
        byte[] request = VhostUserMessage.configRequest(offset, size, 0);
        byte[] reply = transact(VhostUserRequest.GET_CONFIG, request, new int[0], request.length);
        VhostUserMessage.Config c;
        try {
            c = VhostUserMessage.config(reply);
        } catch (IllegalArgumentException e) {
            throw fail(VhostUserException.Kind.PROTOCOL, "sent a malformed GET_CONFIG reply: " + e.getMessage());
        }
        if (c.offset() != offset) throw fail(VhostUserException.Kind.PROTOCOL, "answered GET_CONFIG at " + offset + " for offset " + c.offset());
        return c.data();
    }

    // ---- the exchange ----

    private static void checkIndex(int index) {
        // the kick/call/err payload has 8 bits for it
        if (index < 0 || index > VhostUserProtocol.VRING_INDEX_MASK) throw new IllegalArgumentException("queue index " + index);
    }

    private void requireProtocolFeaturesOffered(VhostUserRequest r) {
        if (offeredFeatures != -1 && !has(offeredFeatures, VHOST_USER_F_PROTOCOL_FEATURES)) {
            throw new IllegalStateException(r + " needs a back end that offers VHOST_USER_F_PROTOCOL_FEATURES; " + name + " does not");
        }
    }

    private String within() {
        long ms = timeout.toMillis();
        return ms % 1000 == 0 ? ms / 1000 + " s" : ms + " ms";
    }

    /** A failure that leaves the stream unusable: closes the socket so later requests fail at once. */
    private VhostUserException fail(VhostUserException.Kind kind, String what) {
        String message = "vhost-user back end " + name + ": " + what;
        if (kind != VhostUserException.Kind.REFUSED && broken == null) {
            broken = what;
            socket.close();
        }
        return new VhostUserException(kind, message);
    }

    private static VhostUserException.Kind kindOf(UnixSocketException e) {
        return switch (e.reason()) {
            case TIMED_OUT -> VhostUserException.Kind.TIMEOUT;
            case PEER_CLOSED -> VhostUserException.Kind.CLOSED;
            case TRUNCATED -> VhostUserException.Kind.PROTOCOL;
            case FAILED -> VhostUserException.Kind.IO;
        };
    }

    /**
     * Sends {@code request} and, if it has a reply (its own, or an ack with REPLY_ACK), reads and checks
     * it. {@code replyBytes} is the exact payload size the reply must have (-1: no reply of its own).
     * @return the reply's payload, or null when there was none
     */
    private byte[] transact(VhostUserRequest request, byte[] payload, int[] fds, int replyBytes) throws VhostUserException {
        if (closed) throw new VhostUserException(VhostUserException.Kind.CLOSED, "vhost-user back end " + name + ": connection is closed");
        if (broken != null) {
            throw new VhostUserException(VhostUserException.Kind.CLOSED, "vhost-user back end " + name + ": cannot send " + request
                    + ", the connection failed earlier (" + broken + ")");
        }
        boolean ack = replyBytes < 0 && has(protocolFeatures, PROTOCOL_F_REPLY_ACK);
        int flags = VERSION | (ack ? FLAG_NEED_REPLY : 0);
        long deadline = System.nanoTime() + timeout.toNanos();
        requestsSent.incrementAndGet();
        try {
            socket.sendAll(VhostUserMessage.encode(request.code(), flags, payload), fds, deadline);
        } catch (UnixSocketException e) {
            throw fail(kindOf(e), switch (e.reason()) {
                case TIMED_OUT -> "could not send " + request + " within " + within() + " (the back end is not reading)";
                case PEER_CLOSED -> "closed the connection (sending " + request + ")";
                default -> "sending " + request + ": " + e.getMessage();
            });
        }
        if (replyBytes < 0 && !ack) return null;
        int expected = ack ? VhostUserMessage.U64_BYTES : replyBytes;

        VhostUserMessage.Header h = VhostUserMessage.decodeHeader(receive(request, VhostUserProtocol.HEADER_BYTES, deadline));
        if (h.request() != request.code()) {
            VhostUserRequest other = VhostUserRequest.of(h.request());
            throw fail(VhostUserException.Kind.PROTOCOL, "answered " + request + " with a reply to "
                    + (other == null ? "request code " + Integer.toUnsignedString(h.request()) : other.toString()));
        }
        if (h.version() != VERSION || !h.isReply()) {
            throw fail(VhostUserException.Kind.PROTOCOL, String.format("reply to %s has flags 0x%x (want version %d and REPLY 0x%x)",
                    request, h.flags(), VERSION, VhostUserProtocol.FLAG_REPLY));
        }
        if (request.reply() == VhostUserRequest.Reply.CONFIG && h.size() == 0) {
            throw fail(VhostUserException.Kind.REFUSED, "refused " + request + " (empty reply)");
        }
        if (h.size() != expected) {
            throw fail(VhostUserException.Kind.PROTOCOL, "reply to " + request + " has a " + Integer.toUnsignedString(h.size())
                    + "-byte payload; it must be " + expected);
        }
        byte[] reply = receive(request, expected, deadline);
        if (ack) {
            long status = VhostUserMessage.u64(reply);
            if (status != 0) throw fail(VhostUserException.Kind.REFUSED, "refused " + request + " (REPLY_ACK status " + status + ")");
            return null;
        }
        return reply;
    }

    private byte[] receive(VhostUserRequest request, int len, long deadline) throws VhostUserException {
        UnixSocket.Message m;
        try {
            m = socket.receiveExactly(len, 0, deadline);
        } catch (UnixSocketException e) {
            throw fail(kindOf(e), switch (e.reason()) {
                case TIMED_OUT -> "no reply to " + request + " within " + within();
                case PEER_CLOSED -> "closed the connection instead of replying to " + request;
                default -> "reading the reply to " + request + ": " + e.getMessage();
            });
        }
        if (m.closedExtras() > 0) {
            throw fail(VhostUserException.Kind.PROTOCOL, "sent " + m.closedExtras() + " file descriptors with its reply to "
                    + request + ", which carries none (closed them)");
        }
        return m.bytes();
    }

    @Override
    public synchronized void close() {
        closed = true;
        socket.close();
    }

    @Override
    public String toString() {
        return "vhost-user back end " + name;
    }
}
