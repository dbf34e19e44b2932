package dev.jvmm.vmm;

import dev.jvmm.device.Bus;
import dev.jvmm.device.BusDevice;
import dev.jvmm.kvm.KvmRun;
import dev.jvmm.sys.KvmApi;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The port and MMIO exit dispatch on a plain segment laid out as a kvm_run: no KVM needed. */
class IoExitsTest {
    static final long MAP = 4096;
    static final long DATA = KvmApi.KVM_RUN.byteSize(); // where KVM puts port data: after the struct

    /** Records every access; reads return 0x12345678... shifted to the size. */
    static final class Recorder implements BusDevice {
        final List<String> log = new ArrayList<>();

        @Override
        public long read(long offset, int size) {
            log.add("r" + size + "@" + offset);
            return 0x1122334455667788L;
        }

        @Override
        public void write(long offset, int size, long value) {
            log.add("w" + size + "@" + offset + "=" + Long.toHexString(value));
        }
    }

    final Arena arena = Arena.ofAuto();
    final MemorySegment seg = arena.allocate(MAP, 8);
    final KvmRun run = new KvmRun(seg);
    final Bus pio = new Bus("pio", 0x10000);
    final Bus mmio = new Bus("mmio", Long.MAX_VALUE);
    final VcpuStats stats = new VcpuStats();
    final IoExits io = new IoExits(pio, mmio, stats);
    final Recorder onePort = new Recorder();
    final Recorder window = new Recorder();

    IoExitsTest() {
        pio.register("one", 0x80, 1, onePort);
        mmio.register("win", 0xd000_0000L, 0x200, window);
    }

    private void portExit(boolean out, int size, int port, int count, long dataOffset) {
        seg.set(JAVA_INT, KvmApi.RUN_EXIT_REASON, KvmApi.KVM_EXIT_IO);
        seg.set(JAVA_BYTE, KvmApi.RUN_IO_DIRECTION, (byte) (out ? KvmApi.KVM_EXIT_IO_OUT : KvmApi.KVM_EXIT_IO_IN));
        seg.set(JAVA_BYTE, KvmApi.RUN_IO_SIZE, (byte) size);
        seg.set(JAVA_SHORT, KvmApi.RUN_IO_PORT, (short) port);
        seg.set(JAVA_INT, KvmApi.RUN_IO_COUNT, count);
        seg.set(JAVA_LONG, KvmApi.RUN_IO_DATA_OFFSET, dataOffset);
    }

    private void mmioExit(boolean write, long addr, int len) {
        seg.set(JAVA_INT, KvmApi.RUN_EXIT_REASON, KvmApi.KVM_EXIT_MMIO);
        seg.set(JAVA_LONG, KvmApi.RUN_MMIO_PHYS_ADDR, addr);
        seg.set(JAVA_INT, KvmApi.RUN_MMIO_LEN, len);
        seg.set(JAVA_BYTE, KvmApi.RUN_MMIO_IS_WRITE, (byte) (write ? 1 : 0));
    }

    @Test
    void aByteOutReachesTheDevice() {
        seg.set(JAVA_BYTE, DATA, (byte) 0x5a);
        portExit(true, 1, 0x80, 1, DATA);
        assertNull(io.handleIo(run));
        assertEquals(List.of("w1@0=5a"), onePort.log);
    }

    /** A 4-byte IN at the last (only) port of a 1-port device runs past it: unclaimed, all ones, device untouched. */
    @Test
    void aWideInAtTheLastPortOfADeviceIsUnclaimed() {
        portExit(false, 4, 0x80, 1, DATA);
        assertNull(io.handleIo(run));
        assertEquals(0xffff_ffffL, run.load(DATA, 4));
        assertTrue(onePort.log.isEmpty(), onePort.log::toString);
        assertEquals(1, stats.unclaimedPio);
    }

    @Test
    void stringInsFillEveryElement() {
        portExit(false, 1, 0x80, 3, DATA);
        assertNull(io.handleIo(run));
        assertEquals(0x888888L, run.load(DATA, 3));
        assertEquals(3, onePort.log.size());
    }

    @Test
    void impossiblePortExitsAreRefused() {
        portExit(true, 3, 0x80, 1, DATA);
        assertNotNull(io.handleIo(run), "size 3");
        portExit(true, 1, 0x80, 0, DATA);
        assertNotNull(io.handleIo(run), "count 0");
        portExit(true, 4, 0x80, 2, MAP - 4);
        assertNotNull(io.handleIo(run), "data runs past the mapping");
        portExit(true, 1, 0x80, 1, -8);
        assertNotNull(io.handleIo(run), "negative data offset");
        portExit(true, 4, 0x80, Integer.MAX_VALUE, DATA);
        assertNotNull(io.handleIo(run), "a count whose data cannot fit");
        assertTrue(onePort.log.isEmpty());
    }

    /** An 8-byte MMIO write straddling the end of a window is not the window's: dropped. */
    @Test
    void aWriteStraddlingTheEndOfAWindowIsDropped() {
        seg.set(JAVA_LONG, KvmApi.RUN_MMIO_DATA, 0x0102030405060708L);
        mmioExit(true, 0xd000_0000L + 0x200 - 4, 8);
        assertNull(io.handleMmio(run));
        assertTrue(window.log.isEmpty(), window.log::toString);
        assertEquals(1, stats.unclaimedMmio);
        mmioExit(true, 0xd000_0000L + 0x200 - 8, 8);
        assertNull(io.handleMmio(run));
        assertEquals(List.of("w8@504=102030405060708"), window.log);
    }

    @Test
    void mmioReadsOfTheWindowAndOfNothing() {
        mmioExit(false, 0xd000_0010L, 2);
        assertNull(io.handleMmio(run));
        assertEquals(0x7788L, run.load(KvmRun.mmioDataOffset(), 2));
        mmioExit(false, 0xe000_0000L, 4);
        assertNull(io.handleMmio(run));
        assertEquals(0xffff_ffffL, run.load(KvmRun.mmioDataOffset(), 4));
        mmioExit(false, 0xd000_0000L, 9);
        assertNotNull(io.handleMmio(run), "len 9");
    }

    /** Statistics keep a fixed number of addresses, the busiest among them, whatever is touched. */
    @Test
    void addressCountsAreBoundedAndKeepTheHeavyHitters() {
        for (int i = 0; i < 100_000; i++) {
            mmioExit(false, 0xe000_0000L + 8L * i, 4);
            io.handleMmio(run);
            if (i % 10 == 0) {
                mmioExit(false, 0xd000_0000L, 4);
                io.handleMmio(run);
            }
        }
        List<AddressCounts.Entry> e = stats.mmio.entries();
        assertTrue(e.size() <= AddressCounts.CAPACITY, "at most " + AddressCounts.CAPACITY + ": " + e.size());
        assertEquals(0xd000_0000L, e.get(0).address(), "the register read every 10th exit is the busiest");
        assertTrue(e.get(0).count() >= 10_000, e.get(0).toString());
    }
}
