package dev.jvmm.memory;

import dev.jvmm.sys.Errno;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.Memfd;

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
    /**
     * One contiguous backing: guest range [gpa, gpa + size) at host segment {@code host}. Shared memory
     * ({@link #allocateShared}) is also file {@code fd} from byte {@code fdOffset}, which another process
     * can map; private memory has -1 for both.
     */
    public record Region(long gpa, long size, MemorySegment host, int fd, long fdOffset) {
        public Region(long gpa, long size, MemorySegment host) {
            this(gpa, size, host, -1, -1);
        }

        public long end() {
            return gpa + size;
        }
    }

    private final Region[] regions;
    private final boolean mapped;
    /** The memfd behind shared memory, closed with it; -1 otherwise. */
    private final int memfd;
    /** Shared memory only: its descriptor number must not be closed twice (it may be reused by then). */
    private boolean sharedClosed;

    private GuestMemory(Region[] regions, boolean mapped) {
        this(regions, mapped, -1);
    }

    private GuestMemory(Region[] regions, boolean mapped, int memfd) {
        this.regions = regions;
        this.mapped = mapped;
        this.memfd = memfd;
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

    /** Shared regions start at multiples of this in their file, so each can be backed by 2 MiB pages. */
    private static final long SHARED_ALIGN = 2L << 20;

    /**
     * Like {@link #allocate}, but shareable with another process (a vhost-user back end): one memfd
     * (close-on-exec) holds all ranges, each at an offset that is a multiple of 2 MiB, and each range is
     * a {@code MAP_SHARED} mapping of its part. {@link Region#fd()} and {@link Region#fdOffset()} say
     * where. Pages are allocated when first touched, as with {@link #allocate}; huge pages are requested
     * but on shmem they come only if /sys/kernel/mm/transparent_hugepage/shmem_enabled allows it.
     * @throws IllegalStateException naming the errno when memfd_create, ftruncate or mmap fails
     */
    public static GuestMemory allocateShared(List<RamRange> ranges) {
        long[] offsets = new long[ranges.size()];
        long fileSize = 0;
        for (int i = 0; i < ranges.size(); i++) {
            long size = ranges.get(i).size();
            if (size <= 0 || size % 4096 != 0) {
                throw new IllegalArgumentException("shared guest RAM range of " + size + " bytes is not a positive multiple of 4 KiB");
            }
            offsets[i] = fileSize;
            fileSize = Math.addExact(fileSize, (size + SHARED_ALIGN - 1) / SHARED_ALIGN * SHARED_ALIGN);
        }
        int fd = -1;
        try {
            fd = Memfd.create("jvmm-guest-ram");
            Memfd.truncate(fd, fileSize);
        } catch (RuntimeException e) {
            if (fd >= 0) LibC.close(fd);
            throw new IllegalStateException("cannot create " + fileSize / (1024 * 1024) + " MiB of shared memory for the guest: "
                    + e.getMessage(), e);
        }
        List<Region> regions = new ArrayList<>();
        try {
            for (int i = 0; i < ranges.size(); i++) {
                RamRange r = ranges.get(i);
                MemorySegment m = LibC.mmap(MemorySegment.NULL, r.size(), LibC.PROT_READ | LibC.PROT_WRITE,
                        LibC.MAP_SHARED | LibC.MAP_NORESERVE, fd, offsets[i]);
                if (m.address() == LibC.MAP_FAILED.address()) {
                    throw new IllegalStateException("cannot map " + r.size() / (1024 * 1024) + " MiB of shared memory for the guest: "
                            + Errno.describe(LibC.errno()));
                }
                MemorySegment host = m.reinterpret(r.size(), Arena.global(), null);
                LibC.madvise(host, r.size(), LibC.MADV_HUGEPAGE); // a hint; failure is harmless
                regions.add(new Region(r.start(), r.size(), host, fd, offsets[i]));
            }
        } catch (RuntimeException e) {
            for (Region region : regions) LibC.munmap(region.host(), region.size());
            LibC.close(fd);
            throw e;
        }
        return new GuestMemory(regions.toArray(Region[]::new), true, fd);
    }

    /**
     * Guest memory mapped copy-on-write from {@code file} ({@code MAP_PRIVATE}: the guest's writes
     * stay in this process, the file never changes, and many VMs may map one file): each of
     * {@code regions}, {gpa, size, offset in the file}, is mapped at its offset. Pages are read from
     * the file only when the guest touches them.
     * @throws IllegalStateException naming the errno when the file cannot be opened or mapped
     */
    public static GuestMemory mapPrivate(java.nio.file.Path file, List<long[]> regions) {
        int fd = LibC.open(file.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0) throw new IllegalStateException("cannot open " + file + ": " + dev.jvmm.sys.Errno.describe(LibC.errno()));
        List<Region> mapped = new ArrayList<>();
        try {
            for (long[] r : regions) {
                MemorySegment m = LibC.mmap(MemorySegment.NULL, r[1], LibC.PROT_READ | LibC.PROT_WRITE,
                        LibC.MAP_PRIVATE | LibC.MAP_NORESERVE, fd, r[2]);
                if (m.address() == LibC.MAP_FAILED.address()) {
                    throw new IllegalStateException("cannot map " + file + " at offset " + r[2] + ": " + dev.jvmm.sys.Errno.describe(LibC.errno()));
                }
                mapped.add(new Region(r[0], r[1], m.reinterpret(r[1])));
            }
        } catch (RuntimeException e) {
            for (Region r : mapped) LibC.munmap(r.host(), r.size());
            throw e;
        } finally {
            LibC.close(fd); // the mappings keep the file
        }
        return new GuestMemory(mapped.toArray(Region[]::new), true);
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
        if (memfd >= 0) {
            synchronized (this) {
                if (sharedClosed) return;
                sharedClosed = true;
            }
        }
        for (Region r : regions) LibC.munmap(r.host(), r.size());
        if (memfd >= 0) LibC.close(memfd);
    }
}
