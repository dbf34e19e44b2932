package dev.jvmm.device.virtio;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static dev.jvmm.device.virtio.VirtioMmioTransport.*;
import static org.junit.jupiter.api.Assertions.*;

class VirtioMmioTransportTest {
    /** A device with an 8-byte config and two queues that completes every chain with 0 bytes. */
    static final class Dummy extends AbstractVirtioDevice {
        final List<Long> activations = new ArrayList<>();
        int resets;
        byte lastWrite;

        Dummy() {
            super(42, 8, 2, 32);
            config.putLong(0, 0x8877665544332211L);
        }

        public long deviceFeatures() { return 1L << 3; }
        @Override
        public int queueMaxSize(int q) { return q == 0 ? 16 : 32; }

        @Override
        public synchronized void writeConfig(int offset, int size, long value) {
            lastWrite = (byte) value;
        }

        @Override
        public synchronized void activate(Transport host, List<SplitVirtqueue> queues, long features) {
            super.activate(host, queues, features);
            activations.add(features);
        }

        @Override
        public synchronized void reset() {
            super.reset();
            resets++;
        }

        public synchronized void notify(int q) throws VirtqueueException {
            SplitVirtqueue vq = queue(q);
            DescriptorChain c;
            while ((c = vq.pop()) != null) vq.addUsed(c, 0);
        }
    }

    @Test
    void identificationRegisters() {
        TestDriver d = new TestDriver(new Dummy());
        assertEquals(0x74726976, d.r(MAGIC_VALUE));
        assertEquals(2, d.r(VERSION));
        assertEquals(42, d.r(DEVICE_ID));
        assertEquals(0x4d564a, d.r(VENDOR_ID));
        d.w(DEVICE_FEATURES_SEL, 0);
        assertEquals((1 << 3) | (1 << 28) | (1 << 29), d.r(DEVICE_FEATURES));
        d.w(DEVICE_FEATURES_SEL, 1);
        assertEquals(1, d.r(DEVICE_FEATURES)); // VERSION_1
        d.w(DEVICE_FEATURES_SEL, 2);
        assertEquals(0, d.r(DEVICE_FEATURES));
        d.w(QUEUE_SEL, 0);
        assertEquals(16, d.r(QUEUE_NUM_MAX));
        d.w(QUEUE_SEL, 1);
        assertEquals(32, d.r(QUEUE_NUM_MAX));
        d.w(QUEUE_SEL, 2);
        assertEquals(0, d.r(QUEUE_NUM_MAX));
        assertEquals(-1, d.r(SHM_LEN_LOW));
    }

    @Test
    void nonWordRegisterAccessesAreIgnored() {
        TestDriver d = new TestDriver(new Dummy());
        assertEquals(0, d.t.read(MAGIC_VALUE, 2));
        assertEquals(0, d.t.read(MAGIC_VALUE, 8));
        assertEquals(0, d.t.read(MAGIC_VALUE + 1, 4));
        d.t.write(STATUS, 1, STATUS_ACKNOWLEDGE);
        assertEquals(0, d.r(STATUS));
    }

    @Test
    void configSpaceAnySize() {
        Dummy dev = new Dummy();
        TestDriver d = new TestDriver(dev);
        assertEquals(0x11, d.t.read(CONFIG, 1));
        assertEquals(0x3322, d.t.read(CONFIG + 1, 2));
        assertEquals(0x88776655L, d.t.read(CONFIG + 4, 4));
        assertEquals(0x8877665544332211L, d.t.read(CONFIG, 8));
        assertEquals(0, d.t.read(CONFIG + 6, 4), "past the end of config");
        assertEquals(0, d.t.read(CONFIG + 0x80, 1));
        d.t.write(CONFIG + 2, 1, 0x5a);
        assertEquals(0x5a, dev.lastWrite);
    }

