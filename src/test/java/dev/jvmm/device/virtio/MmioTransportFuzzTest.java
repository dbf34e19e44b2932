package dev.jvmm.device.virtio;

import static dev.jvmm.device.virtio.VirtioMmioTransport.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jvmm.memory.GuestMemory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

/**
 * Jazzer targets for the virtio-mmio register interface with each device model behind it: register
 * reads and writes, guest memory contents, queue notifications and host-side events, all chosen by
 * the fuzzer. Invariants: no access throws; the magic, version and device id never change; only the
 * two defined interrupt bits are ever set; DEVICE_NEEDS_RESET always comes with a reason; a reset
 * always works; what the devices hand the host lies within its buffers; nothing beyond guest RAM is
 * touched.
 */
class MmioTransportFuzzTest {
    static final long MEM = 256 * 1024;
    static final long GUARD = 4096;
    static final long QUEUES = 0x10000;   // queue q's rings at QUEUES + q * 0x4000
    static final MemorySegment HOST = Arena.ofAuto().allocate(MEM + GUARD, 4096);
    static final MemorySegment GUARD_PATTERN = Arena.ofAuto().allocate(GUARD).fill((byte) 0xa5);
    static final GuestMemory MEMORY = GuestMemory.wrap(List.of(new GuestMemory.Region(0, MEM, HOST.asSlice(0, MEM))));
    static final int[] REGISTERS = {MAGIC_VALUE, VERSION, DEVICE_ID, VENDOR_ID, DEVICE_FEATURES, DEVICE_FEATURES_SEL,
        DRIVER_FEATURES, DRIVER_FEATURES_SEL, QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM, QUEUE_READY, QUEUE_NOTIFY,
        INTERRUPT_STATUS, INTERRUPT_ACK, STATUS, QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_DRIVER_LOW, QUEUE_DRIVER_HIGH,
        QUEUE_DEVICE_LOW, QUEUE_DEVICE_HIGH, SHM_SEL, SHM_LEN_LOW, SHM_LEN_HIGH, SHM_BASE_LOW, SHM_BASE_HIGH,
        CONFIG_GENERATION, CONFIG, CONFIG + 4, CONFIG + 8};

    static final Path DISK;

