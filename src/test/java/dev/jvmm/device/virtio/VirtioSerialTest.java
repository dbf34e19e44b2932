package dev.jvmm.device.virtio;

import dev.jvmm.device.CollectingSink;
import dev.jvmm.device.ConsoleEndpoint;
import dev.jvmm.device.virtio.TestDriver.Buf;
import dev.jvmm.device.virtio.VirtioSerial.PortConfig;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static dev.jvmm.device.virtio.VirtioMmioTransport.*;
import static dev.jvmm.device.virtio.VirtioSerial.*;
import static org.junit.jupiter.api.Assertions.*;

/** VirtioSerial against a test driver that speaks the control protocol as Linux's virtio_console does. */
class VirtioSerialTest {
    static final long BAD_ID = 0xffff_ffffL;
    static final long FEATURES = (1L << F_VERSION_1) | (1L << F_MULTIPORT);

    /** A control message as the guest receives it. */
    record Msg(long id, int event, int value, byte[] extra) {
        @Override
        public String toString() {
            return "Msg[" + id + ", event " + event + ", value " + value + (extra.length > 0 ? ", " + Arrays.toString(extra) : "") + "]";
        }
    }

    /** The driver side: control buffers in, control messages out, port buffers; bookkeeping of used entries. */
    static final class Guest {
        final TestDriver d;
        final Map<Integer, Long> controlBufs = new HashMap<>();
        final Map<Integer, Long> rxBufs = new HashMap<>(); // by queue << 16 | head
        final int[] seen = new int[8];

        Guest(VirtioSerial dev) {
            this(new TestDriver(dev).init(FEATURES, 16));
        }

        Guest(TestDriver d) {
            this.d = d;
        }

        void postControlBuffers(int n, int size) {
            for (int i = 0; i < n; i++) {
                long a = d.alloc(size);
                controlBufs.put(d.submit(CONTROL_RECEIVEQ, Buf.w(a, size)), a);
            }
            d.kick(CONTROL_RECEIVEQ);
        }

        void sendRaw(byte[] m) {
            d.submit(CONTROL_TRANSMITQ, Buf.r(d.put(m), m.length));
            d.kick(CONTROL_TRANSMITQ);
        }

        void send(long id, int event, int value) {
            sendRaw(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt((int) id).putShort((short) event)
                    .putShort((short) value).array());
        }

        /** The control messages the device has put in used buffers since the last call (buffers are not re-posted). */
        List<Msg> received() {
            List<Msg> out = new ArrayList<>();
            while (seen[CONTROL_RECEIVEQ] != d.usedIdx(CONTROL_RECEIVEQ)) {
                int i = seen[CONTROL_RECEIVEQ]++;
                long a = controlBufs.remove(d.usedId(CONTROL_RECEIVEQ, i));
                int len = d.usedLen(CONTROL_RECEIVEQ, i);
                if (len == 0) {
                    out.add(new Msg(-1, -1, -1, new byte[0]));
                    continue;
                }
                assertTrue(len >= 8, "a control message has 8 bytes at least, not " + len);
                ByteBuffer b = ByteBuffer.wrap(d.mem.read(a, len)).order(ByteOrder.LITTLE_ENDIAN);
                out.add(new Msg(Integer.toUnsignedLong(b.getInt(0)), Short.toUnsignedInt(b.getShort(4)),
                        Short.toUnsignedInt(b.getShort(6)), Arrays.copyOfRange(b.array(), 8, len)));
            }
            return out;
        }

        void postReceive(int port, int n, int size) {
            int q = receiveQueue(port);
            for (int i = 0; i < n; i++) {
                long a = d.alloc(size);
                rxBufs.put(q << 16 | d.submit(q, Buf.w(a, size)), a);
            }
            d.kick(q);
        }

        /** The bytes the device put in port {@code port}'s receive buffers since the last call. */
        byte[] input(int port) {
            int q = receiveQueue(port);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            while (seen[q] != d.usedIdx(q)) {
                int i = seen[q]++;
                out.writeBytes(d.mem.read(rxBufs.remove(q << 16 | d.usedId(q, i)), d.usedLen(q, i)));
            }
            return out.toByteArray();
        }

        void write(int port, byte[]... pieces) {
            Buf[] bufs = new Buf[pieces.length];
            for (int i = 0; i < pieces.length; i++) bufs[i] = Buf.r(d.put(pieces[i]), pieces[i].length);
            d.submit(transmitQueue(port), bufs);
        }

