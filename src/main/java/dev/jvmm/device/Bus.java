package dev.jvmm.device;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Maps guest address ranges (I/O ports or MMIO) to {@link BusDevice}s.
 *
 * <p>{@link #find} runs on every I/O or MMIO exit of every vCPU, so it takes no lock and allocates
 * nothing: a bus whose limit is at most 64 KiB (the x86 port space) keeps a table indexed by
 * address, in pages of 256 addresses (untouched pages share one empty page); any other bus
 * binary-searches a sorted array. Registration copies what it changes (the page index and the pages
 * its range covers) and republishes it through a volatile field, so ranges may even be added while
 * vCPUs run, but they are meant to be registered before the VM starts.
 *
 * <p>{@code find} only looks at the first byte of an access. An access that starts inside a range
 * and runs past its end (a 4-byte read at the last port of a 1-port device) is handed to that
 * device whole; the caller decides whether to pass it on, split it or reject it.
 */
public final class Bus {
    /** A registered range [base, base + length). */
    public record Range(String name, long base, long length, BusDevice device) {
        public Range {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(device, "device");
        }

        /** First address after the range. */
        public long end() {
            return base + length;
        }

        public boolean contains(long address) {
            return address >= base && address - base < length;
        }
    }

    /** Largest bus served by a direct table: the whole x86 port space. */
    private static final long DIRECT_TABLE_LIMIT = 0x10000;

    /** Sorted ranges and their bases, published together so a lookup never sees a torn pair. */
    private record Sorted(long[] bases, Range[] ranges) { }

    private final String name;
    private final long addressLimit;
    /** Non-null on a small (port) bus: slot i holds the range containing address i. */
    private static final int PAGE_BITS = 8, PAGE = 1 << PAGE_BITS;
    private static final Range[] EMPTY_PAGE = new Range[PAGE];
    /** The direct table: {@code table[a >>> PAGE_BITS][a & (PAGE - 1)]}; pages are never modified once published. */
    private volatile Range[][] table;
    private volatile Sorted sorted = new Sorted(new long[0], new Range[0]);

    /**
     * @param name for messages, e.g. "pio" or "mmio"
     * @param addressLimit first address past the bus: 0x10000 for port I/O, large for MMIO
     */
    public Bus(String name, long addressLimit) {
        this.name = Objects.requireNonNull(name, "name");
        if (addressLimit <= 0) {
            throw new IllegalArgumentException("bus " + name + ": address limit must be positive");
        }
        this.addressLimit = addressLimit;
        if (addressLimit <= DIRECT_TABLE_LIMIT) {
            Range[][] pages = new Range[(int) ((addressLimit + PAGE - 1) >>> PAGE_BITS)][];
            Arrays.fill(pages, EMPTY_PAGE);
            this.table = pages;
        }
    }

    public String name() {
        return name;
    }

    public long addressLimit() {
        return addressLimit;
    }

    /**
     * Adds {@code device} at [base, base + length).
     *
     * @throws IllegalArgumentException if the length is not positive, the range does not fit below
     *     the bus limit, or it overlaps a range already registered
     */
    public synchronized void register(String deviceName, long base, long length, BusDevice device) {
        Objects.requireNonNull(deviceName, "deviceName");
        Objects.requireNonNull(device, "device");
        if (length <= 0) {
            throw new IllegalArgumentException(describe(deviceName, base, length) + ": length must be positive");
        }
        if (base < 0 || length > addressLimit - base) {
            throw new IllegalArgumentException(describe(deviceName, base, length)
                    + ": outside bus " + name + " (limit 0x" + Long.toHexString(addressLimit) + ")");
        }
        Range range = new Range(deviceName, base, length, device);
        Sorted old = sorted;
        for (Range r : old.ranges()) {
            if (base < r.end() && r.base() < range.end()) {
                throw new IllegalArgumentException(describe(deviceName, base, length)
                        + " overlaps " + describe(r.name(), r.base(), r.length()) + " on bus " + name);
            }
        }
        int at = -Arrays.binarySearch(old.bases(), base) - 1;   // never found: overlap check above
        int n = old.ranges().length;
        Range[] ranges = new Range[n + 1];
        long[] bases = new long[n + 1];
        System.arraycopy(old.ranges(), 0, ranges, 0, at);
        System.arraycopy(old.bases(), 0, bases, 0, at);
        ranges[at] = range;
        bases[at] = base;
        System.arraycopy(old.ranges(), at, ranges, at + 1, n - at);
        System.arraycopy(old.bases(), at, bases, at + 1, n - at);

        Range[][] t = table;
        if (t != null) { // copy the index and the covered pages, not the whole 64 Ki-entry table
            Range[][] copy = t.clone();
            for (long a = base; a < base + length; ) {
                int page = (int) (a >>> PAGE_BITS);
                int from = (int) (a & (PAGE - 1));
                int to = (int) Math.min(PAGE, from + (base + length - a));
                Range[] p = copy[page] == t[page] ? t[page].clone() : copy[page];
                Arrays.fill(p, from, to, range);
                copy[page] = p;
                a += to - from;
            }
            table = copy;
        }
        sorted = new Sorted(bases, ranges);
    }

    /** The range containing {@code address}, or null. Lock-free and allocation-free. */
    public Range find(long address) {
        Range[][] t = table;
        if (t != null) {
            return address >= 0 && (address >>> PAGE_BITS) < t.length ? t[(int) (address >>> PAGE_BITS)][(int) address & (PAGE - 1)] : null;
        }
        Sorted s = sorted;
        int i = Arrays.binarySearch(s.bases(), address);
        if (i < 0) {
            i = -i - 2;                 // last range starting below the address
            if (i < 0) {
                return null;
            }
        }
        Range r = s.ranges()[i];
        return address - r.base() < r.length() ? r : null;
    }

    /** The registered ranges in address order (a copy, for diagnostics). */
    public List<Range> ranges() {
        return List.of(sorted.ranges());
    }

    @Override
    public String toString() {
        List<String> parts = new ArrayList<>();
        for (Range r : sorted.ranges()) {
            parts.add(describe(r.name(), r.base(), r.length()));
        }
        return "Bus[" + name + ": " + String.join(", ", parts) + "]";
    }

    private static String describe(String deviceName, long base, long length) {
        return deviceName + " [0x" + Long.toHexString(base) + ", +0x" + Long.toHexString(length) + ")";
    }
}
