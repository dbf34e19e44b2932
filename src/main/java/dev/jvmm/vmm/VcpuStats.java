package dev.jvmm.vmm;

import java.util.HashMap;
import java.util.Map;

/** Counters kept by one vCPU thread, plain fields (single writer); read after the thread has ended. */
public final class VcpuStats {
    static final int REASONS = 64;

    final long[] exitsByReason = new long[REASONS];
    final long[] pioAccesses = new long[0x10000];
    final Map<Long, long[]> mmioAccesses = new HashMap<>();
    long unclaimedPio;
    long unclaimedMmio;
    long kicks;

    void countMmio(long addr) {
        long[] c = mmioAccesses.get(addr);
        if (c == null) mmioAccesses.put(addr, c = new long[1]);
        c[0]++;
    }

    public long exits(int reason) {
        return exitsByReason[Math.min(reason, REASONS - 1)];
    }

    public long totalExits() {
        long t = 0;
        for (long e : exitsByReason) t += e;
        return t;
    }
}