        /** What Linux does from probe to the ports' PORT_READYs; returns the messages the device sent. */
        List<Msg> handshake(int ports) {
            postControlBuffers(3 * ports + 2, 64);
            send(BAD_ID, DEVICE_READY, 1);
            List<Msg> adds = received();
            List<Msg> all = new ArrayList<>(adds);
            for (Msg m : adds) {
                assertEquals(DEVICE_ADD, m.event(), all::toString);
                postReceive((int) m.id(), 2, 64);
                send(m.id(), PORT_READY, 1);
            }
            all.addAll(received());
            return all;
        }
    }

    static VirtioSerial commandPorts(CollectingSink out, CollectingSink err) {
        return new VirtioSerial(List.of(PortConfig.input("jvmm.stdin"), PortConfig.output("jvmm.stdout", out),
                PortConfig.output("jvmm.stderr", err)));
    }

    static List<Integer> events(List<Msg> ms) {
        return ms.stream().map(Msg::event).toList();
    }

    @Test
    void offersMultiportWithOneQueuePairPerPortAndTheControlPair() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        TestDriver d = new TestDriver(dev);
        assertEquals(VirtioSerial.DEVICE_ID, d.r(VirtioMmioTransport.DEVICE_ID));
        d.w(DEVICE_FEATURES_SEL, 0);
        assertEquals(1 << F_MULTIPORT, d.r(DEVICE_FEATURES) & 7, "MULTIPORT, neither SIZE nor EMERG_WRITE");
        assertEquals(8, d.t.queueCount(), "ports 0-2 and control: 2 * (3 + 1)");
        assertEquals(3, (int) d.t.read(CONFIG + 4, 4), "max_nr_ports");
        assertEquals(0, (int) d.t.read(CONFIG, 4), "cols and rows");
        d.w(QUEUE_SEL, CONTROL_RECEIVEQ);
        assertEquals(CONTROL_QUEUE_SIZE, d.r(QUEUE_NUM_MAX));
        d.w(QUEUE_SEL, transmitQueue(2));
        assertEquals(QUEUE_SIZE, d.r(QUEUE_NUM_MAX));
        assertEquals(List.of(0, 1, 4, 5, 6, 7), List.of(receiveQueue(0), transmitQueue(0), receiveQueue(1), transmitQueue(1),
                receiveQueue(2), transmitQueue(2)));
        int s = d.negotiate(FEATURES);
        assertTrue((s & STATUS_FEATURES_OK) != 0);
        assertEquals(FEATURES, d.t.negotiatedFeatures() & FEATURES);
    }

    @Test
    void deviceReadyIsAnsweredWithOneDeviceAddPerPortOnce() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        Guest g = new Guest(dev);
        g.postControlBuffers(8, 64);
        assertEquals(List.of(), g.received(), "nothing before the driver is ready");
        g.send(BAD_ID, DEVICE_READY, 1);
        List<Msg> ms = g.received();
        assertEquals(List.of(DEVICE_ADD, DEVICE_ADD, DEVICE_ADD), events(ms));
        assertEquals(List.of(0L, 1L, 2L), ms.stream().map(Msg::id).toList());
        assertEquals(8, g.d.usedLen(CONTROL_RECEIVEQ, 0), "a bare header");
        assertEquals(1, g.d.usedIdx(CONTROL_TRANSMITQ), "the driver's message is returned: Linux spins until it is");
        g.send(BAD_ID, DEVICE_READY, 1);
        assertEquals(List.of(), g.received(), "the ports are announced once");
        assertEquals(1, dev.ignoredControlMessages());
    }

    @Test
    void portReadyIsAnsweredWithItsNameAndTheHostConnected() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        Guest g = new Guest(dev);
        List<Msg> ms = g.handshake(3);
        assertEquals(List.of(DEVICE_ADD, DEVICE_ADD, DEVICE_ADD, PORT_NAME, PORT_OPEN, PORT_NAME, PORT_OPEN, PORT_NAME, PORT_OPEN),
                events(ms));
        assertFalse(events(ms).contains(CONSOLE_PORT), "never a console: the init could not open an hvc");
        String[] names = {"jvmm.stdin", "jvmm.stdout", "jvmm.stderr"};
        for (int port = 0; port < 3; port++) {
            Msg name = ms.get(3 + 2 * port), open = ms.get(4 + 2 * port);
            assertEquals(port, name.id());
            byte[] expected = (names[port] + "\0").getBytes(StandardCharsets.US_ASCII);
            assertArrayEquals(expected, name.extra(), "the name follows the header, NUL-terminated");
            assertEquals(port, open.id());
            assertEquals(1, open.value());
            assertEquals(0, open.extra().length);
        }
        assertEquals(0, dev.ignoredControlMessages());
        assertEquals(0, dev.pendingControlMessages());
    }

    @Test
    void controlMessagesWaitForControlBuffersAndTooSmallOnesAreReturnedEmpty() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        Guest g = new Guest(dev);
        g.send(BAD_ID, DEVICE_READY, 1);
        assertEquals(3, dev.pendingControlMessages());
        g.postControlBuffers(2, 64);
        assertEquals(List.of(0L, 1L), g.received().stream().map(Msg::id).toList());
        assertEquals(1, dev.pendingControlMessages());
        g.postControlBuffers(1, 4); // smaller than a header: skipped, the message waits for the next
        assertEquals(List.of(-1L), g.received().stream().map(Msg::id).toList());
        g.postControlBuffers(1, 64);
        assertEquals(List.of(2L), g.received().stream().map(Msg::id).toList());
        g.postReceive(1, 1, 16);
        g.send(1, PORT_READY, 1);
        g.postControlBuffers(1, 12); // a header fits, the name does not
        assertEquals(List.of(-1), events(g.received()));
        g.postControlBuffers(2, 64);
        assertEquals(List.of(PORT_NAME, PORT_OPEN), events(g.received()));
        assertEquals(0, g.d.t.status() & STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void outputOnEachPortReachesItsOwnSinkByteExact() {
        CollectingSink out = new CollectingSink(), err = new CollectingSink();
        VirtioSerial dev = commandPorts(out, err);
        Guest g = new Guest(dev);
        g.handshake(3);
        byte[] binary = new byte[3000];
        for (int i = 0; i < binary.length; i++) binary[i] = (byte) (i * 7);
        binary[0] = 0;
        binary[1] = (byte) 0xff;
        byte[] tail = {0, 0, (byte) 0xff, '\n', '\r'};
        g.write(1, Arrays.copyOfRange(binary, 0, 1000), Arrays.copyOfRange(binary, 1000, 3000));
        g.write(2, "oops\n".getBytes(StandardCharsets.US_ASCII));
        g.write(1, tail);
        g.d.kick(transmitQueue(1));
        g.d.kick(transmitQueue(2));
        ByteArrayOutputStream expected = new ByteArrayOutputStream();
        expected.writeBytes(binary);
        expected.writeBytes(tail);
        assertArrayEquals(expected.toByteArray(), out.bytes());
        assertEquals("oops\n", err.toString());
        assertEquals(2, g.d.usedIdx(transmitQueue(1)));
        assertEquals(0, g.d.usedLen(transmitQueue(1), 0), "nothing written into a transmit chain");
        assertEquals(3005 + 5, dev.stats().bytes.get());
    }

    /**
     * Command ports whose stdout sink takes 4 bytes until drained, and a guest that opened them and
     * queued "abc", then "defg" on stdout, not yet served.
     */
    private static final class StalledStdout {
        final CollectingSink out = new CollectingSink(4), err = new CollectingSink();
        final VirtioSerial dev = commandPorts(out, err);
        final Guest g = new Guest(dev);

        StalledStdout() {
            g.handshake(3);
            g.write(1, "abc".getBytes());
            g.write(1, "defg".getBytes());
        }
    }

    /** A stalled stdout reader stops that port's queue mid-chain (stderr goes on); room again resumes it, nothing lost. */
    @Test
    void aFullSinkStopsItsPortUntilItHasRoomAgain() {
        StalledStdout s = new StalledStdout();
        s.g.write(1, "h".getBytes());
        s.g.d.kick(transmitQueue(1));
        assertEquals("abc", s.out.toString(), "the second chain does not fit: it waits");
        assertEquals(1, s.g.d.usedIdx(transmitQueue(1)));
        s.g.write(2, "stderr is not held up".getBytes());
        s.g.d.kick(transmitQueue(2));
        assertEquals("stderr is not held up", s.err.toString());
        s.g.d.kick(transmitQueue(1)); // a notification while stalled changes nothing
        assertEquals("abc", s.out.toString());
        s.out.drain();
        assertEquals("abcdefg", s.out.toString());
        assertEquals(2, s.g.d.usedIdx(transmitQueue(1)));
        s.out.drain();
        assertEquals("abcdefgh", s.out.toString());
        assertEquals(3, s.g.d.usedIdx(transmitQueue(1)));
    }

    @Test
    void inputFlowsOnlyAfterTheGuestOpensThePortAndItsEndIsPortOpenZeroAfterTheLastByte() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        ConsoleEndpoint in = dev.input(0);
        int[] space = new int[1];
        in.onInputSpace(() -> space[0]++);
        byte[] data = {'h', 'i', 0, (byte) 0xff, '\n'};
        assertEquals(0, in.offer(data, 0, data.length), "not active");
        Guest g = new Guest(dev);
        g.handshake(3);
        assertEquals(0, space[0], "receive buffers of a port the guest has not opened do not count");
        assertEquals(0, in.offer(data, 0, data.length), "the guest has not opened the port: Linux would drop the bytes");
        assertArrayEquals(new byte[0], g.input(0));
        g.send(0, PORT_OPEN, 1);
        assertTrue(dev.guestOpen(0));
        assertEquals(1, space[0], "the guest's open lets input flow");
        assertEquals(data.length, in.offer(data, 0, data.length));
        assertArrayEquals(data, g.input(0));
        byte[] fill = new byte[64];
        assertEquals(64, in.offer(fill, 0, 64), "the second of the two 64-byte buffers");
        assertArrayEquals(fill, g.input(0));
        assertEquals(0, in.offer("abc".getBytes(), 0, 3), "no receive buffer left: the caller keeps the bytes");
        g.postReceive(0, 1, 3);
        assertEquals(2, space[0], "new receive buffers");
        assertEquals(3, in.offer("abc".getBytes(), 0, 3));
        int usedBefore = g.d.usedIdx(receiveQueue(0));
        in.endOfInput();
        List<Msg> ms = g.received();
        assertEquals(List.of(new Msg(0, PORT_OPEN, 0, new byte[0])).toString(), ms.toString());
        assertEquals(usedBefore, g.d.usedIdx(receiveQueue(0)), "the last byte was in a used buffer before the end");
        assertEquals("abc", new String(g.input(0)));
        g.postReceive(0, 1, 16);
        assertEquals(0, in.offer("late".getBytes(), 0, 4), "after the end nothing more goes in");
        in.endOfInput();
        assertEquals(List.of(), g.received(), "the end is told once");
    }

    @Test
    void anEndBeforeThePortIsReadyFollowsItsOpen() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        dev.input(0).endOfInput(); // stdin is /dev/null
        Guest g = new Guest(dev);
        List<Msg> ms = g.handshake(3);
        List<Msg> port0 = ms.stream().filter(m -> m.id() == 0 && m.event() != DEVICE_ADD).toList();
        assertEquals(List.of(PORT_NAME, PORT_OPEN, PORT_OPEN), events(port0));
        assertEquals(List.of(1, 1, 0), port0.stream().map(Msg::value).toList());
    }

    @Test
    void theGuestClosingAPortIsReported() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        List<String> seen = new ArrayList<>();
        dev.setPortListener(new PortListener() {
            @Override
            public void guestOpened(int port, String name) {
                seen.add("open " + port + " " + name);
            }

            @Override
            public void guestClosed(int port, String name) {
                seen.add("close " + port + " " + name);
            }
        });
        Guest g = new Guest(dev);
        g.handshake(3);
        g.send(1, PORT_OPEN, 1);
        g.send(1, PORT_OPEN, 0);
        assertEquals(List.of("open 1 jvmm.stdout", "close 1 jvmm.stdout"), seen);
        assertFalse(dev.guestOpen(1));
        assertEquals(0, dev.ignoredControlMessages());
    }

    @Test
    void hostileControlMessagesAreIgnoredAndCounted() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        Guest g = new Guest(dev);
        g.postControlBuffers(12, 64);
        g.send(0, PORT_READY, 1); // before DEVICE_ADD
        g.send(BAD_ID, DEVICE_READY, 0); // the driver failed: nothing to announce
        assertEquals(List.of(), g.received());
        g.send(BAD_ID, DEVICE_READY, 1);
        assertEquals(3, g.received().size());
        g.send(1, PORT_OPEN, 1); // before its PORT_READY
        long before = dev.ignoredControlMessages();
        assertEquals(3, before);
        g.sendRaw(new byte[] {0, 0, 0, 0}); // short
        g.sendRaw(new byte[] {0, 0, 0, 0, PORT_READY, 0, 1, 0, 0, 0, 0, 0}); // long
        g.sendRaw(new byte[0]);
        g.send(0, 99, 1); // unknown event
        g.send(3, PORT_READY, 1); // port id out of range
        g.send(BAD_ID, PORT_READY, 1);
        g.send(0x8000_0000L, PORT_OPEN, 1);
        for (int e : new int[] {DEVICE_ADD, DEVICE_REMOVE, CONSOLE_PORT, RESIZE, PORT_NAME}) g.send(0, e, 1); // the device's to send
        g.send(0, PORT_READY, 0); // the driver failed to add port 0
        g.send(1, PORT_READY, 1);
        assertEquals(List.of(PORT_NAME, PORT_OPEN), events(g.received()));
        g.send(1, PORT_OPEN, 7);
        g.send(1, PORT_OPEN, 0); // closing what is not open
        assertEquals(before + 15, dev.ignoredControlMessages());
        assertEquals(List.of(), g.received());
        assertFalse(dev.guestOpen(0) || dev.guestOpen(1));
        assertEquals(0, g.d.t.status() & STATUS_DEVICE_NEEDS_RESET, "ignored, not fatal");
        assertEquals(before + 15, dev.counters().get("control_ignored"));
    }

    @Test
    void aFloodOfPortReadysAddsNothingToWhatWaits() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        Guest g = new Guest(dev); // no control receive buffers: everything the device says waits
        g.send(BAD_ID, DEVICE_READY, 1);
        for (int i = 0; i < 1000; i++) {
            g.send(i % 3, PORT_READY, 1);
            g.send(BAD_ID, DEVICE_READY, 1);
            g.send(i % 3, PORT_OPEN, i & 1);
        }
        assertTrue(dev.pendingControlMessages() <= 3 * PENDING_PER_PORT, "bounded: " + dev.pendingControlMessages());
        assertEquals(3 + 3 * 2, dev.pendingControlMessages(), "three adds, a name and an open per port");
        assertEquals(3001, g.d.usedIdx(CONTROL_TRANSMITQ), "every message was returned");
        g.postControlBuffers(16, 64);
        assertEquals(9, g.received().size());
    }

    @Test
    void drainOutputsCallsBackOnlyAfterEveryFilledTransmitChainWasServed() {
        // the guest queued output and wrote its status; the ioeventfds have not been served yet
        StalledStdout s = new StalledStdout();
        s.g.write(2, "err".getBytes());
        int[] done = new int[1];
        s.dev.drainOutputs(() -> done[0]++);
        assertEquals("err", s.err.toString(), "the drain serves the queues itself");
        assertEquals("abc", s.out.toString());
        assertEquals(0, done[0], "stdout's second chain waits for room");
        s.out.drain();
        assertEquals("abcdefg", s.out.toString());
        assertEquals(1, done[0]);
        assertEquals(2, s.g.d.usedIdx(transmitQueue(1)));
        s.dev.drainOutputs(() -> done[0]++);
        assertEquals(2, done[0], "nothing queued: at once");
    }

    /** A chain the sink stopped in the middle of counts too, and so does every chain queued behind it. */
    @Test
    void drainOutputsWaitsForTheChainHalfSentAndThoseBehindIt() {
        StalledStdout s = new StalledStdout();
        s.g.d.kick(transmitQueue(1)); // "defg" is popped and waits for room
        s.g.write(1, "h".getBytes());
        int[] done = new int[1];
        s.dev.drainOutputs(() -> done[0]++);
        assertEquals(0, done[0]);
        s.out.drain();
        assertEquals("abcdefg", s.out.toString());
        assertEquals(0, done[0], "'h' was queued before the drain was asked for");
        s.out.drain();
        assertEquals("abcdefgh", s.out.toString());
        assertEquals(1, done[0]);
    }

    @Test
    void drainOutputsServesInTurnsOfTheBudget() {
        CollectingSink out = new CollectingSink();
        VirtioSerial dev = commandPorts(out, new CollectingSink());
        ArrayDeque<Runnable> later = new ArrayDeque<>();
        TestDriver d = new TestDriver(dev, TestDriver.memory(), later::add);
        d.qsize = 128; // the port queues only: the control queues are smaller, and no control message is needed
        assertTrue((d.negotiate(FEATURES) & STATUS_FEATURES_OK) != 0);
        for (int q : new int[] {0, 1, 4, 5, 6, 7}) d.setupQueue(q, 128);
        d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
        Guest g = new Guest(d);
        int chains = CHAINS_PER_TURN + 36;
        for (int i = 0; i < chains; i++) g.write(1, new byte[] {(byte) i});
        int[] done = new int[1];
        dev.drainOutputs(() -> done[0]++);
        assertEquals(0, out.bytes().length, "the drain is served on the loop's turn, not inside the call");
        int turns = 0;
        while (!later.isEmpty()) {
            later.poll().run();
            turns++;
            if (done[0] == 0) assertTrue(out.bytes().length < chains);
        }
        assertEquals(chains, out.bytes().length);
        assertEquals(1, done[0]);
        assertTrue(turns >= 2, "at most " + CHAINS_PER_TURN + " chains a turn: " + turns + " turn(s)");
    }

    @Test
    void drainOutputsIsDoneWhenNothingMoreCanBeServed() {
        CollectingSink out = new CollectingSink(1);
        VirtioSerial dev = commandPorts(out, new CollectingSink());
        int[] done = new int[1];
        dev.drainOutputs(() -> done[0]++);
        assertEquals(1, done[0], "not active");
        Guest g = new Guest(dev);
        g.handshake(3);
        g.write(1, "xyz".getBytes());
        dev.drainOutputs(() -> done[0]++);
        assertEquals(1, done[0]);
        g.d.w(STATUS, 0); // the guest resets the device: the chain is gone
        assertEquals(2, done[0]);
    }

    @Test
    void aResetStartsTheHandshakeOver() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        Guest g = new Guest(dev);
        g.handshake(3);
        g.send(0, PORT_OPEN, 1);
        assertTrue(dev.guestOpen(0));
        Guest again = new Guest(g.d.init(FEATURES, 16));
        assertFalse(dev.guestOpen(0));
        assertEquals(9, again.handshake(3).size());
        assertEquals(0, dev.ignoredControlMessages());
    }

    @Test
    void aDriverWithoutMultiportGetsPortZeroAsAPlainConsole() {
        CollectingSink out = new CollectingSink();
        VirtioSerial dev = new VirtioSerial(List.of(new PortConfig("jvmm.console", true, out), PortConfig.output("other", new CollectingSink())));
        Guest g = new Guest(new TestDriver(dev).init(1L << F_VERSION_1, 16));
        g.postReceive(0, 1, 16);
        assertEquals(5, dev.input(0).offer("hello".getBytes(), 0, 5), "connected from the start");
        assertEquals("hello", new String(g.input(0)));
        g.write(0, "out".getBytes());
        g.d.kick(transmitQueue(0));
        assertEquals("out", out.toString());
        g.d.kick(CONTROL_TRANSMITQ); // no control queues without MULTIPORT
        assertEquals(0, g.d.t.status() & STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void guestWritesToAPortWithoutASinkAreDiscardedAndCounted() {
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        Guest g = new Guest(dev);
        g.handshake(3);
        g.write(0, "to stdin?".getBytes());
        g.d.kick(transmitQueue(0));
        assertEquals(1, g.d.usedIdx(transmitQueue(0)), "the queue does not fill up");
        assertEquals(9, dev.counters().get("discarded_bytes"));
    }

    @Test
    void portConfigurationIsChecked() {
        assertThrows(IllegalArgumentException.class, () -> new VirtioSerial(List.of()));
        assertThrows(IllegalArgumentException.class, () -> PortConfig.input("with space"));
        assertThrows(IllegalArgumentException.class, () -> PortConfig.input(""));
        assertThrows(IllegalArgumentException.class, () -> PortConfig.input("x".repeat(MAX_NAME_BYTES + 1)));
        assertThrows(IllegalArgumentException.class, () -> new VirtioSerial(List.of(PortConfig.input("a"), PortConfig.input("a"))));
        VirtioSerial dev = commandPorts(new CollectingSink(), new CollectingSink());
        assertThrows(IllegalArgumentException.class, () -> dev.input(1), "stdout has no host input");
        assertEquals(2, dev.portId("jvmm.stderr"));
        assertEquals(-1, dev.portId("nope"));
    }
}
