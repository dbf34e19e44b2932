package dev.jvmm.kvm;

import dev.jvmm.sys.KvmApi;
import dev.jvmm.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** A KVM virtual machine (the fd KVM_CREATE_VM returned). Thread-safe: the kernel serialises what needs it. */
public final class VmFd implements AutoCloseable {
    private final Kvm kvm;
    private final int fd;

    VmFd(Kvm kvm, int fd) {
        this.kvm = kvm;
        this.fd = fd;
    }

    public Kvm kvm() {
        return kvm;
    }

    public int fd() {
        return fd;
    }

    private static void check(int rc, String ioctl) {
        if (rc < 0) throw new KvmException(ioctl, LibC.errno());
    }

    public void setUserMemoryRegion(int slot, long guestPhysAddr, long size, MemorySegment host) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment r = arena.allocate(KvmApi.KVM_USERSPACE_MEMORY_REGION);
            r.set(JAVA_INT, 0, slot);
            r.set(JAVA_INT, 4, 0);
            r.set(JAVA_LONG, 8, guestPhysAddr);
            r.set(JAVA_LONG, 16, size);
            r.set(JAVA_LONG, 24, host.address());
            check(LibC.ioctl(fd, KvmApi.KVM_SET_USER_MEMORY_REGION, r), "KVM_SET_USER_MEMORY_REGION");
        }
    }

    public void setTssAddr(long addr) {
        check(LibC.ioctl(fd, KvmApi.KVM_SET_TSS_ADDR, addr), "KVM_SET_TSS_ADDR");
    }

    public void setIdentityMapAddr(long addr) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocateFrom(JAVA_LONG, addr);
            check(LibC.ioctl(fd, KvmApi.KVM_SET_IDENTITY_MAP_ADDR, a), "KVM_SET_IDENTITY_MAP_ADDR");
        }
    }

    /** In-kernel PIC, IOAPIC and a LAPIC per vCPU; must precede vCPU creation. */
    public void createIrqchip() {
        check(LibC.ioctl(fd, KvmApi.KVM_CREATE_IRQCHIP, 0L), "KVM_CREATE_IRQCHIP");
    }

    public void createPit2(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = arena.allocate(KvmApi.KVM_PIT_CONFIG);
            c.set(JAVA_INT, 0, flags);
            check(LibC.ioctl(fd, KvmApi.KVM_CREATE_PIT2, c), "KVM_CREATE_PIT2");
        }
    }

    /** Sets the level of a GSI on the in-kernel irqchip (KVM_IRQ_LINE). Callable from any thread. */
    public void irqLine(int gsi, boolean high) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment l = arena.allocate(KvmApi.KVM_IRQ_LEVEL);
            l.set(JAVA_INT, 0, gsi);
            l.set(JAVA_INT, 4, high ? 1 : 0);
            check(LibC.ioctl(fd, KvmApi.KVM_IRQ_LINE, l), "KVM_IRQ_LINE");
        }
    }

    /**
     * Interrupt routing as on a PC with the IRQ0 -> GSI 2 override the ACPI tables announce: GSI 0-15
     * reach the PICs' pins 0-15, and the IOAPIC's pins 0-15 except that GSI 0 (the PIT) goes to IOAPIC
     * pin 2 and GSI 2 to none there; GSI 16-23 reach the IOAPIC only. KVM's default maps GSI 0 to IOAPIC
     * pin 0, which would contradict the override.
     */
    public void setPcGsiRouting() {
        int ioapicPins = 24;
        java.util.List<int[]> routes = new java.util.ArrayList<>(); // {gsi, irqchip, pin}
        for (int gsi = 0; gsi < ioapicPins; gsi++) {
            if (gsi < 16 && gsi != 2) {
                routes.add(new int[] {gsi, gsi < 8 ? KvmApi.KVM_IRQCHIP_PIC_MASTER : KvmApi.KVM_IRQCHIP_PIC_SLAVE, gsi % 8});
            }
            if (gsi != 2) routes.add(new int[] {gsi, KvmApi.KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi});
        }
        long header = KvmApi.KVM_IRQ_ROUTING.byteSize(), size = KvmApi.KVM_IRQ_ROUTING_ENTRY.byteSize();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment r = arena.allocate(header + routes.size() * size, 8);
            r.set(JAVA_INT, 0, routes.size());
            for (int i = 0; i < routes.size(); i++) {
                long at = header + i * size;
                r.set(JAVA_INT, at, routes.get(i)[0]);
                r.set(JAVA_INT, at + 4, KvmApi.KVM_IRQ_ROUTING_IRQCHIP);
                r.set(JAVA_INT, at + 16, routes.get(i)[1]);
                r.set(JAVA_INT, at + 20, routes.get(i)[2]);
            }
            check(LibC.ioctl(fd, KvmApi.KVM_SET_GSI_ROUTING, r), "KVM_SET_GSI_ROUTING");
        }
    }

    /** Routes writes to eventfd {@code eventFd} into GSI {@code gsi} (KVM_IRQFD). */
    public void irqfd(int eventFd, int gsi) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(KvmApi.KVM_IRQFD_ARG);
            s.set(JAVA_INT, 0, eventFd);
            s.set(JAVA_INT, 4, gsi);
            check(LibC.ioctl(fd, KvmApi.KVM_IRQFD, s), "KVM_IRQFD");
        }
    }

    /**
     * Makes guest writes of {@code len} bytes to {@code addr} (MMIO, or a port if {@code pio}) signal
     * {@code eventFd} inside the kernel, without an exit to jvmm (KVM_IOEVENTFD); only writes of
     * {@code datamatch} when it is not null.
     */
    public void ioeventfd(int eventFd, long addr, int len, boolean pio, Long datamatch) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(KvmApi.KVM_IOEVENTFD_ARG);
            s.set(JAVA_LONG, 0, datamatch == null ? 0 : datamatch);
            s.set(JAVA_LONG, 8, addr);
            s.set(JAVA_INT, 16, len);
            s.set(JAVA_INT, 20, eventFd);
            s.set(JAVA_INT, 24, (pio ? IOEVENTFD_FLAG_PIO : 0) | (datamatch != null ? IOEVENTFD_FLAG_DATAMATCH : 0));
            check(LibC.ioctl(fd, KvmApi.KVM_IOEVENTFD, s), "KVM_IOEVENTFD");
        }
    }

    static final int IOEVENTFD_FLAG_DATAMATCH = 1, IOEVENTFD_FLAG_PIO = 1 << 1;

    public VcpuFd createVcpu(int id) {
        int vcpu = LibC.ioctl(fd, KvmApi.KVM_CREATE_VCPU, (long) id);
        if (vcpu < 0) throw new KvmException("KVM_CREATE_VCPU", LibC.errno(), "(vCPU " + id + ")");
        return new VcpuFd(id, vcpu, kvm.vcpuMmapSize());
    }

    @Override
    public void close() {
        LibC.close(fd);
    }
}
