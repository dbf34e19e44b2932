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

    public int fd() {
        return fd;
    }

    // Field offsets, all taken from the layouts the header probe checks.
    private static final long MEM_SLOT = KvmApi.offset(KvmApi.KVM_USERSPACE_MEMORY_REGION, "slot"),
            MEM_FLAGS = KvmApi.offset(KvmApi.KVM_USERSPACE_MEMORY_REGION, "flags"),
            MEM_GPA = KvmApi.offset(KvmApi.KVM_USERSPACE_MEMORY_REGION, "guest_phys_addr"),
            MEM_SIZE = KvmApi.offset(KvmApi.KVM_USERSPACE_MEMORY_REGION, "memory_size"),
            MEM_HVA = KvmApi.offset(KvmApi.KVM_USERSPACE_MEMORY_REGION, "userspace_addr");
    private static final long PIT_FLAGS = KvmApi.offset(KvmApi.KVM_PIT_CONFIG, "flags");
    private static final long LEVEL_IRQ = KvmApi.offset(KvmApi.KVM_IRQ_LEVEL, "irq"),
            LEVEL_LEVEL = KvmApi.offset(KvmApi.KVM_IRQ_LEVEL, "level");
    private static final long ROUTING_NR = KvmApi.offset(KvmApi.KVM_IRQ_ROUTING, "nr");
    private static final long ROUTE_GSI = KvmApi.offset(KvmApi.KVM_IRQ_ROUTING_ENTRY, "gsi"),
            ROUTE_TYPE = KvmApi.offset(KvmApi.KVM_IRQ_ROUTING_ENTRY, "type"),
            ROUTE_U = KvmApi.offset(KvmApi.KVM_IRQ_ROUTING_ENTRY, "u");
    /** {@code struct kvm_irq_routing_irqchip { __u32 irqchip; __u32 pin; }}, the member of the union used here. */
    private static final long ROUTE_IRQCHIP = ROUTE_U, ROUTE_PIN = ROUTE_U + JAVA_INT.byteSize();
    private static final long IRQFD_FD = KvmApi.offset(KvmApi.KVM_IRQFD_ARG, "fd"),
            IRQFD_GSI = KvmApi.offset(KvmApi.KVM_IRQFD_ARG, "gsi");
    private static final long IOEVENTFD_DATAMATCH = KvmApi.offset(KvmApi.KVM_IOEVENTFD_ARG, "datamatch"),
            IOEVENTFD_ADDR = KvmApi.offset(KvmApi.KVM_IOEVENTFD_ARG, "addr"),
            IOEVENTFD_LEN = KvmApi.offset(KvmApi.KVM_IOEVENTFD_ARG, "len"),
            IOEVENTFD_FD = KvmApi.offset(KvmApi.KVM_IOEVENTFD_ARG, "fd"),
            IOEVENTFD_FLAGS = KvmApi.offset(KvmApi.KVM_IOEVENTFD_ARG, "flags");

    /**
     * A VM ioctl with a struct argument (KVM_GET_IRQCHIP, KVM_GET_PIT2, ...); the layout of {@code arg}
     * is the request's, see {@link KvmApi}.
     * @throws KvmException naming the request when it fails
     */
    public int call(dev.jvmm.sys.Ioctl.Request request, MemorySegment arg) {
        return KvmIoctl.call(fd, request, arg);
    }

    private static final long CLOCK_CLOCK = KvmApi.offset(KvmApi.KVM_CLOCK_DATA, "clock");

    /** KVM_GET_CLOCK: the guest's kvmclock now, in nanoseconds. */
    public long getClock() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = arena.allocate(KvmApi.KVM_CLOCK_DATA);
            KvmIoctl.call(fd, KvmApi.KVM_GET_CLOCK, c);
            return c.get(JAVA_LONG, CLOCK_CLOCK);
        }
    }

    /** KVM_SET_CLOCK: the guest's kvmclock becomes {@code nanos} now (no flags: not tied to the host's real time). */
    public void setClock(long nanos) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = arena.allocate(KvmApi.KVM_CLOCK_DATA); // zeroed: flags 0
            c.set(JAVA_LONG, CLOCK_CLOCK, nanos);
            KvmIoctl.call(fd, KvmApi.KVM_SET_CLOCK, c);
        }
    }

    public void setUserMemoryRegion(int slot, long guestPhysAddr, long size, MemorySegment host) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment r = arena.allocate(KvmApi.KVM_USERSPACE_MEMORY_REGION);
            r.set(JAVA_INT, MEM_SLOT, slot);
            r.set(JAVA_INT, MEM_FLAGS, 0);
            r.set(JAVA_LONG, MEM_GPA, guestPhysAddr);
            r.set(JAVA_LONG, MEM_SIZE, size);
            r.set(JAVA_LONG, MEM_HVA, host.address());
            KvmIoctl.call(fd, KvmApi.KVM_SET_USER_MEMORY_REGION, r);
        }
    }

    public void setTssAddr(long addr) {
        KvmIoctl.call(fd, KvmApi.KVM_SET_TSS_ADDR, addr);
    }

    public void setIdentityMapAddr(long addr) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocateFrom(JAVA_LONG, addr);
            KvmIoctl.call(fd, KvmApi.KVM_SET_IDENTITY_MAP_ADDR, a);
        }
    }

    /** In-kernel PIC, IOAPIC and a LAPIC per vCPU; must precede vCPU creation. */
    public void createIrqchip() {
        KvmIoctl.call(fd, KvmApi.KVM_CREATE_IRQCHIP, 0L);
    }

    public void createPit2(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = arena.allocate(KvmApi.KVM_PIT_CONFIG);
            c.set(JAVA_INT, PIT_FLAGS, flags);
            KvmIoctl.call(fd, KvmApi.KVM_CREATE_PIT2, c);
        }
    }

    /** Sets the level of a GSI on the in-kernel irqchip (KVM_IRQ_LINE). Callable from any thread. */
    public void irqLine(int gsi, boolean high) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment l = arena.allocate(KvmApi.KVM_IRQ_LEVEL);
            l.set(JAVA_INT, LEVEL_IRQ, gsi);
            l.set(JAVA_INT, LEVEL_LEVEL, high ? 1 : 0);
            KvmIoctl.call(fd, KvmApi.KVM_IRQ_LINE, l);
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
            r.set(JAVA_INT, ROUTING_NR, routes.size());
            for (int i = 0; i < routes.size(); i++) {
                long at = header + i * size;
                r.set(JAVA_INT, at + ROUTE_GSI, routes.get(i)[0]);
                r.set(JAVA_INT, at + ROUTE_TYPE, KvmApi.KVM_IRQ_ROUTING_IRQCHIP);
                r.set(JAVA_INT, at + ROUTE_IRQCHIP, routes.get(i)[1]);
                r.set(JAVA_INT, at + ROUTE_PIN, routes.get(i)[2]);
            }
            KvmIoctl.call(fd, KvmApi.KVM_SET_GSI_ROUTING, r);
        }
    }

    /** Routes writes to eventfd {@code eventFd} into GSI {@code gsi} (KVM_IRQFD). */
    public void irqfd(int eventFd, int gsi) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(KvmApi.KVM_IRQFD_ARG);
            s.set(JAVA_INT, IRQFD_FD, eventFd);
            s.set(JAVA_INT, IRQFD_GSI, gsi);
            KvmIoctl.call(fd, KvmApi.KVM_IRQFD, s);
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
            s.set(JAVA_LONG, IOEVENTFD_DATAMATCH, datamatch == null ? 0 : datamatch);
            s.set(JAVA_LONG, IOEVENTFD_ADDR, addr);
            s.set(JAVA_INT, IOEVENTFD_LEN, len);
            s.set(JAVA_INT, IOEVENTFD_FD, eventFd);
            s.set(JAVA_INT, IOEVENTFD_FLAGS, (pio ? IOEVENTFD_FLAG_PIO : 0) | (datamatch != null ? IOEVENTFD_FLAG_DATAMATCH : 0));
            KvmIoctl.call(fd, KvmApi.KVM_IOEVENTFD, s);
        }
    }

    static final int IOEVENTFD_FLAG_DATAMATCH = 1, IOEVENTFD_FLAG_PIO = 1 << 1;

    public VcpuFd createVcpu(int id) {
        int vcpu = LibC.ioctl(fd, KvmApi.KVM_CREATE_VCPU.number(), (long) id);
        if (vcpu < 0) throw new KvmException(KvmApi.KVM_CREATE_VCPU.name(), LibC.errno(), "(vCPU " + id + ")");
        return new VcpuFd(id, vcpu, kvm.vcpuMmapSize());
    }

    @Override
    public void close() {
        LibC.close(fd);
    }
}
