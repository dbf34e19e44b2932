package dev.jvmm.kvm;

import dev.jvmm.sys.Errno;
import dev.jvmm.sys.KvmApi;
import dev.jvmm.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_INT;

/** The KVM system handle: an open {@code /dev/kvm}. */
public final class Kvm implements AutoCloseable {
    public static final String DEFAULT_PATH = "/dev/kvm";

    /** Capabilities jvmm cannot run without, by name. */
    public static final Map<String, Integer> REQUIRED_CAPABILITIES = requiredCapabilities();

    private final String path;
    private final int fd;
    private int vcpuMmapSize = -1;

    private Kvm(String path, int fd) {
        this.path = path;
        this.fd = fd;
    }

    private static Map<String, Integer> requiredCapabilities() {
        Map<String, Integer> m = new LinkedHashMap<>();
        m.put("KVM_CAP_USER_MEMORY", KvmApi.KVM_CAP_USER_MEMORY);
        m.put("KVM_CAP_IRQCHIP", KvmApi.KVM_CAP_IRQCHIP);
        m.put("KVM_CAP_PIT2", KvmApi.KVM_CAP_PIT2);
        m.put("KVM_CAP_EXT_CPUID", KvmApi.KVM_CAP_EXT_CPUID);
        m.put("KVM_CAP_SET_TSS_ADDR", KvmApi.KVM_CAP_SET_TSS_ADDR);
        m.put("KVM_CAP_MP_STATE", KvmApi.KVM_CAP_MP_STATE);
        m.put("KVM_CAP_IRQFD", KvmApi.KVM_CAP_IRQFD);
        m.put("KVM_CAP_IOEVENTFD", KvmApi.KVM_CAP_IOEVENTFD);
        m.put("KVM_CAP_IRQ_ROUTING", KvmApi.KVM_CAP_IRQ_ROUTING);
        return m;
    }

    /**
     * Opens {@code path} and checks the API version.
     * @throws KvmUnavailableException with a one-line explanation a user can act on
     */
    public static Kvm open(String path) throws KvmUnavailableException {
        int fd = LibC.open(path, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (fd < 0) {
            int errno = LibC.errno();
            throw new KvmUnavailableException(switch (errno) {
                case Errno.ENOENT -> path + " does not exist: this host has no KVM (load the kvm module, or enable virtualization)";
                case Errno.EACCES, Errno.EPERM -> "no permission to open " + path
                        + ": add yourself to its group (usually 'kvm') or run as root";
                default -> "cannot open " + path + ": " + Errno.describe(errno);
            });
        }
        Kvm kvm = new Kvm(path, fd);
        int version = LibC.ioctl(fd, KvmApi.KVM_GET_API_VERSION.number(), 0L);
        if (version != KvmApi.API_VERSION) {
            kvm.close();
            throw new KvmUnavailableException(path + " speaks KVM API version " + version + ", jvmm needs " + KvmApi.API_VERSION);
        }
        return kvm;
    }

    public String path() {
        return path;
    }

    public int apiVersion() {
        return LibC.ioctl(fd, KvmApi.KVM_GET_API_VERSION.number(), 0L);
    }

    /** KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific positive value. */
    public int checkExtension(int capability) {
        int rc = LibC.ioctl(fd, KvmApi.KVM_CHECK_EXTENSION.number(), (long) capability);
        return Math.max(rc, 0);
    }

    /** Names of required capabilities this host lacks (empty when all are present). */
    public List<String> missingCapabilities() {
        List<String> missing = new ArrayList<>();
        REQUIRED_CAPABILITIES.forEach((name, cap) -> {
            if (checkExtension(cap) <= 0) missing.add(name);
        });
        return missing;
    }

    /** The most vCPUs one VM may have here (KVM_CAP_MAX_VCPUS, falling back to NR_VCPUS, then 4). */
    public int maxVcpus() {
        int max = checkExtension(KvmApi.KVM_CAP_MAX_VCPUS);
        if (max <= 0) max = checkExtension(KvmApi.KVM_CAP_NR_VCPUS);
        return max > 0 ? max : 4;
    }

    public int vcpuMmapSize() {
        if (vcpuMmapSize < 0) {
            int size = LibC.ioctl(fd, KvmApi.KVM_GET_VCPU_MMAP_SIZE.number(), 0L);
            if (size < 0) throw new KvmException(KvmApi.KVM_GET_VCPU_MMAP_SIZE.name(), LibC.errno());
            if (size < KvmApi.KVM_RUN.byteSize()) {
                throw new IllegalStateException("KVM_GET_VCPU_MMAP_SIZE " + size + " is smaller than struct kvm_run");
            }
            vcpuMmapSize = size;
        }
        return vcpuMmapSize;
    }

    /**
     * KVM_GET_SUPPORTED_CPUID: a {@code struct kvm_cpuid2} with its entries, allocated in {@code arena}
     * (grows the buffer on E2BIG).
     */
    public MemorySegment supportedCpuid(Arena arena) {
        for (int n = 128; n <= 4096; n *= 2) {
            MemorySegment buf = arena.allocate(KvmApi.KVM_CPUID2.byteSize() + n * KvmApi.KVM_CPUID_ENTRY2.byteSize(), 8);
            buf.set(JAVA_INT, KvmApi.offset(KvmApi.KVM_CPUID2, "nent"), n);
            if (LibC.ioctl(fd, KvmApi.KVM_GET_SUPPORTED_CPUID.number(), buf) == 0) return buf;
            int errno = LibC.errno();
            if (errno != Errno.E2BIG) throw new KvmException(KvmApi.KVM_GET_SUPPORTED_CPUID.name(), errno);
        }
        throw new KvmException(KvmApi.KVM_GET_SUPPORTED_CPUID.name(), Errno.E2BIG);
    }

    /** KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a vCPU (what a snapshot reads). */
    public int[] msrIndexList() {
        try (Arena arena = Arena.ofConfined()) {
            for (int n = 256; n <= 65536; n *= 4) {
                MemorySegment buf = arena.allocate(KvmApi.KVM_MSR_LIST.byteSize() + 4L * n, 4);
                buf.set(JAVA_INT, 0, n);
                if (LibC.ioctl(fd, KvmApi.KVM_GET_MSR_INDEX_LIST.number(), buf) == 0) {
                    int got = buf.get(JAVA_INT, 0);
                    int[] out = new int[got];
                    MemorySegment.copy(buf, JAVA_INT, KvmApi.KVM_MSR_LIST.byteSize(), out, 0, got);
                    return out;
                }
                int errno = LibC.errno();
                if (errno != Errno.E2BIG) throw new KvmException(KvmApi.KVM_GET_MSR_INDEX_LIST.name(), errno);
            }
            throw new KvmException(KvmApi.KVM_GET_MSR_INDEX_LIST.name(), Errno.E2BIG);
        }
    }

    public VmFd createVm() {
        return new VmFd(this, KvmIoctl.call(fd, KvmApi.KVM_CREATE_VM, 0L)); // again after EINTR, as KVM needs
    }

    @Override
    public void close() {
        LibC.close(fd);
    }
}
