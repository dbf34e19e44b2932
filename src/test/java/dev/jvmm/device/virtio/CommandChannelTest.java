package dev.jvmm.device.virtio;

import dev.jvmm.device.BrokenPipe;
import dev.jvmm.device.virtio.VirtioSerialTest.Guest;
import dev.jvmm.device.virtio.VirtioSerialTest.Msg;
import dev.jvmm.event.EventLoop;
import dev.jvmm.sys.LibC;
import dev.jvmm.vmm.CommandChannel;
import dev.jvmm.vmm.ExitStatus;
import dev.jvmm.vmm.Stop;
import dev.jvmm.vmm.StopCause;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static dev.jvmm.device.virtio.VirtioSerial.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link CommandChannel} (in dev.jvmm.vmm) with a real event loop on its own thread and the test
 * driver of this package as the guest. Guest steps hold the device lock, as the device does for
 * everything, so the test thread and the loop see each other's ring writes in order.
 */
class CommandChannelTest {
    /** An output stream that takes bytes only once opened (a reader that is slow, then reads). */
    static final class Gate extends OutputStream {
        private final ByteArrayOutputStream got = new ByteArrayOutputStream();
        private final CountDownLatch open;

        Gate(boolean open) {
            this.open = new CountDownLatch(open ? 0 : 1);
        }

        void open() {
            open.countDown();
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            try {
                open.await();
            } catch (InterruptedException e) {
                throw new IOException(e);
            }
            synchronized (this) {
                got.write(b, off, len);
            }
        }

        synchronized byte[] bytes() {
            return got.toByteArray();
        }
    }

    /** The run: a channel, its loop thread, and what ended it (with stdout as it was at that moment). */
    static final class Run implements AutoCloseable {
        final EventLoop loop = new EventLoop();
        final AtomicBoolean ending = new AtomicBoolean();
        final List<Stop> stops = Collections.synchronizedList(new ArrayList<>());
        final List<byte[]> stdoutAtStop = Collections.synchronizedList(new ArrayList<>());
        final Gate out, err;
        final CommandChannel channel;
        Thread loopThread;

        Run(Gate out, Gate err) {
            this.out = out;
            this.err = err;
            channel = new CommandChannel(loop, out, err, s -> {
                stdoutAtStop.add(out.bytes());
                stops.add(s);
                end();
            }, ending::get);
        }

        void start() {
            loopThread = new Thread(() -> loop.run(ending::get), "test loop");
            loopThread.start();
        }

        void end() {
            ending.set(true);
            loop.wake();
        }

        VirtioSerial device() {
            return channel.device();
        }

        @Override
        public void close() throws Exception {
            end();
            if (loopThread != null) loopThread.join(5000);
            out.open();
            err.open();
            device().close();
            loop.close();
        }
    }

    static Thread vcpuWritesStatus(CommandChannel channel, long status) {
        Thread t = new Thread(() -> channel.statusPort().write(0, 4, status), "test vcpu");
        t.start();
        return t;
    }

    @Test
    void theStatusEndsTheRunOnlyAfterTheLastOutputWasWrittenOut() throws Exception {
        try (Run run = new Run(new Gate(false), new Gate(true))) {
            run.channel.noStdin();
            run.start();
            byte[] last = new byte[100_000];
            new Random(5).nextBytes(last);
            synchronized (run.device()) {
                Guest g = new Guest(run.device());
                g.handshake(3);
                g.write(CommandChannel.STDOUT, "first\n".getBytes());
                g.d.kick(transmitQueue(CommandChannel.STDOUT));
                // the command's last writes are in the queues, their notifications not served yet
                g.write(CommandChannel.STDOUT, last);
                g.write(CommandChannel.STDERR, "bye\n".getBytes());
            }
            Thread vcpu = vcpuWritesStatus(run.channel, 7);
            vcpu.join(300);
            assertTrue(vcpu.isAlive(), "the vCPU waits while stdout's reader has not read");
            assertEquals(List.of(), run.stops);
            run.out.open();
            vcpu.join(5000);
            assertFalse(vcpu.isAlive());
            assertEquals(1, run.stops.size());
            Stop s = run.stops.get(0);
            assertEquals(StopCause.COMMAND_EXITED, s.cause());
            assertEquals(7, s.exitStatus());
            assertEquals("the command exited with status 7", s.reason());
            assertFalse(s.worthReporting(), "the command's own verdict, not jvmm's failure");
            ByteArrayOutputStream expected = new ByteArrayOutputStream();
            expected.writeBytes("first\n".getBytes());
            expected.writeBytes(last);
            assertArrayEquals(expected.toByteArray(), run.stdoutAtStop.get(0), "all of stdout was out when the run ended");
            assertEquals("bye\n", new String(run.err.bytes()));
            assertTrue(run.channel.statusReported());
        }
    }

