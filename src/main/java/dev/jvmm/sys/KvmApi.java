package dev.jvmm.sys;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.StructLayout;
import java.lang.foreign.UnionLayout;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The KVM API of {@code <linux/kvm.h>} for x86-64: struct layouts, ioctl numbers computed from them,
 * capability and exit-reason numbers. The test {@code KvmApiHeaderTest} compiles a C probe in
 * {@code native-headers/} against the system's header and compares every number here with it.
 */
public final class KvmApi {
    private KvmApi() { }

    public static final int KVMIO = 0xAE;
    public static final int API_VERSION = 12;

    // ---- struct layouts (FFM adds no padding: every gap is explicit) ----

    public static final StructLayout KVM_USERSPACE_MEMORY_REGION = MemoryLayout.structLayout(
            JAVA_INT.withName("slot"), JAVA_INT.withName("flags"), JAVA_LONG.withName("guest_phys_addr"),
            JAVA_LONG.withName("memory_size"), JAVA_LONG.withName("userspace_addr")).withName("kvm_userspace_memory_region");

    public static final StructLayout KVM_REGS = MemoryLayout.structLayout(
            JAVA_LONG.withName("rax"), JAVA_LONG.withName("rbx"), JAVA_LONG.withName("rcx"), JAVA_LONG.withName("rdx"),
            JAVA_LONG.withName("rsi"), JAVA_LONG.withName("rdi"), JAVA_LONG.withName("rsp"), JAVA_LONG.withName("rbp"),
            JAVA_LONG.withName("r8"), JAVA_LONG.withName("r9"), JAVA_LONG.withName("r10"), JAVA_LONG.withName("r11"),
            JAVA_LONG.withName("r12"), JAVA_LONG.withName("r13"), JAVA_LONG.withName("r14"), JAVA_LONG.withName("r15"),
            JAVA_LONG.withName("rip"), JAVA_LONG.withName("rflags")).withName("kvm_regs");

    public static final StructLayout KVM_SEGMENT = MemoryLayout.structLayout(
            JAVA_LONG.withName("base"), JAVA_INT.withName("limit"), JAVA_SHORT.withName("selector"),
            JAVA_BYTE.withName("type"), JAVA_BYTE.withName("present"), JAVA_BYTE.withName("dpl"),
            JAVA_BYTE.withName("db"), JAVA_BYTE.withName("s"), JAVA_BYTE.withName("l"), JAVA_BYTE.withName("g"),
            JAVA_BYTE.withName("avl"), JAVA_BYTE.withName("unusable"), JAVA_BYTE.withName("padding")).withName("kvm_segment");

    public static final StructLayout KVM_DTABLE = MemoryLayout.structLayout(
            JAVA_LONG.withName("base"), JAVA_SHORT.withName("limit"),
            MemoryLayout.sequenceLayout(3, JAVA_SHORT).withName("padding")).withName("kvm_dtable");

    public static final StructLayout KVM_SREGS = MemoryLayout.structLayout(
            KVM_SEGMENT.withName("cs"), KVM_SEGMENT.withName("ds"), KVM_SEGMENT.withName("es"),
            KVM_SEGMENT.withName("fs"), KVM_SEGMENT.withName("gs"), KVM_SEGMENT.withName("ss"),
            KVM_SEGMENT.withName("tr"), KVM_SEGMENT.withName("ldt"),
            KVM_DTABLE.withName("gdt"), KVM_DTABLE.withName("idt"),
            JAVA_LONG.withName("cr0"), JAVA_LONG.withName("cr2"), JAVA_LONG.withName("cr3"), JAVA_LONG.withName("cr4"),
            JAVA_LONG.withName("cr8"), JAVA_LONG.withName("efer"), JAVA_LONG.withName("apic_base"),
            MemoryLayout.sequenceLayout(4, JAVA_LONG).withName("interrupt_bitmap")).withName("kvm_sregs");

