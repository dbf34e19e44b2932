package dev.jvmm.memory;

import dev.jvmm.sys.Errno;
import dev.jvmm.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Guest RAM: host memory regions, each backing a range of guest-physical addresses. Every access
 * goes through {@link #slice}, which refuses any range not wholly inside one region, so guest-supplied
 * addresses can never reach host memory outside guest RAM.
 */
public final class GuestMemory implements AutoCloseable {
    /** One contiguous backing: guest range [gpa, gpa + size) at host segment {@code host}. */
    public record Region(long gpa, long size, MemorySegment host) {
        public long end() {
            return gpa + size;
        }
    }

    private final Region[] regions;
    private final boolean mapped;

    private GuestMemory(Region[] regions, boolean mapped) {
        this.regions = regions;
        this.mapped = mapped;
    }

    /**
     * Anonymous, lazily committed host memory for each range ({@code MAP_NORESERVE}, transparent huge
     * pages requested).
     * @throws IllegalStateException naming the errno when mmap fails
     */
    public static GuestMemory allocate(List<RamRange> ranges) {
        List<Region> regions = new ArrayList<>();
        try {
            for (RamRange r : ranges) {
                MemorySegment m = LibC.mmap(MemorySegment.NULL, r.size(), LibC.PROT_READ | LibC.PROT_WRITE,
                        LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE, -1, 0);
                if (m.address() == LibC.MAP_FAILED.address()) {
                    throw new IllegalStateException("cannot reserve " + r.size() / (1024 * 1024) + " MiB of host memory for the guest: "
                            + Errno.describe(LibC.errno()));
                }
                MemorySegment host = m.reinterpret(r.size(), Arena.global(), null);
                LibC.madvise(host, r.size(), LibC.MADV_HUGEPAGE); // a hint; failure is harmless
                regions.add(new Region(r.start(), r.size(), host));
            }
        } catch (RuntimeException e) {
            for (Region region : regions) LibC.munmap(region.host(), region.size());
            throw e;
        }
        return new GuestMemory(regions.toArray(Region[]::new), true);
    }

    /** Guest memory over caller-owned segments (tests, device models). */
    public static GuestMemory wrap(List<Region> regions) {
        return new GuestMemory(regions.toArray(Region[]::new), false);
    }

    public List<Region> regions() {
        return List.of(regions);
    }


    /** True when [gpa, gpa + len) lies wholly inside one RAM region. */
    public boolean contains(long gpa, long len) {
        return find(gpa, len) != null;
    }

    private Region find(long gpa, long len) {
        if (len < 0) return null;
        for (Region r : regions) {
            if (gpa >= r.gpa() && gpa - r.gpa() < r.size() && len <= r.size() - (gpa - r.gpa())) return r;
            if (len == 0 && gpa == r.end()) return r;
        }
        return null;
    }

    /** The host view of guest range [gpa, gpa + len); throws if any byte of it is not RAM. */
    public MemorySegment slice(long gpa, long len) {
        Region r = find(gpa, len);
        if (r == null) {
            throw new GuestMemoryException(String.format("guest range [0x%x, +0x%x) is not in guest RAM", gpa, len));
        }
        return r.host().asSlice(gpa - r.gpa(), len);
    }

    public void write(long gpa, byte[] data) {
        MemorySegment.copy(data, 0, slice(gpa, data.length), JAVA_BYTE, 0, data.length);
    }

    public void read(long gpa, byte[] into) {
        MemorySegment.copy(slice(gpa, into.length), JAVA_BYTE, 0, into, 0, into.length);
    }

    public byte[] read(long gpa, int len) {
        byte[] b = new byte[len];
        read(gpa, b);
        return b;
    }

    public void zero(long gpa, long len) {
        slice(gpa, len).fill((byte) 0);
    }

    @Override
    public void close() {
        if (!mapped) return;
        for (Region r : regions) LibC.munmap(r.host(), r.size());
    }
}