    static {
        try {
            DISK = Files.createTempFile("jvmm-fuzz-disk", ".img");
            Files.write(DISK, new byte[64 * 1024]);
            DISK.toFile().deleteOnExit();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static long queueBase(int q) {
        return QUEUES + q * 0x4000L;
    }

    /** Runs one fuzzer-chosen session against {@code device}; {@code hostEvent} pokes it from the host side. */
    static void session(FuzzedDataProvider d, VirtioDevice device, Consumer<FuzzedDataProvider> hostEvent) {
        HOST.fill((byte) 0);
        HOST.asSlice(MEM, GUARD).fill((byte) 0xa5);
        VirtioMmioTransport t = new VirtioMmioTransport(device, MEMORY, VirtioInterrupt.NONE);
        Driver driver = new Driver(t.queueCount());
        int id = device.deviceId();
        for (int op = 0; op < 64 && d.remainingBytes() > 0; op++) {
            switch (d.consumeInt(0, 7)) {
                case 0 -> t.write(offset(d), size(d), d.consumeLong());
                case 1 -> {
                    int size = size(d);
                    long v = t.read(offset(d), size);
                    if (size < 8) assertEquals(0, v >>> (8 * size), "a " + size + "-byte read returned " + v);
                }
                case 2 -> {   // the driver writes guest memory: descriptors, rings, buffers
                    byte[] b = d.consumeBytes(d.consumeInt(0, 256));
                    long at = d.consumeLong(0, MEM - b.length);
                    MEMORY.write(at, b);
                }
                case 3 -> t.notify(d.consumeInt(-1, t.queueCount()));
                case 4 -> setUp(d, t, driver);
                case 5 -> hostEvent.accept(d);
                case 6 -> driver.submit(d, t);
                default -> t.write(STATUS, 4, d.consumeInt(0, 0xff));
            }
            assertEquals(MAGIC, (int) t.read(MAGIC_VALUE, 4));
            assertEquals(2, (int) t.read(VERSION, 4));
            assertEquals(id, (int) t.read(DEVICE_ID, 4));
            assertEquals(0, t.interruptStatus() & ~(INT_USED_BUFFER | INT_CONFIG_CHANGE), "interrupt status");
            if ((t.status() & STATUS_DEVICE_NEEDS_RESET) != 0) assertNotNull(t.lastError(), "a reset has a reason");
        }
        t.write(STATUS, 4, 0);   // a reset always works
        assertEquals(0, t.status());
        assertEquals(-1, HOST.asSlice(MEM, GUARD).mismatch(GUARD_PATTERN), "a guard byte after guest RAM changed");
    }

    static long offset(FuzzedDataProvider d) {
        return d.consumeBoolean() ? REGISTERS[d.consumeInt(0, REGISTERS.length - 1)] : d.consumeLong(-8, WINDOW_SIZE + 8);
    }

    static int size(FuzzedDataProvider d) {
        return d.consumeInt(0, 7) == 0 ? d.consumeInt(0, 9) : 4;
    }

    /** The usual driver initialisation with fuzzer-chosen features and queue sizes: reaches DRIVER_OK quickly. */
    static void setUp(FuzzedDataProvider d, VirtioMmioTransport t, Driver driver) {
        t.write(STATUS, 4, 0);
        t.write(STATUS, 4, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        long offered = 0;
        for (int sel = 0; sel < 2; sel++) {
            t.write(DEVICE_FEATURES_SEL, 4, sel);
            offered |= (t.read(DEVICE_FEATURES, 4) & 0xffff_ffffL) << (32 * sel);
        }
        long features = offered & d.consumeLong() | (1L << F_VERSION_1);
        for (int sel = 0; sel < 2; sel++) {
            t.write(DRIVER_FEATURES_SEL, 4, sel);
            t.write(DRIVER_FEATURES, 4, features >>> (32 * sel));
        }
        t.write(STATUS, 4, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        for (int q = 0; q < t.queueCount(); q++) {
            t.write(QUEUE_SEL, 4, q);
            driver.size[q] = 1 << d.consumeInt(0, 8);
            driver.avail[q] = 0;
            driver.next[q] = 0;
            t.write(QUEUE_NUM, 4, driver.size[q]);
            long base = queueBase(q);
            t.write(QUEUE_DESC_LOW, 4, base);
            t.write(QUEUE_DRIVER_LOW, 4, base + 0x2000);
            t.write(QUEUE_DEVICE_LOW, 4, base + 0x3000);
            t.write(QUEUE_READY, 4, 1);
        }
        t.write(STATUS, 4, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    }

    /**
     * A driver's view of the queues {@link #setUp} made: it writes chains of fuzzer-chosen buffers in
     * the data area (so the device models see well-formed requests often, not only garbage rings),
     * makes them available and notifies.
     */
    static final class Driver {
        static final long DATA = 0x30000;
        final int[] size;
        final int[] avail;
        final int[] next;

        Driver(int queues) {
            size = new int[queues];
            avail = new int[queues];
            next = new int[queues];
        }

        void submit(FuzzedDataProvider d, VirtioMmioTransport t) {
            if (size.length == 0) return;
            int q = d.consumeInt(0, size.length - 1);
            int n = size[q];
            if (n == 0) return;   // not set up
            long base = queueBase(q);
            int count = Math.min(n, d.consumeInt(1, 4));
            int head = next[q];
            for (int i = 0; i < count; i++) {
                int idx = (head + i) % n;
                byte[] content = d.consumeBytes(d.consumeInt(0, 64));
                long addr = DATA + d.consumeInt(0, 0x3ff) * 64L;
                MEMORY.write(addr, content);
                int len = d.consumeBoolean() ? content.length : d.consumeInt(0, 0x20000);
                boolean write = d.consumeBoolean();
                MemorySegment desc = MEMORY.slice(base + 16L * idx, 16);
                desc.set(TestDriver.U64, 0, addr);
                desc.set(TestDriver.U32, 8, (int) Math.min(len, MEM - addr));
                desc.set(TestDriver.U16, 12, (short) ((write ? SplitVirtqueue.DESC_F_WRITE : 0)
                        | (i + 1 < count ? SplitVirtqueue.DESC_F_NEXT : 0)));
                desc.set(TestDriver.U16, 14, (short) ((idx + 1) % n));
            }
            next[q] = (head + count) % n;
            MemorySegment ring = MEMORY.slice(base + 0x2000, 6 + 2L * n);
            ring.set(TestDriver.U16, 4 + 2L * (avail[q] % n), (short) head);
            avail[q] = (avail[q] + 1) & 0xffff;
            ring.set(TestDriver.U16, 2, (short) avail[q]);
            t.notify(q);
        }
    }

    @FuzzTest(maxDuration = "30s")
    void rng(FuzzedDataProvider d) {
        session(d, new VirtioRng(), x -> { });
    }

    @FuzzTest(maxDuration = "30s")
    void block(FuzzedDataProvider d) throws IOException {
        boolean readOnly = d.consumeBoolean();
        byte[] before = Files.readAllBytes(DISK);
        try (VirtioBlock blk = new VirtioBlock(DISK, readOnly, "fuzz")) {
            session(d, blk, x -> { });
        }
        byte[] after = Files.readAllBytes(DISK);
        assertEquals(before.length, after.length, "the guest changed the image's size");
        if (readOnly) assertTrue(java.util.Arrays.equals(before, after), "a read-only image was written");
    }

    @FuzzTest(maxDuration = "30s")
    void console(FuzzedDataProvider d) {
        VirtioConsole console = new VirtioConsole(new dev.jvmm.device.ByteSink() {
            @Override
            public boolean offer(byte[] b, int off, int len) {
                assertTrue(off >= 0 && len >= 0 && off + len <= b.length, "console output within its buffer");
                return true;
            }

            @Override
            public void put(int b) {
            }

            @Override
            public void onSpace(Runnable listener) {
            }
        });
        session(d, console, x -> {
            byte[] in = x.consumeBytes(x.consumeInt(0, 300));
            int n = console.offer(in, 0, in.length);
            assertTrue(n >= 0 && n <= in.length, "offer took " + n + " of " + in.length);
        });
    }

    @FuzzTest(maxDuration = "30s")
    void net(FuzzedDataProvider d) {
        VirtioNet net = new VirtioNet(new byte[] {0x52, 0x54, 0, 1, 2, 3}, (p, len) -> {
            assertTrue(len >= VirtioNet.MIN_PACKET && len <= VirtioNet.MAX_PACKET && len <= p.length,
                    "sent packet of " + len + " bytes");
            return len;
        });
        session(d, net, x -> {
            byte[] packet = x.consumeBytes(x.consumeInt(0, 2000));
            int r = net.deliver(packet, x.consumeInt(0, packet.length));
            assertTrue(r == VirtioNet.DELIVERED || r == VirtioNet.NO_BUFFER || r == VirtioNet.DROPPED, "deliver " + r);
        });
    }
}
