package dev.jvmm.vmm;

import java.util.ArrayList;
import java.util.List;

/**
 * Access counts for the busiest addresses in a fixed amount of memory, whatever the guest touches:
 * the "space-saving" heavy-hitters scheme. {@link #CAPACITY} slots; a new address when all are taken
 * replaces the least counted one and inherits its count (so counts are upper bounds, exact for
 * addresses that were never evicted; an address accessed more than total/CAPACITY times is always
 * kept). One writer (its vCPU thread), read after the thread has ended.
 */
final class AddressCounts {
    static final int CAPACITY = 64;

    /** One counted address; {@code overcount} is what it may have inherited from an evicted one. */
    record Entry(long address, long count, long overcount) { }

    private final long[] addresses = new long[CAPACITY];
    private final long[] counts = new long[CAPACITY];
    private final long[] inherited = new long[CAPACITY];
    private int used;
    private int last = -1;

    void add(long address, long n) {
        if (last >= 0 && addresses[last] == address) { // the usual case: the same register again
            counts[last] += n;
            return;
        }
        for (int i = 0; i < used; i++) {
            if (addresses[i] == address) {
                counts[i] += n;
                last = i;
                return;
            }
        }
        int slot;
        if (used < CAPACITY) {
            slot = used++;
            inherited[slot] = 0;
            counts[slot] = 0;
        } else {
            slot = 0;
            for (int i = 1; i < CAPACITY; i++) if (counts[i] < counts[slot]) slot = i;
            inherited[slot] = counts[slot];
        }
        addresses[slot] = address;
        counts[slot] += n;
        last = slot;
    }

    /** The counted addresses, most accessed first. */
    List<Entry> entries() {
        List<Entry> out = new ArrayList<>(used);
        for (int i = 0; i < used; i++) out.add(new Entry(addresses[i], counts[i], inherited[i]));
        // most counted first, then by address; a plain lambda, since Comparator.comparingLong's chain
        // spins JDK lambda classes at the end of every run
        out.sort((a, b) -> a.count() != b.count() ? Long.compare(b.count(), a.count())
                : Long.compare(a.address(), b.address()));
        return out;
    }
}