    @Test
    void featuresOkNeedsVersion1() {
        TestDriver d = new TestDriver(new Dummy());
        int s = d.negotiate(1L << 3);
        assertEquals(0, s & STATUS_FEATURES_OK, "legacy driver refused");
        s = d.negotiate((1L << F_VERSION_1) | (1L << 3));
        assertNotEquals(0, s & STATUS_FEATURES_OK);
        assertEquals((1L << F_VERSION_1) | (1L << 3), d.t.negotiatedFeatures());
    }

    @Test
    void featuresOkRefusedForUnofferedFeature() {
        TestDriver d = new TestDriver(new Dummy());
        d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        d.w(DRIVER_FEATURES_SEL, 0);
        d.w(DRIVER_FEATURES, 1 << 4); // not offered
        d.w(DRIVER_FEATURES_SEL, 1);
        d.w(DRIVER_FEATURES, 1);
        d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_DRIVER, d.r(STATUS));
        d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
        assertEquals(0, d.r(STATUS) & STATUS_DRIVER_OK, "no DRIVER_OK without FEATURES_OK");
    }

    @Test
    void featuresFrozenAfterFeaturesOk() {
        TestDriver d = new TestDriver(new Dummy());
        d.negotiate(1L << F_VERSION_1);
        d.w(DRIVER_FEATURES_SEL, 0);
        d.w(DRIVER_FEATURES, 1 << 3);
        assertEquals(1L << F_VERSION_1, d.t.negotiatedFeatures());
    }

    @Test
    void driverOkActivatesAndZeroResets() {
        Dummy dev = new Dummy();
        TestDriver d = new TestDriver(dev).init();
        assertEquals(List.of(1L << F_VERSION_1), dev.activations);
        assertEquals((STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK), d.r(STATUS));
        d.w(QUEUE_SEL, 0);
        assertEquals(1, d.r(QUEUE_READY));
        d.submit(0, TestDriver.Buf.w(d.alloc(8), 8));
        d.kick(0);
        assertEquals(1, d.r(INTERRUPT_STATUS));
        d.w(STATUS, 0);
        assertEquals(1, dev.resets);
        assertEquals(0, d.r(STATUS));
        assertEquals(0, d.r(INTERRUPT_STATUS));
        assertEquals(0, d.r(QUEUE_READY));
        assertEquals(16, d.r(QUEUE_NUM));
        assertEquals(0, d.r(QUEUE_DESC_LOW));
        assertEquals(0, d.t.negotiatedFeatures());
        d.init(); // works again
        assertEquals(2, dev.activations.size());
    }

    @Test
    void statusBitsAreNotCleared() {
        TestDriver d = new TestDriver(new Dummy());
        d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        d.w(STATUS, STATUS_ACKNOWLEDGE);
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_DRIVER, d.r(STATUS));
        d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DEVICE_NEEDS_RESET);
        assertEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET, "the driver cannot set NEEDS_RESET");
        d.w(STATUS, STATUS_FAILED);
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FAILED, d.r(STATUS));
    }

    /** A driver that negotiated VERSION_1 and made queue 0 ready with {@code size} entries, before DRIVER_OK. */
    private static TestDriver queueZeroReady(int size) {
        TestDriver d = new TestDriver(new Dummy());
        d.negotiate(1L << F_VERSION_1);
        d.qsize = size;
        d.setupQueue(0, size);
        return d;
    }

    @Test
    void queueRegistersFrozenWhileReady() {
        TestDriver d = queueZeroReady(8);
        assertEquals(1, d.r(QUEUE_READY));
        d.w(QUEUE_NUM, 4);
        d.w(QUEUE_DESC_LOW, 0x1234000);
        assertEquals(8, d.r(QUEUE_NUM));
        assertEquals((int) TestDriver.descAddr(0), d.r(QUEUE_DESC_LOW));
        d.w(QUEUE_READY, 0); // allowed before DRIVER_OK
        assertEquals(0, d.r(QUEUE_READY));
        d.w(QUEUE_NUM, 4);
        assertEquals(4, d.r(QUEUE_NUM));
    }

    @Test
    void badQueueSizeNeedsReset() {
        for (int size : new int[] {0, 3, 12, 32, 1 << 20}) {
            TestDriver d = new TestDriver(new Dummy());
            d.negotiate(1L << F_VERSION_1);
            d.setupQueue(0, size);
            assertEquals(0, d.r(QUEUE_READY), "size " + size);
            assertNotEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET);
            assertEquals(INT_CONFIG_CHANGE, d.r(INTERRUPT_STATUS));
            assertEquals(1, d.interrupts);
            d.w(STATUS, 0);
            assertEquals(0, d.r(STATUS));
        }
    }

    @Test
    void badRingAddressesNeedReset() {
        long[][] cases = {
                {0x10008, 0x14000, 0x18000},          // descriptor table misaligned
                {0x10000, 0x14001, 0x18000},          // avail misaligned
                {0x10000, 0x14000, 0x18002},          // used misaligned
                {TestDriver.MEM_SIZE - 16, 0x14000, 0x18000}, // table runs past RAM
                {0x10000, 0x14000, 0x7_0000_0000L},  // used far outside RAM
        };
        for (long[] c : cases) {
            TestDriver d = new TestDriver(new Dummy());
            d.negotiate(1L << F_VERSION_1);
            d.w(QUEUE_SEL, 0);
            d.w(QUEUE_NUM, 16);
            d.w(QUEUE_DESC_LOW, (int) c[0]);
            d.w(QUEUE_DESC_HIGH, (int) (c[0] >>> 32));
            d.w(QUEUE_DRIVER_LOW, (int) c[1]);
            d.w(QUEUE_DEVICE_LOW, (int) c[2]);
            d.w(QUEUE_DEVICE_HIGH, (int) (c[2] >>> 32));
            d.w(QUEUE_READY, 1);
            assertEquals(0, d.r(QUEUE_READY));
            assertNotEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET);
            assertNotNull(d.t.lastError());
        }
    }

    @Test
    void interruptAckClearsBits() {
        TestDriver d = new TestDriver(new Dummy()).init();
        d.submit(0, TestDriver.Buf.w(d.alloc(8), 8));
        d.kick(0);
        assertEquals(INT_USED_BUFFER, d.r(INTERRUPT_STATUS));
        assertEquals(1, d.interrupts);
        d.w(INTERRUPT_ACK, INT_USED_BUFFER);
        assertEquals(0, d.r(INTERRUPT_STATUS));
    }

    @Test
    void mmioQueueNotifyWorksLikeIoeventfd() {
        Dummy dev = new Dummy();
        TestDriver d = new TestDriver(dev).init();
        d.submit(1, TestDriver.Buf.w(d.alloc(8), 8));
        d.w(QUEUE_NOTIFY, 1);
        assertEquals(1, d.usedIdx(1));
        assertEquals(1L, dev.counters().get("notifications"));
        assertEquals(1L, dev.counters().get("interrupts"));
        d.w(QUEUE_NOTIFY, 7); // no such queue: ignored
        d.kick(-1);
        assertEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void notifyBeforeDriverOkIsIgnored() {
        TestDriver d = queueZeroReady(16);
        d.submit(0, TestDriver.Buf.w(d.alloc(8), 8));
        d.kick(0);
        assertEquals(0, d.usedIdx(0));
    }

    @Test
    void malformedChainNeedsResetAndConfigInterrupt() {
        TestDriver d = new TestDriver(new Dummy()).init();
        d.writeDesc(TestDriver.descAddr(0), 0, 0x1000, 8, SplitVirtqueue.DESC_F_NEXT, 0); // loops on itself
        d.publish(0, 0);
        d.kick(0);
        assertNotEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET);
        assertEquals(INT_CONFIG_CHANGE, d.r(INTERRUPT_STATUS) & INT_CONFIG_CHANGE);
        assertTrue(d.t.lastError().contains("loop"), d.t.lastError());
        d.kick(0); // ignored while broken
        d.init();
        d.submit(0, TestDriver.Buf.w(d.alloc(8), 8));
        d.kick(0);
        assertEquals(1, d.usedIdx(0));
        assertEquals(0, d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET);
    }
}
