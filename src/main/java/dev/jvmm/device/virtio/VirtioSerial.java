package dev.jvmm.device.virtio;

import dev.jvmm.device.ByteSink;
import dev.jvmm.device.ConsoleEndpoint;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * virtio-console (id 3) with VIRTIO_CONSOLE_F_MULTIPORT (virtio 1.2, 5.3): several named ports,
 * each a raw byte stream the guest opens as {@code /dev/vportNpM} (Linux's virtio-serial), never a
 * console. Ports are configured by the VMM ({@link PortConfig}): a name, and a host side made of an
 * input (bytes to the guest, with an end) and/or an output {@link ByteSink}.
 *
 * <p><b>Queues.</b> Port 0 receive/transmit are 0/1, the control receive/transmit queues 2/3, port
 * n &ge; 1 receive/transmit 2n+2/2n+3; config {@code max_nr_ports} is the number of ports.
 *
 * <p><b>Control protocol</b> (the guest init's contract, see RootfsInit): the driver's DEVICE_READY
 * (value 1) is answered with a DEVICE_ADD per port; each port's PORT_READY (value 1) with a PORT_NAME
 * (the name follows the 8-byte header, NUL-terminated as QEMU sends it) and PORT_OPEN 1 (the host is
 * connected: until then Linux holds the guest's writes back). CONSOLE_PORT is never sent. Host input
 * flows only after the guest's own PORT_OPEN 1 for the port (Linux drops data a closed port gets);
 * after {@link ConsoleEndpoint#endOfInput()} (all input is then in used buffers) the port gets
 * PORT_OPEN 0, so the guest's read returns 0. A guest PORT_OPEN 0 means the guest side closed the
 * port ({@link PortListener}).
 *
 * <p><b>Guest messages are validated</b>: exactly 8 bytes, a port id below the number of ports (not
 * checked for DEVICE_READY, which Linux sends with id 0xffffffff), an event the driver may send
 * (DEVICE_READY, PORT_READY, PORT_OPEN) in a state where it means something (PORT_READY after that
 * port's DEVICE_ADD, PORT_OPEN after its PORT_READY, values 0 or 1). Anything else, and repeats that
 * would change nothing, is ignored and counted ({@code control_ignored}).
 *
 * <p><b>Bounded.</b> Messages to the guest wait for buffers on the control receive queue. Each is
 * sent at most once per device activation (DEVICE_ADD, PORT_NAME, PORT_OPEN 1, PORT_OPEN 0 per
 * port), so at most {@link #PENDING_PER_PORT} wait per port however the guest behaves; a flood of
 * PORT_READYs adds nothing. A control receive buffer too small for the message is returned empty.
 *
 * <p><b>Output</b> is back-pressured as in {@link VirtioConsole}: a transmit chain is copied to the
 * port's sink in pieces of at most {@link #CHUNK} bytes; when the sink has no room the port stops with
 * the chain half sent and resumes when the sink has room again, so the guest's queue stops draining and
 * nothing is dropped. A port without a sink takes and discards what the guest writes (counted).
 * {@link #drainOutputs} serves what the guest has queued, to the end, before the VMM acts on the
 * guest's "I'm done" (the command-status port).
 *
 * <p>A driver that does not accept MULTIPORT gets port 0 alone on queues 0/1, connected from the
 * start (the plain console protocol has no open or end).
 *
 * <p><b>Threads.</b> Everything runs with the device lock held (see {@link VirtioDevice}); sinks'
 * space listeners and host input come from other threads and take it too.
 */
public final class VirtioSerial extends AbstractVirtioDevice {
    public static final int DEVICE_ID = 3;
    /** VIRTIO_CONSOLE_F_MULTIPORT. */
    public static final int F_MULTIPORT = 1;
    public static final int CONTROL_RECEIVEQ = 2;
    public static final int CONTROL_TRANSMITQ = 3;
    public static final int QUEUE_SIZE = 256;
    /** The control queues carry a few messages per port: Linux posts a page per buffer, all it can. */
    public static final int CONTROL_QUEUE_SIZE = 32;
    /** QEMU's default max_ports: 64 queues. */
    public static final int MAX_PORTS = 31;
    /** Longest port name in bytes: Linux takes any length, but the VMM's names are short. */
    public static final int MAX_NAME_BYTES = 64;
    /** {@code struct virtio_console_control}: le32 id, le16 event, le16 value. */
    public static final int CONTROL_SIZE = 8;

    public static final int DEVICE_READY = 0, DEVICE_ADD = 1, DEVICE_REMOVE = 2, PORT_READY = 3, CONSOLE_PORT = 4,
            RESIZE = 5, PORT_OPEN = 6, PORT_NAME = 7;

    /** Messages to the guest that may wait per port: DEVICE_ADD, PORT_NAME, PORT_OPEN 1, PORT_OPEN 0. */
    static final int PENDING_PER_PORT = 4;
    /** Bytes copied out of a transmit chain at a time. */
    static final int CHUNK = 16 * 1024;

    /**
     * A port as the VMM configures it.
     *
     * @param name   what the guest finds in {@code /sys/class/virtio-ports/vportNpM/name}: 1 to
     *               {@link #MAX_NAME_BYTES} of {@code [A-Za-z0-9._-]}
     * @param input  whether the host sends bytes to the guest here ({@link #input(int)})
     * @param output where the guest's writes go, or null: they are discarded
     */
    public record PortConfig(String name, boolean input, ByteSink output) {
        public PortConfig {
            Objects.requireNonNull(name, "name");
            if (name.isEmpty() || name.length() > MAX_NAME_BYTES || !name.matches("[A-Za-z0-9._-]+")) {
                throw new IllegalArgumentException("port name '" + name + "': 1 to " + MAX_NAME_BYTES + " of A-Z a-z 0-9 . _ -");
            }
        }

        public static PortConfig input(String name) {
            return new PortConfig(name, true, null);
        }

        public static PortConfig output(String name, ByteSink sink) {
            return new PortConfig(name, false, Objects.requireNonNull(sink, "sink"));
        }
    }

    /** Told when the guest opens or closes a port (with the device lock held: quick, no blocking). */
    public interface PortListener {
        default void guestOpened(int port, String name) {
        }

        /**
         * The guest closed its side (for a command's stdout: all its descriptors are closed). Output
         * it queued before may still be in the transmit queue: {@link #drainOutputs} serves it.
         */
        default void guestClosed(int port, String name) {
        }
    }

    /** The receive queue of port {@code port}. */
    public static int receiveQueue(int port) {
        return port == 0 ? 0 : 2 * port + 2;
    }

    /** The transmit queue of port {@code port}. */
    public static int transmitQueue(int port) {
        return receiveQueue(port) + 1;
    }

    private record ControlMessage(Port port, byte[] bytes) { }

    /** A {@link #drainOutputs} request: chains each port still has to complete, and what runs then. */
    private static final class Drain {
        final int[] remaining;
        final Runnable done;

        Drain(int[] remaining, Runnable done) {
            this.remaining = remaining;
            this.done = done;
        }

        boolean finished() {
            for (int r : remaining) if (r > 0) return false;
            return true;
        }
    }

    private final class Port implements ConsoleEndpoint {
        final int id;
        final PortConfig config;
        final byte[] name;
        Runnable inputSpace = () -> { };
        /** The host input ended: host state, kept across device resets. */
        boolean inputEnded;
        // the protocol with the driver, reset with the device
        boolean added;
        boolean ready;
        boolean guestOpen;
        boolean endSent;
        int pendingControl;
        /** A transmit chain the sink has not taken all of yet, and how far it got. */
        DescriptorChain sending;
        long sent;
        boolean waitingForSpace;

        Port(int id, PortConfig config) {
            this.id = id;
            this.config = config;
            this.name = config.name().getBytes(StandardCharsets.US_ASCII);
        }

        void resetProtocol() {
            added = ready = guestOpen = endSent = false;
            pendingControl = 0;
            sending = null;
            sent = 0;
            waitingForSpace = false;
        }

        /** Whether host input may go to the guest now: it has the port open and input has not ended. */
        boolean acceptsInput() {
            return transport != null && config.input() && guestOpen && !inputEnded;
        }

        /**
         * Copies as much of {@code buf[off, off + len)} into the port's receive buffers as they hold
         * and returns how many bytes were taken: 0 before the guest opened the port, after the input
         * ended, or when the guest has no receive buffer available.
         */
        @Override
        public int offer(byte[] buf, int off, int len) {
            synchronized (VirtioSerial.this) {
                if (len <= 0 || !acceptsInput()) return 0;
                int q = receiveQueue(id);
                int done = fillReceiveBuffers(q, buf, off, len, e -> broken(e));
                if (transport != null) transport.signalUsed(q);
                return done;
            }
        }

        @Override
        public void onInputSpace(Runnable listener) {
            synchronized (VirtioSerial.this) {
                inputSpace = listener == null ? () -> { } : listener;
            }
        }

        /** Every byte offered was taken (so it is in a used buffer): the guest's reader gets PORT_OPEN 0 (EOF). */
        @Override
        public void endOfInput() {
            synchronized (VirtioSerial.this) {
                if (inputEnded) return;
                inputEnded = true;
                sendEndIfDue(this);
                flushControlSafely();
            }
        }
    }

    private final List<Port> ports = new ArrayList<>();
    private final ArrayDeque<ControlMessage> controlOut = new ArrayDeque<>();
    private final List<Drain> drains = new ArrayList<>();
    private final List<AutoCloseable> resources = new ArrayList<>();
    private final byte[] chunk = new byte[CHUNK];
    private final AtomicLong ignoredControl = stats.counter("control_ignored");
    private final AtomicLong discarded = stats.counter("discarded_bytes");
    private PortListener listener = new PortListener() { };
    private boolean multiport;
    private boolean deviceReady;
    /** A queue broke while active: nothing more is served until a reset. */
    private boolean stalled;

    public VirtioSerial(List<PortConfig> ports) {
        super(DEVICE_ID, 12, 2 * (ports.size() + 1), QUEUE_SIZE); // cols, rows, max_nr_ports, emerg_wr
        if (ports.isEmpty() || ports.size() > MAX_PORTS) {
            throw new IllegalArgumentException("a virtio-serial device has 1 to " + MAX_PORTS + " ports, not " + ports.size());
        }
        Map<ByteSink, List<Port>> bySink = new IdentityHashMap<>();
        for (PortConfig c : ports) {
            for (Port p : this.ports) {
                if (p.config.name().equals(c.name())) throw new IllegalArgumentException("port name '" + c.name() + "' is used twice");
            }
            Port p = new Port(this.ports.size(), c);
            this.ports.add(p);
            if (c.output() != null) bySink.computeIfAbsent(c.output(), s -> new ArrayList<>()).add(p);
        }
        config.putInt(4, ports.size());
        for (Map.Entry<ByteSink, List<Port>> e : bySink.entrySet()) {
            List<Port> users = List.copyOf(e.getValue());
            e.getKey().onSpace(() -> spaceAvailable(users));
        }
    }

    @Override
    public int queueMaxSize(int queue) {
        return queue == CONTROL_RECEIVEQ || queue == CONTROL_TRANSMITQ ? CONTROL_QUEUE_SIZE : QUEUE_SIZE;
    }

    @Override
    public String snapshotRefusal() {
        return "the --rootfs command channel is not saved: its ports are this jvmm's stdin, stdout and stderr";
    }

    @Override
    public long deviceFeatures() {
        return 1L << F_MULTIPORT;
    }

    public int portCount() {
        return ports.size();
    }

    /** The id of the port named {@code name}, or -1. */
    public int portId(String name) {
        for (Port p : ports) if (p.config.name().equals(name)) return p.id;
        return -1;
    }

    /**
     * The host input of port {@code port} (configured with input): {@code offer} what to send,
     * {@code onInputSpace} to hear when more may fit (the guest opened the port or posted receive
     * buffers), {@code endOfInput} when there is no more. {@code ConsoleInput} drives it from a host
     * descriptor.
     */
    public ConsoleEndpoint input(int port) {
        if (port < 0 || port >= ports.size() || !ports.get(port).config.input()) {
            throw new IllegalArgumentException("port " + port + " has no host input");
        }
        return ports.get(port);
    }

    public synchronized void setPortListener(PortListener l) {
        this.listener = l == null ? new PortListener() { } : l;
    }

    /** Whether the guest has port {@code port} open (its last PORT_OPEN said 1). */
    public synchronized boolean guestOpen(int port) {
        return port >= 0 && port < ports.size() && ports.get(port).guestOpen;
    }

    /** Control messages waiting for a control receive buffer. */
    public synchronized int pendingControlMessages() {
        return controlOut.size();
    }

    /** Guest control messages ignored as malformed, out of range, unknown or meaningless. */
    public long ignoredControlMessages() {
        return ignoredControl.get();
    }

    /** Closes {@code r} (a sink's writer) with the device: after the vCPUs stopped. */
    public synchronized void closeWith(AutoCloseable r) {
        resources.add(Objects.requireNonNull(r));
    }

    @Override
    public synchronized void activate(Transport transport, List<SplitVirtqueue> queues, long features) {
        super.activate(transport, queues, features);
        multiport = hasFeature(F_MULTIPORT);
        deviceReady = false;
        stalled = false;
        controlOut.clear();
        for (Port p : ports) p.resetProtocol();
        if (!multiport) { // the plain console: port 0 is there and open from the start
            Port p0 = ports.get(0);
            p0.guestOpen = true;
            if (p0.config.input()) p0.inputSpace.run();
        }
    }

    @Override
    public synchronized void notify(int queueIndex) throws VirtqueueException {
        if (queue(queueIndex) == null || stalled) return;
        try {
            if (queueIndex == CONTROL_RECEIVEQ || queueIndex == CONTROL_TRANSMITQ) {
                if (!multiport) return;
                if (queueIndex == CONTROL_TRANSMITQ) serve(CONTROL_TRANSMITQ, this::control);
                flushControl();
                return;
            }
            Port p = portOfQueue(queueIndex);
            if (p == null) return;
            if (queueIndex == receiveQueue(p.id)) {
                if (p.acceptsInput()) p.inputSpace.run(); // the guest posted receive buffers
            } else {
                transmit(p);
            }
        } catch (VirtqueueException | RuntimeException e) {
            stall();
            throw e; // the transport marks the device DEVICE_NEEDS_RESET
        }
    }

    /** The port whose data queue {@code q} is, or null (ports above 0 exist only with MULTIPORT). */
    private Port portOfQueue(int q) {
        int id = q < 2 ? 0 : (q - 2) / 2;
        if (q >= 2 && q < 4) return null;
        if (id >= ports.size() || (id > 0 && !multiport)) return null;
        return ports.get(id);
    }

    // ---- control messages from the guest ----

    private long control(DescriptorChain chain) {
        if (chain.readableLength() != CONTROL_SIZE) return ignored();
        ByteBuffer m = ByteBuffer.wrap(chain.readAll(CONTROL_SIZE)).order(ByteOrder.LITTLE_ENDIAN);
        long id = Integer.toUnsignedLong(m.getInt(0));
        int event = Short.toUnsignedInt(m.getShort(4));
        int value = Short.toUnsignedInt(m.getShort(6));
        if (event == DEVICE_READY) return deviceReady(value);
        if (id >= ports.size()) return ignored();
        Port p = ports.get((int) id);
        return switch (event) {
            case PORT_READY -> portReady(p, value);
            case PORT_OPEN -> portOpen(p, value);
            default -> ignored(); // DEVICE_ADD, CONSOLE_PORT, PORT_NAME...: the device's to send, not the driver's
        };
    }

    private long ignored() {
        ignoredControl.incrementAndGet();
        stats.errors.incrementAndGet();
        return 0;
    }

    /** The driver is set up (value 1) or failed (0): the ports are announced once. */
    private long deviceReady(int value) {
        if (value != 1 || deviceReady) return ignored();
        deviceReady = true;
        for (Port p : ports) {
            p.added = true;
            queueControl(p, DEVICE_ADD, 1, null);
        }
        return 0;
    }

    /** The driver made port {@code p} (value 1) or failed to (0): name it and connect the host side, once. */
    private long portReady(Port p, int value) {
        if (!p.added || p.ready || value != 1) return ignored();
        p.ready = true;
        queueControl(p, PORT_NAME, 1, p.name);
        queueControl(p, PORT_OPEN, 1, null);
        sendEndIfDue(p);
        return 0;
    }

    /** The guest opened (1) or closed (0) its side of port {@code p}. */
    private long portOpen(Port p, int value) {
        if (!p.ready || value > 1 || p.guestOpen == (value == 1)) return ignored();
        p.guestOpen = value == 1;
        if (p.guestOpen) {
            listener.guestOpened(p.id, p.config.name());
            if (p.acceptsInput()) p.inputSpace.run();
        } else {
            listener.guestClosed(p.id, p.config.name());
        }
        return 0;
    }

    // ---- control messages to the guest ----

    /** After the end of input, once the port is named and connected: PORT_OPEN 0, so the guest reads EOF. */
    private void sendEndIfDue(Port p) {
        if (transport == null || !multiport || !p.ready || !p.inputEnded || p.endSent) return;
        p.endSent = true;
        queueControl(p, PORT_OPEN, 0, null);
    }

    private void queueControl(Port p, int event, int value, byte[] extra) {
        if (p.pendingControl >= PENDING_PER_PORT) { // cannot happen: each message goes once per activation
            stats.errors.incrementAndGet();
            return;
        }
        int extraLen = extra == null ? 0 : extra.length + 1; // a name goes NUL-terminated, as QEMU sends it
        ByteBuffer m = ByteBuffer.allocate(CONTROL_SIZE + extraLen).order(ByteOrder.LITTLE_ENDIAN);
        m.putInt(p.id).putShort((short) event).putShort((short) value);
        if (extra != null) m.put(extra).put((byte) 0);
        p.pendingControl++;
        controlOut.add(new ControlMessage(p, m.array()));
    }

    /** Sends waiting control messages into the guest's control receive buffers, one message a buffer. */
    private void flushControl() throws VirtqueueException {
        if (controlOut.isEmpty()) return;
        boolean used = false;
        try {
            DescriptorChain chain;
            while (!controlOut.isEmpty() && (chain = nextReceiveBuffer(CONTROL_RECEIVEQ)) != null) {
                used = true;
                ControlMessage m = controlOut.peek();
                if (chain.writableLength() < m.bytes().length) { // Linux posts pages; this guest is odd
                    stats.errors.incrementAndGet();
                    receiveDone(CONTROL_RECEIVEQ, chain, 0, 0);
                    continue;
                }
                chain.write(m.bytes());
                receiveDone(CONTROL_RECEIVEQ, chain, m.bytes().length, 0);
                controlOut.poll();
                m.port().pendingControl--;
            }
        } finally {
            if (used) transport.signalUsed(CONTROL_RECEIVEQ);
        }
    }

    /** {@link #flushControl} from host calls, outside the transport: a broken queue is reported here. */
    private void flushControlSafely() {
        if (transport == null || stalled || !multiport) return;
        try {
            flushControl();
        } catch (VirtqueueException e) {
            broken(e);
        }
    }

    private void broken(VirtqueueException e) {
        transport.queueBroken(e);
        stall();
    }

    // ---- output ----

    private void transmit(Port p) throws VirtqueueException {
        int qi = transmitQueue(p.id);
        SplitVirtqueue q = queue(qi);
        if (q == null) return;
        ByteSink sink = p.config.output();
        for (int i = 0; i < CHAINS_PER_TURN; i++) {
            if (p.sending == null) {
                p.sending = q.pop();
                p.sent = 0;
                if (p.sending == null) return;
            }
            long total = p.sending.readableLength();
            if (sink == null) { // nobody on the host reads this port
                discarded.addAndGet(total - p.sent);
                p.sent = total;
            }
            while (p.sent < total) {
                int n = (int) Math.min(CHUNK, total - p.sent);
                p.sending.read(p.sent, chunk, 0, n);
                if (!sink.offer(chunk, 0, n)) { // the host side is stalled: resume on space
                    p.waitingForSpace = true;
                    return;
                }
                p.sent += n;
                stats.bytes.addAndGet(n);
            }
            q.addUsed(p.sending, 0);
            stats.requests.incrementAndGet();
            p.sending = null;
            chainSent(p);
        }
        if (q.hasAvailable()) transport.continueLater(qi);
    }

    /** A sink has room again (its writer thread calls this): the ports waiting on it go on. */
    private void spaceAvailable(List<Port> users) {
        synchronized (this) {
            for (Port p : users) {
                if (!p.waitingForSpace || transport == null) continue;
                p.waitingForSpace = false;
                transport.continueLater(transmitQueue(p.id));
            }
        }
    }

    /**
     * Serves every port's transmit queue up to the chains the guest has made available by now (and
     * the one half sent), then runs {@code done}. Call it on the event loop when the guest says it is
     * done (the command-status port): queue notifications reach the loop through ioeventfds, so a
     * vCPU may be ahead of them. The chains are served in turns (at most {@link #CHAINS_PER_TURN} per
     * queue per turn) and wait for a stalled sink like any other output; {@code done} runs on the
     * thread that completes the last one (the event loop), with the device lock held, so it must be
     * quick. It runs at once when nothing is queued or the device is not active, and when the device
     * is reset or a queue breaks (nothing more can be served then).
     */
    public synchronized void drainOutputs(Runnable done) {
        Objects.requireNonNull(done, "done");
        int[] remaining = new int[ports.size()];
        if (transport != null && !stalled) {
            for (Port p : ports) {
                SplitVirtqueue q = queue(transmitQueue(p.id));
                if (q == null || (p.id > 0 && !multiport)) continue;
                try {
                    remaining[p.id] = q.availableCount() + (p.sending != null ? 1 : 0);
                } catch (VirtqueueException e) {
                    remaining[p.id] = 0; // broken: nothing more comes out of it
                }
            }
        }
        Drain d = new Drain(remaining, done);
        if (d.finished()) {
            done.run();
            return;
        }
        drains.add(d);
        for (Port p : ports) if (remaining[p.id] > 0) transport.continueLater(transmitQueue(p.id));
    }

    private void chainSent(Port p) {
        if (drains.isEmpty()) return;
        for (Drain d : drains) if (d.remaining[p.id] > 0) d.remaining[p.id]--;
        List<Drain> finished = new ArrayList<>();
        for (Drain d : drains) if (d.finished()) finished.add(d);
        drains.removeAll(finished);
        for (Drain d : finished) d.done.run();
    }

    /** Nothing more will be served: every drain is as complete as it gets. */
    private void stall() {
        stalled = true;
        finishDrains();
    }

    private void finishDrains() {
        List<Drain> all = List.copyOf(drains);
        drains.clear();
        for (Drain d : all) d.done.run();
    }

    @Override
    public synchronized void reset() {
        super.reset();
        multiport = false;
        deviceReady = false;
        stalled = false;
        controlOut.clear();
        for (Port p : ports) p.resetProtocol();
        finishDrains();
    }

    @Override
    public void close() {
        List<AutoCloseable> rs;
        synchronized (this) {
            rs = List.copyOf(resources);
            resources.clear();
        }
        for (AutoCloseable r : rs) {
            try {
                r.close();
            } catch (Exception e) { // closing one writer must not keep the others open
                stats.errors.incrementAndGet();
            }
        }
    }
}
