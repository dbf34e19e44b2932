package dev.jvmm.vmm;

/**
 * Counters kept by one vCPU thread, plain fields (single writer), read after the thread has ended.
 * Fixed size whatever the guest does: exits by reason, and the busiest ports and MMIO addresses in
 * {@link AddressCounts}.
 */
public final class VcpuStats {
    static final int REASONS = 64;

    final long[] exitsByReason = new long[REASONS];
    final AddressCounts pio = new AddressCounts();
    final AddressCounts mmio = new AddressCounts();
    long unclaimedPio;
    long unclaimedMmio;
    long kicks;

    void countExit(int reason) {
        exitsByReason[reason >= 0 && reason < REASONS ? reason : REASONS - 1]++;
    }

    public long exits(int reason) {
        return exitsByReason[Math.max(0, Math.min(reason, REASONS - 1))];
    }

    public long totalExits() {
        long t = 0;
        for (long e : exitsByReason) t += e;
        return t;
    }
}