    @Test
    void aWaitingVcpuLetsGoWhenTheRunEndsAnyway() throws Exception {
        try (Run run = new Run(new Gate(false), new Gate(true))) {
            run.channel.noStdin();
            run.start();
            synchronized (run.device()) {
                Guest g = new Guest(run.device());
                g.handshake(3);
                g.write(CommandChannel.STDOUT, "never read".getBytes());
            }
            Thread vcpu = vcpuWritesStatus(run.channel, 0);
            vcpu.join(200);
            assertTrue(vcpu.isAlive());
            run.end(); // --timeout, a signal
            vcpu.join(2000);
            assertFalse(vcpu.isAlive(), "the vCPU looks at the run's end while it waits");
        }
    }

    @Test
    void aStatusWithNothingQueuedEndsTheRunAtOnce() throws Exception {
        try (Run run = new Run(new Gate(true), new Gate(true))) {
            run.channel.noStdin();
            run.start();
            Thread vcpu = vcpuWritesStatus(run.channel, 0x1_0000); // garbage from a broken guest
            vcpu.join(5000);
            assertFalse(vcpu.isAlive());
            assertEquals(125, run.stops.get(0).exitStatus(), "never a success");
        }
    }

    @Test
    void stdinGoesToTheCommandAfterItOpensThePortAndItsEofFollowsTheLastByte(@TempDir Path tmp) throws Exception {
        byte[] input = new byte[20_000];
        new Random(9).nextBytes(input);
        input[0] = 0;
        input[input.length - 1] = (byte) 0xff;
        Path f = tmp.resolve("stdin");
        Files.write(f, input);
        int fd = LibC.open(f.toString(), LibC.O_RDONLY);
        assertTrue(fd >= 0);
        try (Run run = new Run(new Gate(true), new Gate(true))) {
            run.channel.readStdin(fd);
            run.start();
            Guest g;
            synchronized (run.device()) {
                g = new Guest(run.device());
                g.handshake(3);
            }
            Thread.sleep(50);
            synchronized (run.device()) {
                assertArrayEquals(new byte[0], g.input(CommandChannel.STDIN), "nothing before the guest opens the port");
                g.send(CommandChannel.STDIN, PORT_OPEN, 1);
            }
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            boolean eof = false;
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (!eof && System.nanoTime() < deadline) {
                synchronized (run.device()) {
                    for (Msg m : g.received()) {
                        if (m.id() == CommandChannel.STDIN && m.event() == PORT_OPEN && m.value() == 0) eof = true;
                    }
                    got.writeBytes(g.input(CommandChannel.STDIN)); // after the end was seen: all data is in used buffers
                    long outstanding = g.rxBufs.keySet().stream().filter(k -> k >> 16 == receiveQueue(CommandChannel.STDIN)).count();
                    if (!eof && outstanding < 4) g.postReceive(CommandChannel.STDIN, 4, 512);
                }
                Thread.sleep(1);
            }
            assertTrue(eof, "the end of stdin reached the guest");
            assertArrayEquals(input, got.toByteArray());
        } finally {
            LibC.close(fd);
        }
    }

    @Test
    void aFailedWriteEndsTheRunAsAnOutputFailure() throws Exception {
        OutputStream broken = new BrokenPipe();
        EventLoop loop = new EventLoop();
        List<Stop> stops = Collections.synchronizedList(new ArrayList<>());
        CommandChannel ch = new CommandChannel(loop, broken, new Gate(true), stops::add, () -> false);
        try {
            ch.noStdin();
            Guest g = new Guest(ch.device());
            g.handshake(3);
            g.write(CommandChannel.STDOUT, "x".getBytes());
            g.d.kick(transmitQueue(CommandChannel.STDOUT));
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (stops.isEmpty() && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(1, stops.size());
            assertEquals(StopCause.OUTPUT_FAILED, stops.get(0).cause());
            assertEquals(ExitStatus.OUTPUT_FAILED, stops.get(0).exitStatus());
            assertEquals("cannot write the command's stdout to stdout: Broken pipe", stops.get(0).reason());
        } finally {
            ch.device().close();
            loop.close();
        }
    }
}