    public static final StructLayout KVM_FPU = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(128, JAVA_BYTE).withName("fpr"),
            JAVA_SHORT.withName("fcw"), JAVA_SHORT.withName("fsw"), JAVA_BYTE.withName("ftwx"), JAVA_BYTE.withName("pad1"),
            JAVA_SHORT.withName("last_opcode"), JAVA_LONG.withName("last_ip"), JAVA_LONG.withName("last_dp"),
            MemoryLayout.sequenceLayout(256, JAVA_BYTE).withName("xmm"),
            JAVA_INT.withName("mxcsr"), JAVA_INT.withName("pad2")).withName("kvm_fpu");

    public static final StructLayout KVM_IRQ_LEVEL = MemoryLayout.structLayout(
            JAVA_INT.withName("irq"), JAVA_INT.withName("level")).withName("kvm_irq_level");

    public static final StructLayout KVM_PIT_CONFIG = MemoryLayout.structLayout(
            JAVA_INT.withName("flags"), MemoryLayout.sequenceLayout(15, JAVA_INT).withName("pad")).withName("kvm_pit_config");

    public static final StructLayout KVM_CPUID_ENTRY2 = MemoryLayout.structLayout(
            JAVA_INT.withName("function"), JAVA_INT.withName("index"), JAVA_INT.withName("flags"),
            JAVA_INT.withName("eax"), JAVA_INT.withName("ebx"), JAVA_INT.withName("ecx"), JAVA_INT.withName("edx"),
            MemoryLayout.sequenceLayout(3, JAVA_INT).withName("padding")).withName("kvm_cpuid_entry2");

    /** The fixed header of {@code struct kvm_cpuid2}; its flexible array of entries follows. */
    public static final StructLayout KVM_CPUID2 = MemoryLayout.structLayout(
            JAVA_INT.withName("nent"), JAVA_INT.withName("padding")).withName("kvm_cpuid2");

    public static final StructLayout KVM_MSR_ENTRY = MemoryLayout.structLayout(
            JAVA_INT.withName("index"), JAVA_INT.withName("reserved"), JAVA_LONG.withName("data")).withName("kvm_msr_entry");

    /** The fixed header of {@code struct kvm_msrs}; its flexible array of entries follows (hence 8-byte aligned). */
    public static final StructLayout KVM_MSRS = MemoryLayout.structLayout(
            JAVA_INT.withName("nmsrs"), JAVA_INT.withName("pad")).withName("kvm_msrs").withByteAlignment(8);

    /** The fixed header of {@code struct kvm_signal_mask}; the kernel's 8-byte sigset follows. */
    public static final StructLayout KVM_SIGNAL_MASK = MemoryLayout.structLayout(
            JAVA_INT.withName("len")).withName("kvm_signal_mask");

    public static final StructLayout KVM_MP_STATE = MemoryLayout.structLayout(
            JAVA_INT.withName("mp_state")).withName("kvm_mp_state");

    /** {@code struct kvm_irq_routing_entry} with the irqchip member of its union (pad: the union's 32 bytes). */
    public static final StructLayout KVM_IRQ_ROUTING_ENTRY = MemoryLayout.structLayout(
            JAVA_INT.withName("gsi"), JAVA_INT.withName("type"), JAVA_INT.withName("flags"), JAVA_INT.withName("pad"),
            MemoryLayout.sequenceLayout(32, JAVA_BYTE).withName("u")).withName("kvm_irq_routing_entry").withByteAlignment(8);

    /** The fixed header of {@code struct kvm_irq_routing}; its flexible array of entries follows. */
    public static final StructLayout KVM_IRQ_ROUTING = MemoryLayout.structLayout(
            JAVA_INT.withName("nr"), JAVA_INT.withName("flags")).withName("kvm_irq_routing").withByteAlignment(8);

    /** {@code struct kvm_lapic_state}: the local APIC's 1 KiB register page. */
    public static final StructLayout KVM_LAPIC_STATE = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(1024, JAVA_BYTE).withName("regs")).withName("kvm_lapic_state");

    public static final StructLayout KVM_IRQFD_ARG = MemoryLayout.structLayout(
            JAVA_INT.withName("fd"), JAVA_INT.withName("gsi"), JAVA_INT.withName("flags"), JAVA_INT.withName("resamplefd"),
            MemoryLayout.sequenceLayout(16, JAVA_BYTE).withName("pad")).withName("kvm_irqfd");

    public static final StructLayout KVM_IOEVENTFD_ARG = MemoryLayout.structLayout(
            JAVA_LONG.withName("datamatch"), JAVA_LONG.withName("addr"), JAVA_INT.withName("len"), JAVA_INT.withName("fd"),
            JAVA_INT.withName("flags"), MemoryLayout.sequenceLayout(36, JAVA_BYTE).withName("pad")).withName("kvm_ioeventfd");

    public static final StructLayout KVM_RUN_IO = MemoryLayout.structLayout(
            JAVA_BYTE.withName("direction"), JAVA_BYTE.withName("size"), JAVA_SHORT.withName("port"),
            JAVA_INT.withName("count"), JAVA_LONG.withName("data_offset")).withName("io");

    public static final StructLayout KVM_RUN_MMIO = MemoryLayout.structLayout(
            JAVA_LONG.withName("phys_addr"), MemoryLayout.sequenceLayout(8, JAVA_BYTE).withName("data"),
            JAVA_INT.withName("len"), JAVA_BYTE.withName("is_write"), MemoryLayout.paddingLayout(3)).withName("mmio");

    public static final StructLayout KVM_RUN_FAIL_ENTRY = MemoryLayout.structLayout(
            JAVA_LONG.withName("hardware_entry_failure_reason"), JAVA_INT.withName("cpu"),
            MemoryLayout.paddingLayout(4)).withName("fail_entry");

    public static final StructLayout KVM_RUN_INTERNAL = MemoryLayout.structLayout(
            JAVA_INT.withName("suberror"), JAVA_INT.withName("ndata"),
            MemoryLayout.sequenceLayout(16, JAVA_LONG).withName("data")).withName("internal");

    public static final StructLayout KVM_RUN_SYSTEM_EVENT = MemoryLayout.structLayout(
            JAVA_INT.withName("type"), JAVA_INT.withName("ndata"),
            MemoryLayout.sequenceLayout(16, JAVA_LONG).withName("data")).withName("system_event");

    /** {@code struct kvm_debug_exit_arch}: kvm_run's exit for KVM_EXIT_DEBUG (member "debug"). */
    public static final StructLayout KVM_DEBUG_EXIT_ARCH = MemoryLayout.structLayout(
            JAVA_INT.withName("exception"), JAVA_INT.withName("pad"), JAVA_LONG.withName("pc"),
            JAVA_LONG.withName("dr6"), JAVA_LONG.withName("dr7")).withName("kvm_debug_exit_arch");

    public static final UnionLayout KVM_RUN_EXIT = MemoryLayout.unionLayout(
            JAVA_LONG.withName("hw"), KVM_RUN_FAIL_ENTRY, KVM_RUN_IO, KVM_RUN_MMIO, KVM_RUN_INTERNAL,
            KVM_DEBUG_EXIT_ARCH.withName("debug"),
            KVM_RUN_SYSTEM_EVENT, MemoryLayout.sequenceLayout(256, JAVA_BYTE).withName("padding")).withName("exit");

    /** {@code struct kvm_run} up to and including the exit union, then the register sync area. */
    public static final StructLayout KVM_RUN = MemoryLayout.structLayout(
            JAVA_BYTE.withName("request_interrupt_window"), JAVA_BYTE.withName("immediate_exit"),
            MemoryLayout.sequenceLayout(6, JAVA_BYTE).withName("padding1"),
            JAVA_INT.withName("exit_reason"), JAVA_BYTE.withName("ready_for_interrupt_injection"),
            JAVA_BYTE.withName("if_flag"), JAVA_SHORT.withName("flags"),
            JAVA_LONG.withName("cr8"), JAVA_LONG.withName("apic_base"),
            KVM_RUN_EXIT,
            JAVA_LONG.withName("kvm_valid_regs"), JAVA_LONG.withName("kvm_dirty_regs"),
            MemoryLayout.sequenceLayout(2048, JAVA_BYTE).withName("s")).withName("kvm_run");

    /** Byte offset of a (possibly nested) field, e.g. {@code offset(KVM_RUN, "exit", "io", "port")}. */
    public static long offset(MemoryLayout layout, String... path) {
        PathElement[] elements = new PathElement[path.length];
        for (int i = 0; i < path.length; i++) elements[i] = PathElement.groupElement(path[i]);
        return layout.byteOffset(elements);
    }

    // ---- kvm_run offsets used on the exit path ----
    public static final long RUN_IMMEDIATE_EXIT = offset(KVM_RUN, "immediate_exit");
    public static final long RUN_EXIT_REASON = offset(KVM_RUN, "exit_reason");
    public static final long RUN_IO_DIRECTION = offset(KVM_RUN, "exit", "io", "direction");
    public static final long RUN_IO_SIZE = offset(KVM_RUN, "exit", "io", "size");
    public static final long RUN_IO_PORT = offset(KVM_RUN, "exit", "io", "port");
    public static final long RUN_IO_COUNT = offset(KVM_RUN, "exit", "io", "count");
    public static final long RUN_IO_DATA_OFFSET = offset(KVM_RUN, "exit", "io", "data_offset");
    public static final long RUN_MMIO_PHYS_ADDR = offset(KVM_RUN, "exit", "mmio", "phys_addr");
    public static final long RUN_MMIO_DATA = offset(KVM_RUN, "exit", "mmio", "data");
    public static final long RUN_MMIO_LEN = offset(KVM_RUN, "exit", "mmio", "len");
    public static final long RUN_MMIO_IS_WRITE = offset(KVM_RUN, "exit", "mmio", "is_write");
    public static final long RUN_FAIL_ENTRY_REASON = offset(KVM_RUN, "exit", "fail_entry", "hardware_entry_failure_reason");
    public static final long RUN_FAIL_ENTRY_CPU = offset(KVM_RUN, "exit", "fail_entry", "cpu");
    public static final long RUN_INTERNAL_SUBERROR = offset(KVM_RUN, "exit", "internal", "suberror");
    public static final long RUN_INTERNAL_NDATA = offset(KVM_RUN, "exit", "internal", "ndata");
    public static final long RUN_INTERNAL_DATA = offset(KVM_RUN, "exit", "internal", "data");
    public static final int RUN_INTERNAL_DATA_WORDS = (int) (KVM_RUN_INTERNAL.select(PathElement.groupElement("data")).byteSize() / 8);
    public static final long RUN_SYSTEM_EVENT_TYPE = offset(KVM_RUN, "exit", "system_event", "type");
    public static final long RUN_HW_EXIT_REASON = offset(KVM_RUN, "exit", "hw");
    public static final long RUN_DEBUG_EXCEPTION = offset(KVM_RUN, "exit", "debug", "exception");
    public static final long RUN_DEBUG_PC = offset(KVM_RUN, "exit", "debug", "pc");
    public static final long RUN_DEBUG_DR6 = offset(KVM_RUN, "exit", "debug", "dr6");

    // ---- ioctls on /dev/kvm ----
    public static final Ioctl.Request KVM_GET_API_VERSION = Ioctl.Request.io("KVM_GET_API_VERSION", KVMIO, 0x00);
    public static final Ioctl.Request KVM_CREATE_VM = Ioctl.Request.io("KVM_CREATE_VM", KVMIO, 0x01);
    public static final Ioctl.Request KVM_CHECK_EXTENSION = Ioctl.Request.io("KVM_CHECK_EXTENSION", KVMIO, 0x03);
    public static final Ioctl.Request KVM_GET_VCPU_MMAP_SIZE = Ioctl.Request.io("KVM_GET_VCPU_MMAP_SIZE", KVMIO, 0x04);
    public static final Ioctl.Request KVM_GET_SUPPORTED_CPUID = Ioctl.Request.iowr("KVM_GET_SUPPORTED_CPUID", KVMIO, 0x05, KVM_CPUID2.byteSize());
    // ---- ioctls on a VM ----
    public static final Ioctl.Request KVM_CREATE_VCPU = Ioctl.Request.io("KVM_CREATE_VCPU", KVMIO, 0x41);
    public static final Ioctl.Request KVM_SET_USER_MEMORY_REGION = Ioctl.Request.iow("KVM_SET_USER_MEMORY_REGION", KVMIO, 0x46, KVM_USERSPACE_MEMORY_REGION.byteSize());
    public static final Ioctl.Request KVM_SET_TSS_ADDR = Ioctl.Request.io("KVM_SET_TSS_ADDR", KVMIO, 0x47);
    public static final Ioctl.Request KVM_SET_IDENTITY_MAP_ADDR = Ioctl.Request.iow("KVM_SET_IDENTITY_MAP_ADDR", KVMIO, 0x48, JAVA_LONG.byteSize());
    public static final Ioctl.Request KVM_CREATE_IRQCHIP = Ioctl.Request.io("KVM_CREATE_IRQCHIP", KVMIO, 0x60);
    public static final Ioctl.Request KVM_IRQ_LINE = Ioctl.Request.iow("KVM_IRQ_LINE", KVMIO, 0x61, KVM_IRQ_LEVEL.byteSize());
    public static final Ioctl.Request KVM_SET_GSI_ROUTING = Ioctl.Request.iow("KVM_SET_GSI_ROUTING", KVMIO, 0x6a, KVM_IRQ_ROUTING.byteSize());
    public static final Ioctl.Request KVM_IRQFD = Ioctl.Request.iow("KVM_IRQFD", KVMIO, 0x76, KVM_IRQFD_ARG.byteSize());
    public static final Ioctl.Request KVM_CREATE_PIT2 = Ioctl.Request.iow("KVM_CREATE_PIT2", KVMIO, 0x77, KVM_PIT_CONFIG.byteSize());
    public static final Ioctl.Request KVM_IOEVENTFD = Ioctl.Request.iow("KVM_IOEVENTFD", KVMIO, 0x79, KVM_IOEVENTFD_ARG.byteSize());
    // ---- ioctls on a vCPU ----
    public static final Ioctl.Request KVM_RUN_IOCTL = Ioctl.Request.io("KVM_RUN", KVMIO, 0x80);
    public static final Ioctl.Request KVM_GET_REGS = Ioctl.Request.ior("KVM_GET_REGS", KVMIO, 0x81, KVM_REGS.byteSize());
    public static final Ioctl.Request KVM_SET_REGS = Ioctl.Request.iow("KVM_SET_REGS", KVMIO, 0x82, KVM_REGS.byteSize());
    public static final Ioctl.Request KVM_GET_SREGS = Ioctl.Request.ior("KVM_GET_SREGS", KVMIO, 0x83, KVM_SREGS.byteSize());
    public static final Ioctl.Request KVM_SET_SREGS = Ioctl.Request.iow("KVM_SET_SREGS", KVMIO, 0x84, KVM_SREGS.byteSize());
    public static final Ioctl.Request KVM_SET_MSRS = Ioctl.Request.iow("KVM_SET_MSRS", KVMIO, 0x89, KVM_MSRS.byteSize());
    public static final Ioctl.Request KVM_SET_SIGNAL_MASK = Ioctl.Request.iow("KVM_SET_SIGNAL_MASK", KVMIO, 0x8b, KVM_SIGNAL_MASK.byteSize());
    public static final Ioctl.Request KVM_GET_FPU = Ioctl.Request.ior("KVM_GET_FPU", KVMIO, 0x8c, KVM_FPU.byteSize());
    public static final Ioctl.Request KVM_SET_FPU = Ioctl.Request.iow("KVM_SET_FPU", KVMIO, 0x8d, KVM_FPU.byteSize());
    public static final Ioctl.Request KVM_SET_CPUID2 = Ioctl.Request.iow("KVM_SET_CPUID2", KVMIO, 0x90, KVM_CPUID2.byteSize());
    public static final Ioctl.Request KVM_GET_MP_STATE = Ioctl.Request.ior("KVM_GET_MP_STATE", KVMIO, 0x98, KVM_MP_STATE.byteSize());
    public static final Ioctl.Request KVM_GET_LAPIC = Ioctl.Request.ior("KVM_GET_LAPIC", KVMIO, 0x8e, KVM_LAPIC_STATE.byteSize());
    public static final Ioctl.Request KVM_SET_LAPIC = Ioctl.Request.iow("KVM_SET_LAPIC", KVMIO, 0x8f, KVM_LAPIC_STATE.byteSize());

    // ---- capabilities (KVM_CHECK_EXTENSION) ----
    public static final int KVM_CAP_IRQCHIP = 0, KVM_CAP_HLT = 1, KVM_CAP_USER_MEMORY = 3, KVM_CAP_SET_TSS_ADDR = 4,
            KVM_CAP_EXT_CPUID = 7, KVM_CAP_NR_VCPUS = 9, KVM_CAP_NR_MEMSLOTS = 10, KVM_CAP_MP_STATE = 14,
            KVM_CAP_IRQ_ROUTING = 25, KVM_CAP_IRQ_INJECT_STATUS = 26, KVM_CAP_IRQFD = 32, KVM_CAP_PIT2 = 33,
            KVM_CAP_PIT_STATE2 = 35, KVM_CAP_IOEVENTFD = 36, KVM_CAP_SET_IDENTITY_MAP_ADDR = 37,
            KVM_CAP_MAX_VCPUS = 66, KVM_CAP_SIGNAL_MSI = 77, KVM_CAP_SPLIT_IRQCHIP = 121,
            KVM_CAP_MAX_VCPU_ID = 128, KVM_CAP_IMMEDIATE_EXIT = 136;

    // ---- exit reasons ----
    public static final int KVM_EXIT_UNKNOWN = 0, KVM_EXIT_EXCEPTION = 1, KVM_EXIT_IO = 2, KVM_EXIT_HYPERCALL = 3,
            KVM_EXIT_DEBUG = 4, KVM_EXIT_HLT = 5, KVM_EXIT_MMIO = 6, KVM_EXIT_IRQ_WINDOW_OPEN = 7,
            KVM_EXIT_SHUTDOWN = 8, KVM_EXIT_FAIL_ENTRY = 9, KVM_EXIT_INTR = 10, KVM_EXIT_SET_TPR = 11,
            KVM_EXIT_TPR_ACCESS = 12, KVM_EXIT_NMI = 16, KVM_EXIT_INTERNAL_ERROR = 17,
            KVM_EXIT_SYSTEM_EVENT = 24, KVM_EXIT_IOAPIC_EOI = 26;
    public static final int KVM_EXIT_IO_IN = 0, KVM_EXIT_IO_OUT = 1;
    public static final int KVM_INTERNAL_ERROR_EMULATION = 1, KVM_INTERNAL_ERROR_SIMUL_EX = 2,
            KVM_INTERNAL_ERROR_DELIVERY_EV = 3;
    public static final int KVM_SYSTEM_EVENT_SHUTDOWN = 1, KVM_SYSTEM_EVENT_RESET = 2, KVM_SYSTEM_EVENT_CRASH = 3;
    public static final int KVM_PIT_SPEAKER_DUMMY = 1;
    public static final int KVM_IRQ_ROUTING_IRQCHIP = 1;
    public static final int KVM_IRQCHIP_PIC_MASTER = 0, KVM_IRQCHIP_PIC_SLAVE = 1, KVM_IRQCHIP_IOAPIC = 2;
    public static final int KVM_MP_STATE_RUNNABLE = 0, KVM_MP_STATE_UNINITIALIZED = 1, KVM_MP_STATE_INIT_RECEIVED = 2,
            KVM_MP_STATE_HALTED = 3, KVM_MP_STATE_SIPI_RECEIVED = 4;

    // ==== snap branch: the state a snapshot saves and restores (VM: clock, irqchip, PIT; vCPU: MSRs,
    // XSAVE, XCRs, events, debug registers, CPUID, MP state). Members KVM's own code fills and reads
    // stay opaque byte runs named after their C member; kvm_probe.c checks each against <linux/kvm.h>. ====

    public static final StructLayout KVM_CLOCK_DATA = MemoryLayout.structLayout(
            JAVA_LONG.withName("clock"), JAVA_INT.withName("flags"), JAVA_INT.withName("pad0"),
            JAVA_LONG.withName("realtime"), JAVA_LONG.withName("host_tsc"),
            MemoryLayout.sequenceLayout(4, JAVA_INT).withName("pad")).withName("kvm_clock_data");

    /** {@code struct kvm_irqchip}: chip_id selects the PIC master, PIC slave or IOAPIC; chip is their 512-byte union. */
    public static final StructLayout KVM_IRQCHIP = MemoryLayout.structLayout(
            JAVA_INT.withName("chip_id"), JAVA_INT.withName("pad"),
            MemoryLayout.sequenceLayout(512, JAVA_BYTE).withName("chip")).withName("kvm_irqchip").withByteAlignment(8);

    public static final StructLayout KVM_PIT_CHANNEL_STATE = MemoryLayout.structLayout(
            JAVA_INT.withName("count"), JAVA_SHORT.withName("latched_count"), JAVA_BYTE.withName("count_latched"),
            JAVA_BYTE.withName("status_latched"), JAVA_BYTE.withName("status"), JAVA_BYTE.withName("read_state"),
            JAVA_BYTE.withName("write_state"), JAVA_BYTE.withName("write_latch"), JAVA_BYTE.withName("rw_mode"),
            JAVA_BYTE.withName("mode"), JAVA_BYTE.withName("bcd"), JAVA_BYTE.withName("gate"),
            JAVA_LONG.withName("count_load_time")).withName("kvm_pit_channel_state");

    public static final StructLayout KVM_PIT_STATE2 = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(3, KVM_PIT_CHANNEL_STATE).withName("channels"), JAVA_INT.withName("flags"),
            MemoryLayout.sequenceLayout(9, JAVA_INT).withName("reserved")).withName("kvm_pit_state2");

    /** {@code struct kvm_vcpu_events}; its small nested structs are byte runs (only flags is touched here). */
    public static final StructLayout KVM_VCPU_EVENTS = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(8, JAVA_BYTE).withName("exception"),
            MemoryLayout.sequenceLayout(4, JAVA_BYTE).withName("interrupt"),
            MemoryLayout.sequenceLayout(4, JAVA_BYTE).withName("nmi"),
            JAVA_INT.withName("sipi_vector"), JAVA_INT.withName("flags"),
            MemoryLayout.sequenceLayout(4, JAVA_BYTE).withName("smi"),
            MemoryLayout.sequenceLayout(1, JAVA_BYTE).withName("triple_fault"),
            MemoryLayout.sequenceLayout(26, JAVA_BYTE).withName("reserved"),
            JAVA_BYTE.withName("exception_has_payload"),
            JAVA_LONG.withName("exception_payload")).withName("kvm_vcpu_events");

    public static final StructLayout KVM_DEBUGREGS = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(4, JAVA_LONG).withName("db"), JAVA_LONG.withName("dr6"), JAVA_LONG.withName("dr7"),
            JAVA_LONG.withName("flags"), MemoryLayout.sequenceLayout(9, JAVA_LONG).withName("reserved")).withName("kvm_debugregs");

    /** {@code struct kvm_xsave}: the 4 KiB XSAVE area (KVM_CAP_XSAVE2 reports more only for AMX, never enabled here). */
    public static final StructLayout KVM_XSAVE = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(1024, JAVA_INT).withName("region")).withName("kvm_xsave");

    public static final StructLayout KVM_XCR = MemoryLayout.structLayout(
            JAVA_INT.withName("xcr"), JAVA_INT.withName("reserved"), JAVA_LONG.withName("value")).withName("kvm_xcr");

    public static final StructLayout KVM_XCRS = MemoryLayout.structLayout(
            JAVA_INT.withName("nr_xcrs"), JAVA_INT.withName("flags"),
            MemoryLayout.sequenceLayout(16, KVM_XCR).withName("xcrs"),
            MemoryLayout.sequenceLayout(16, JAVA_LONG).withName("padding")).withName("kvm_xcrs");

    /** The fixed header of {@code struct kvm_msr_list}; its flexible array of 32-bit indices follows. */
    public static final StructLayout KVM_MSR_LIST = MemoryLayout.structLayout(
            JAVA_INT.withName("nmsrs")).withName("kvm_msr_list");

    public static final Ioctl.Request KVM_GET_MSR_INDEX_LIST = Ioctl.Request.iowr("KVM_GET_MSR_INDEX_LIST", KVMIO, 0x02, KVM_MSR_LIST.byteSize());
    public static final Ioctl.Request KVM_GET_IRQCHIP = Ioctl.Request.iowr("KVM_GET_IRQCHIP", KVMIO, 0x62, KVM_IRQCHIP.byteSize());
    /** _IOR in the header (a historical slip that is now ABI), though the kernel reads the argument. */
    public static final Ioctl.Request KVM_SET_IRQCHIP = Ioctl.Request.ior("KVM_SET_IRQCHIP", KVMIO, 0x63, KVM_IRQCHIP.byteSize());
    public static final Ioctl.Request KVM_SET_CLOCK = Ioctl.Request.iow("KVM_SET_CLOCK", KVMIO, 0x7b, KVM_CLOCK_DATA.byteSize());
    public static final Ioctl.Request KVM_GET_CLOCK = Ioctl.Request.ior("KVM_GET_CLOCK", KVMIO, 0x7c, KVM_CLOCK_DATA.byteSize());
    public static final Ioctl.Request KVM_GET_PIT2 = Ioctl.Request.ior("KVM_GET_PIT2", KVMIO, 0x9f, KVM_PIT_STATE2.byteSize());
    public static final Ioctl.Request KVM_SET_PIT2 = Ioctl.Request.iow("KVM_SET_PIT2", KVMIO, 0xa0, KVM_PIT_STATE2.byteSize());
    public static final Ioctl.Request KVM_GET_MSRS = Ioctl.Request.iowr("KVM_GET_MSRS", KVMIO, 0x88, KVM_MSRS.byteSize());
    public static final Ioctl.Request KVM_GET_CPUID2 = Ioctl.Request.iowr("KVM_GET_CPUID2", KVMIO, 0x91, KVM_CPUID2.byteSize());
    public static final Ioctl.Request KVM_SET_MP_STATE = Ioctl.Request.iow("KVM_SET_MP_STATE", KVMIO, 0x99, KVM_MP_STATE.byteSize());
    public static final Ioctl.Request KVM_GET_VCPU_EVENTS = Ioctl.Request.ior("KVM_GET_VCPU_EVENTS", KVMIO, 0x9f, KVM_VCPU_EVENTS.byteSize());
    public static final Ioctl.Request KVM_SET_VCPU_EVENTS = Ioctl.Request.iow("KVM_SET_VCPU_EVENTS", KVMIO, 0xa0, KVM_VCPU_EVENTS.byteSize());
    public static final Ioctl.Request KVM_GET_DEBUGREGS = Ioctl.Request.ior("KVM_GET_DEBUGREGS", KVMIO, 0xa1, KVM_DEBUGREGS.byteSize());
    public static final Ioctl.Request KVM_SET_DEBUGREGS = Ioctl.Request.iow("KVM_SET_DEBUGREGS", KVMIO, 0xa2, KVM_DEBUGREGS.byteSize());
    public static final Ioctl.Request KVM_GET_XSAVE = Ioctl.Request.ior("KVM_GET_XSAVE", KVMIO, 0xa4, KVM_XSAVE.byteSize());
    public static final Ioctl.Request KVM_SET_XSAVE = Ioctl.Request.iow("KVM_SET_XSAVE", KVMIO, 0xa5, KVM_XSAVE.byteSize());
    public static final Ioctl.Request KVM_GET_XCRS = Ioctl.Request.ior("KVM_GET_XCRS", KVMIO, 0xa6, KVM_XCRS.byteSize());
    public static final Ioctl.Request KVM_SET_XCRS = Ioctl.Request.iow("KVM_SET_XCRS", KVMIO, 0xa7, KVM_XCRS.byteSize());

    public static final int KVM_CAP_ADJUST_CLOCK = 39, KVM_CAP_VCPU_EVENTS = 41, KVM_CAP_DEBUGREGS = 50, KVM_CAP_XSAVE = 55,
            KVM_CAP_XCRS = 56;
    public static final int KVM_VCPUEVENT_VALID_NMI_PENDING = 1, KVM_VCPUEVENT_VALID_SIPI_VECTOR = 2;
    public static final int KVM_NR_IRQCHIPS = 3, KVM_MAX_XCRS = 16;
    // ==== end of snap branch ====

    // ==== gdb branch: the guest-debug interface (KVM_SET_GUEST_DEBUG, KVM_EXIT_DEBUG) and KVM_TRANSLATE ====

    /** {@code struct kvm_guest_debug_arch}: DR0-DR7 as the debugger wants them. */
    public static final StructLayout KVM_GUEST_DEBUG_ARCH = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(8, JAVA_LONG).withName("debugreg")).withName("kvm_guest_debug_arch");

    public static final StructLayout KVM_GUEST_DEBUG = MemoryLayout.structLayout(
            JAVA_INT.withName("control"), JAVA_INT.withName("pad"),
            KVM_GUEST_DEBUG_ARCH.withName("arch")).withName("kvm_guest_debug");

    /** {@code struct kvm_translation}: a guest virtual (linear) address in, its physical address out. */
    public static final StructLayout KVM_TRANSLATION = MemoryLayout.structLayout(
            JAVA_LONG.withName("linear_address"), JAVA_LONG.withName("physical_address"),
            JAVA_BYTE.withName("valid"), JAVA_BYTE.withName("writeable"), JAVA_BYTE.withName("usermode"),
            MemoryLayout.sequenceLayout(5, JAVA_BYTE).withName("pad")).withName("kvm_translation");

    public static final Ioctl.Request KVM_TRANSLATE = Ioctl.Request.iowr("KVM_TRANSLATE", KVMIO, 0x85, KVM_TRANSLATION.byteSize());
    public static final Ioctl.Request KVM_SET_GUEST_DEBUG = Ioctl.Request.iow("KVM_SET_GUEST_DEBUG", KVMIO, 0x9b, KVM_GUEST_DEBUG.byteSize());

    public static final int KVM_CAP_SET_GUEST_DEBUG = 23;
    public static final int KVM_GUESTDBG_ENABLE = 0x1, KVM_GUESTDBG_SINGLESTEP = 0x2, KVM_GUESTDBG_USE_SW_BP = 0x10000,
            KVM_GUESTDBG_USE_HW_BP = 0x20000, KVM_GUESTDBG_INJECT_DB = 0x40000, KVM_GUESTDBG_INJECT_BP = 0x80000;
    /** The exception vectors a debug exit names: #DB and #BP. */
    public static final int DB_VECTOR = 1, BP_VECTOR = 3;
    // ==== end of gdb branch ====

    /** A readable name for an exit reason, for stats and errors. */
    public static String exitName(int reason) {
        return switch (reason) {
            case KVM_EXIT_UNKNOWN -> "UNKNOWN"; case KVM_EXIT_EXCEPTION -> "EXCEPTION"; case KVM_EXIT_IO -> "IO";
            case KVM_EXIT_HYPERCALL -> "HYPERCALL"; case KVM_EXIT_DEBUG -> "DEBUG"; case KVM_EXIT_HLT -> "HLT";
            case KVM_EXIT_MMIO -> "MMIO"; case KVM_EXIT_IRQ_WINDOW_OPEN -> "IRQ_WINDOW_OPEN";
            case KVM_EXIT_SHUTDOWN -> "SHUTDOWN"; case KVM_EXIT_FAIL_ENTRY -> "FAIL_ENTRY"; case KVM_EXIT_INTR -> "INTR";
            case KVM_EXIT_SET_TPR -> "SET_TPR"; case KVM_EXIT_TPR_ACCESS -> "TPR_ACCESS"; case KVM_EXIT_NMI -> "NMI";
            case KVM_EXIT_INTERNAL_ERROR -> "INTERNAL_ERROR"; case KVM_EXIT_SYSTEM_EVENT -> "SYSTEM_EVENT";
            case KVM_EXIT_IOAPIC_EOI -> "IOAPIC_EOI";
            default -> "EXIT_" + reason;
        };
    }
}
