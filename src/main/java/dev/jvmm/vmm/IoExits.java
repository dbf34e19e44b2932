package dev.jvmm.vmm;

import dev.jvmm.device.Bus;
import dev.jvmm.kvm.KvmRun;

/**
 * Serves a vCPU's port and MMIO exits through the buses, on the vCPU thread. Everything KVM reports
 * is checked before use: an access size other than 1, 2 or 4 bytes (8 for MMIO), a count below 1, or
 * a data area outside the mapping is an impossible exit and ends the run. An access that starts in a
 * device's range but runs past its end (a 4-byte IN at the last port of a 1-port device, an 8-byte
 * MMIO write straddling a window's end) is not given to the device: it is unclaimed, reads as all
 * ones and writes are dropped, as on a PC bus.
 *
 * @param stats the vCPU's counters, which every exit served is added to
 */
record IoExits(Bus pio, Bus mmio, VcpuStats stats) {

    /** A KVM_EXIT_IO; returns null, or why the exit is impossible (the run must end). */
    String handleIo(KvmRun run) {
        int size = run.ioSize();
        int port = run.ioPort();
        int count = run.ioCount();
        long dataOffset = run.ioDataOffset();
        boolean out = run.ioIsOut();
        if ((size != 1 && size != 2 && size != 4) || count < 1 || dataOffset < 0
                || dataOffset > run.size() || (long) size * count > run.size() - dataOffset) {
            return String.format("KVM reported an impossible port access (port 0x%x size %d count %d data at %d)",
                    port, size, count, dataOffset);
        }
        stats.pio.add(port, count);
        Bus.Range range = pio.find(port);
        boolean claimed = range != null && port - range.base() <= range.length() - size;
        if (!claimed) stats.unclaimedPio += count;
        for (int i = 0; i < count; i++) transfer(run, dataOffset + (long) i * size, claimed ? range : null, port, size, out);
        return null;
    }

    /** A KVM_EXIT_MMIO; returns null, or why the exit is impossible. */
    String handleMmio(KvmRun run) {
        long addr = run.mmioAddress();
        int len = run.mmioLength();
        boolean write = run.mmioIsWrite();
        if (len < 1 || len > 8) {
            return String.format("KVM reported an impossible MMIO access (0x%x len %d)", addr, len);
        }
        stats.mmio.add(addr, 1);
        long data = KvmRun.mmioDataOffset();
        Bus.Range range = mmio.find(addr);
        boolean claimed = range != null && addr - range.base() <= range.length() - len;
        if (!claimed) stats.unclaimedMmio++;
        transfer(run, data, claimed ? range : null, addr, len, write);
        return null;
    }

    /**
     * One access of {@code size} bytes at bus address {@code addr}, between the run's data at {@code at}
     * and the device of {@code range}; with no range (unclaimed) a read gets all ones and a write is dropped.
     */
    private static void transfer(KvmRun run, long at, Bus.Range range, long addr, int size, boolean write) {
        if (range == null) {
            if (!write) run.store(at, size, -1L);
        } else if (write) {
            range.device().write(addr - range.base(), size, run.load(at, size));
        } else {
            run.store(at, size, range.device().read(addr - range.base(), size));
        }
    }
}
