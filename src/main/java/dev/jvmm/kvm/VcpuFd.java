package dev.jvmm.kvm;

import dev.jvmm.sys.Ioctl;
import dev.jvmm.sys.KvmApi;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.Signals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

/** A vCPU and its mmapped {@code struct kvm_run}. KVM_RUN and register access belong to one thread. */
public final class VcpuFd implements AutoCloseable {
    private final int id;
    private final int fd;
    private final long runSize;
    private final MemorySegment map;
    private final KvmRun run;

    VcpuFd(int id, int fd, long runSize) {
        this.id = id;
        this.fd = fd;
        this.runSize = runSize;
        MemorySegment map = LibC.mmap(MemorySegment.NULL, runSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
        if (map.address() == LibC.MAP_FAILED.address()) {
            int errno = LibC.errno();
            LibC.close(fd);
            throw new KvmException("mmap(kvm_run)", errno, "(vCPU " + id + ")");
        }
        // Shared arena scope: a kicking thread may write immediate_exit.
        this.map = map.reinterpret(runSize, Arena.global(), null);
        this.run = new KvmRun(this.map);
    }

    public int id() {
        return id;
    }

    public int fd() {
        return fd;
    }

    /** The mmapped {@code struct kvm_run} (then PIO data at {@code io.data_offset}). */
    public KvmRun run() {
        return run;
    }

    /**
     * A vCPU ioctl with a struct argument (KVM_GET_REGS, KVM_SET_SREGS, KVM_SET_CPUID2, ...): the
     * layout of {@code arg} is the request's, see {@link KvmApi}. Returns the ioctl's result.
     * @throws KvmException naming the request when it fails
     */
    public int call(Ioctl.Request request, MemorySegment arg) {
        return KvmIoctl.call(fd, request, arg);
    }

    /** Sets MSRs from a {@code struct kvm_msrs}; fails unless all were accepted. */
    public void setMsrs(MemorySegment msrs) {
        int n = msrs.get(JAVA_INT, KvmApi.offset(KvmApi.KVM_MSRS, "nmsrs"));
        int rc = LibC.ioctl(fd, KvmApi.KVM_SET_MSRS.number(), msrs);
        if (rc < 0) throw new KvmException(KvmApi.KVM_SET_MSRS.name(), LibC.errno());
        if (rc != n) {
            long index = msrs.get(JAVA_INT, KvmApi.KVM_MSRS.byteSize() + rc * KvmApi.KVM_MSR_ENTRY.byteSize()
                    + KvmApi.offset(KvmApi.KVM_MSR_ENTRY, "index"));
            throw new IllegalStateException("KVM_SET_MSRS accepted " + rc + " of " + n + " MSRs; refused MSR 0x" + Long.toHexString(index));
        }
    }

    public int getMpState() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(KvmApi.KVM_MP_STATE);
            KvmIoctl.call(fd, KvmApi.KVM_GET_MP_STATE, s);
            return s.get(JAVA_INT, KvmApi.offset(KvmApi.KVM_MP_STATE, "mp_state"));
        }
    }

    /**
     * The signal mask in force while this vCPU is inside KVM_RUN: the calling thread's own mask with
     * {@code unblocked} removed, so a kick with that signal interrupts KVM_RUN and nothing else changes.
     */
    public void setSignalMaskAllowing(int unblocked) {
        try (Arena arena = Arena.ofConfined()) {
            long mask = Signals.currentMask(arena) & ~(1L << (unblocked - 1));
            MemorySegment m = arena.allocate(KvmApi.KVM_SIGNAL_MASK.byteSize() + Signals.KERNEL_SIGSET_BYTES, 8);
            m.set(JAVA_INT, KvmApi.offset(KvmApi.KVM_SIGNAL_MASK, "len"), (int) Signals.KERNEL_SIGSET_BYTES);
            // the kernel sigset follows the 4-byte len directly, so it is not 8-byte aligned
            m.set(JAVA_LONG_UNALIGNED, KvmApi.KVM_SIGNAL_MASK.byteSize(), mask);
            KvmIoctl.call(fd, KvmApi.KVM_SET_SIGNAL_MASK, m);
        }
    }

    /** KVM_RUN with a caller-owned errno capture buffer; returns the ioctl's result (negative: see errno). */
    public int runOnce(MemorySegment capture) {
        return LibC.ioctl(capture, fd, KvmApi.KVM_RUN_IOCTL.number(), 0L);
    }

    @Override
    public void close() {
        LibC.munmap(map, runSize);
        LibC.close(fd);
    }
}
