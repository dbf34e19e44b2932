package dev.jvmm.arch.x86;

import dev.jvmm.arch.x86.acpi.AcpiPorts;
import dev.jvmm.kvm.VcpuFd;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.KvmApi;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/** Puts a vCPU into a loader's entry state, and describes its CPU (CPUID) to the guest. */
public final class CpuSetup {
    private CpuSetup() { }

    /** A flat GDT for protected-mode entry: null, code 0x08, data 0x10, TSS 0x18. */
    public static final long GDT_ADDR = 0x500;
    public static final long IDT_ADDR = 0x520;
    static final long[] GDT = {0, 0x00cf9b000000ffffL, 0x00cf93000000ffffL, 0x0000008b00000067L};
    /** The same GDT with a 64-bit code segment (L set, D clear) for long-mode entry. */
    static final long CODE64 = 0x00af9b000000ffffL;
    static final long CR0_PE = 1, CR0_ET = 0x10, CR0_PG = 0x80000000L, CR4_PAE = 0x20, EFER_LME = 0x100, EFER_LMA = 0x400;

    private static final long REGS_RSP = KvmApi.offset(KvmApi.KVM_REGS, "rsp");
    private static final long REGS_RIP = KvmApi.offset(KvmApi.KVM_REGS, "rip");
    private static final long REGS_RFLAGS = KvmApi.offset(KvmApi.KVM_REGS, "rflags");
    private static final long REGS_RAX = KvmApi.offset(KvmApi.KVM_REGS, "rax");
    private static final long REGS_RSI = KvmApi.offset(KvmApi.KVM_REGS, "rsi");
    private static final long REGS_RBP = KvmApi.offset(KvmApi.KVM_REGS, "rbp");
    private static final long REGS_RBX = KvmApi.offset(KvmApi.KVM_REGS, "rbx");

    /**
     * Writes what the guest may rely on before its own code runs: a real-mode interrupt vector table
     * whose 256 vectors all point at an IRET in the BIOS area (so a stray {@code int n} or an unmasked
     * interrupt returns instead of jumping to 0:0), the GDT/IDT that protected-mode and long-mode entry
     * use, and for long-mode entry the identity-mapping page tables.
     */
    public static void writeFirmwareTables(GuestMemory mem, EntryState entry) {
        mem.write(Layout.BIOS_IRET, new byte[] {(byte) 0xcf}); // iret
        // The reset vector F000:FFF0, where a CPU starts after a reset and where Linux jumps to reboot
        // when ACPI and EFI did not (a hardware-reduced FADT makes it pick EFI, and without EFI it
        // falls back to the BIOS): reset the machine the way jvmm sees, through the ACPI reset
        // register, then the i8042; then halt.
        mem.write(Layout.RESET_VECTOR, new byte[] {
                (byte) 0xba, (byte) AcpiPorts.RESET, (byte) (AcpiPorts.RESET >> 8), // mov dx, ACPI reset register
                (byte) 0xb0, (byte) AcpiPorts.RESET_VALUE,                        // mov al, its reset value
                (byte) 0xee,                      // out dx, al
                (byte) 0xb0, (byte) 0xfe,         // mov al, 0xfe (i8042: pulse reset)
                (byte) 0xe6, (byte) PcPlatform.I8042_COMMAND_PORT, // out 0x64, al
                (byte) 0xf4,                      // hlt
                (byte) 0xeb, (byte) 0xfd});       // jmp back to hlt
        MemorySegment ivt = mem.slice(0, 256 * 4);
        int vector = (int) ((Layout.BIOS_IRET >> 4) << 16 | (Layout.BIOS_IRET & 0xf)); // segment:offset
        for (int i = 0; i < 256; i++) ivt.set(JAVA_INT, i * 4L, vector);
        MemorySegment gdt = mem.slice(GDT_ADDR, GDT.length * 8L);
        boolean longMode = entry instanceof EntryState.Long64;
        for (int i = 0; i < GDT.length; i++) gdt.set(JAVA_LONG, i * 8L, i == 1 && longMode ? CODE64 : GDT[i]);
        mem.zero(IDT_ADDR, 8);
        if (longMode) writePageTables(mem);
    }

    /** Sets the boot vCPU's registers for {@code entry}. */
    public static void applyEntry(VcpuFd vcpu, EntryState entry) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sregs = arena.allocate(KvmApi.KVM_SREGS);
            MemorySegment regs = arena.allocate(KvmApi.KVM_REGS);
            vcpu.call(KvmApi.KVM_GET_SREGS, sregs);
            regs.set(JAVA_LONG, REGS_RFLAGS, 2L);
            // an instanceof chain, not a pattern switch: javac compiles the latter to an invokedynamic
            // whose bootstrap spins a class at run time, on every boot's critical path
            if (entry instanceof EntryState.RealMode rm) {
                for (String seg : new String[] {"cs", "ds", "es", "fs", "gs", "ss"}) {
                    long base = KvmApi.offset(KvmApi.KVM_SREGS, seg);
                    sregs.set(JAVA_LONG, base, (long) rm.cs() << 4);
                    sregs.set(JAVA_SHORT, base + SEG_SELECTOR, (short) rm.cs());
                    sregs.set(JAVA_INT, base + SEG_LIMIT, 0xffff);
                }
                regs.set(JAVA_LONG, REGS_RIP, rm.ip() & 0xffffL);
                regs.set(JAVA_LONG, REGS_RSP, rm.sp() & 0xffffL);
                regs.set(JAVA_LONG, REGS_RBP, rm.sp() & 0xffffL); // as kvmtool does
            } else if (entry instanceof EntryState.Protected32 pm) {
                setFlatSegment(sregs, "cs", 0x08, 0xb);
                for (String seg : new String[] {"ds", "es", "fs", "gs", "ss"}) setFlatSegment(sregs, seg, 0x10, 0x3);
                setTaskRegister(sregs);
                setDescriptorTables(sregs);
                long cr0 = KvmApi.offset(KvmApi.KVM_SREGS, "cr0");
                sregs.set(JAVA_LONG, cr0, (sregs.get(JAVA_LONG, cr0) | CR0_PE | CR0_ET) & ~CR0_PG);
                sregs.set(JAVA_LONG, KvmApi.offset(KvmApi.KVM_SREGS, "cr4"), 0L);
                sregs.set(JAVA_LONG, KvmApi.offset(KvmApi.KVM_SREGS, "efer"), 0L);
                regs.set(JAVA_LONG, REGS_RIP, pm.eip() & 0xffffffffL);
                regs.set(JAVA_LONG, REGS_RAX, pm.eax() & 0xffffffffL);
                regs.set(JAVA_LONG, REGS_RBX, pm.ebx() & 0xffffffffL);
                regs.set(JAVA_LONG, REGS_RSP, pm.esp() & 0xffffffffL);
            } else if (entry instanceof EntryState.Long64 lm) {
                setFlatSegment(sregs, "cs", 0x08, 0xb);
                long cs = KvmApi.offset(KvmApi.KVM_SREGS, "cs");
                sregs.set(JAVA_BYTE, cs + SEG_DB, (byte) 0); // db must be 0 when l is 1
                sregs.set(JAVA_BYTE, cs + SEG_L, (byte) 1); // l: 64-bit code
                for (String seg : new String[] {"ds", "es", "fs", "gs", "ss"}) setFlatSegment(sregs, seg, 0x10, 0x3);
                setTaskRegister(sregs);
                setDescriptorTables(sregs);
                long cr0 = KvmApi.offset(KvmApi.KVM_SREGS, "cr0");
                sregs.set(JAVA_LONG, cr0, sregs.get(JAVA_LONG, cr0) | CR0_PE | CR0_ET | CR0_PG);
                sregs.set(JAVA_LONG, KvmApi.offset(KvmApi.KVM_SREGS, "cr3"), Layout.PML4);
                sregs.set(JAVA_LONG, KvmApi.offset(KvmApi.KVM_SREGS, "cr4"), CR4_PAE);
                sregs.set(JAVA_LONG, KvmApi.offset(KvmApi.KVM_SREGS, "efer"), EFER_LME | EFER_LMA);
                regs.set(JAVA_LONG, REGS_RIP, lm.rip());
                regs.set(JAVA_LONG, REGS_RSI, lm.rsi());
                regs.set(JAVA_LONG, REGS_RSP, Layout.BOOT_STACK);
                regs.set(JAVA_LONG, REGS_RBP, Layout.BOOT_STACK);
            } else {
                throw new IllegalArgumentException("no entry state " + entry);
            }
            vcpu.call(KvmApi.KVM_SET_SREGS, sregs);
            vcpu.call(KvmApi.KVM_SET_REGS, regs);
        }
    }

    private static void setTaskRegister(MemorySegment sregs) {
        long tr = KvmApi.offset(KvmApi.KVM_SREGS, "tr");
        sregs.set(JAVA_LONG, tr, 0L);
        sregs.set(JAVA_INT, tr + SEG_LIMIT, 0x67);
        sregs.set(JAVA_SHORT, tr + SEG_SELECTOR, (short) 0x18);
        sregs.set(JAVA_BYTE, tr + SEG_TYPE, (byte) 0xb); // busy TSS
        sregs.set(JAVA_BYTE, tr + SEG_PRESENT, (byte) 1);
        sregs.set(JAVA_BYTE, tr + SEG_S, (byte) 0);
        sregs.set(JAVA_BYTE, tr + SEG_UNUSABLE, (byte) 0);
    }

    private static void setDescriptorTables(MemorySegment sregs) {
        long gdt = KvmApi.offset(KvmApi.KVM_SREGS, "gdt");
        sregs.set(JAVA_LONG, gdt, GDT_ADDR);
        sregs.set(JAVA_SHORT, gdt + DT_LIMIT, (short) (GDT.length * 8 - 1));
        long idt = KvmApi.offset(KvmApi.KVM_SREGS, "idt");
        sregs.set(JAVA_LONG, idt, IDT_ADDR);
        sregs.set(JAVA_SHORT, idt + DT_LIMIT, (short) 7);
    }

    /** Where Linux's kernel text mapping starts (__START_KERNEL_map): virtual 0xffffffff80000000 is physical 0. */
    public static final long KERNEL_TEXT_MAP = 0xffff_ffff_8000_0000L;

    /**
     * Page tables for 64-bit entry, 2 MiB pages: the first 4 GiB identity-mapped (PML4[0] -> a PDPT ->
     * four page directories), and the top 2 GiB of the address space mapped to physical 0-2 GiB
     * (PML4[511] -> a second PDPT whose last two entries reuse the first two page directories), as
     * Linux's own kernel text mapping does. The kernel replaces these tables early and needs only the
     * identity map; the second mapping lets a debugger attached before the first instruction
     * (--gdb-wait) translate the kernel's symbols' addresses, so a software breakpoint on a kernel
     * function can be placed then.
     */
    public static void writePageTables(GuestMemory mem) {
        long pdpt = Layout.PML4 + 0x1000, pd = pdpt + 0x1000, highPdpt = pd + 4 * 0x1000;
        mem.zero(Layout.PML4, Layout.PAGE_TABLES_END - Layout.PML4);
        MemorySegment pml4 = mem.slice(Layout.PML4, 0x1000);
        pml4.set(JAVA_LONG, 0, pdpt | 0x3); // present, writable
        pml4.set(JAVA_LONG, 511 * 8L, highPdpt | 0x3);
        MemorySegment pdptSeg = mem.slice(pdpt, 4 * 8);
        for (int i = 0; i < 4; i++) pdptSeg.set(JAVA_LONG, i * 8L, (pd + i * 0x1000L) | 0x3);
        MemorySegment high = mem.slice(highPdpt, 0x1000);
        high.set(JAVA_LONG, 510 * 8L, pd | 0x3);            // 0xffffffff80000000: physical 0
        high.set(JAVA_LONG, 511 * 8L, (pd + 0x1000) | 0x3); // 0xffffffffc0000000: physical 1 GiB
        MemorySegment pds = mem.slice(pd, 4 * 0x1000);
        for (long i = 0; i < 4 * 512; i++) pds.set(JAVA_LONG, i * 8, (i << 21) | 0x83); // present, writable, 2 MiB
    }

    private static void setFlatSegment(MemorySegment sregs, String name, int selector, int type) {
        long o = KvmApi.offset(KvmApi.KVM_SREGS, name);
        sregs.set(JAVA_LONG, o, 0L);
        sregs.set(JAVA_INT, o + SEG_LIMIT, 0xffffffff);
        sregs.set(JAVA_SHORT, o + SEG_SELECTOR, (short) selector);
        sregs.set(JAVA_BYTE, o + SEG_TYPE, (byte) type);
        sregs.set(JAVA_BYTE, o + SEG_PRESENT, (byte) 1); // present
        sregs.set(JAVA_BYTE, o + SEG_DPL, (byte) 0); // dpl
        sregs.set(JAVA_BYTE, o + SEG_DB, (byte) 1); // db: 32-bit
        sregs.set(JAVA_BYTE, o + SEG_S, (byte) 1); // s: code/data
        sregs.set(JAVA_BYTE, o + SEG_L, (byte) 0); // l
        sregs.set(JAVA_BYTE, o + SEG_G, (byte) 1); // g: 4 KiB granularity
        sregs.set(JAVA_BYTE, o + SEG_UNUSABLE, (byte) 0); // usable
    }

    /**
     * Applies --cpu-features edits to a {@code struct kvm_cpuid2}: returns a new one (entries may be
     * dropped, e.g. leaf 0xD with -xsave) allocated in {@code arena}.
     */
    public static MemorySegment withFeatures(MemorySegment cpuid2, List<CpuFeatures.Edit> edits, Arena arena) {
        if (edits.isEmpty()) return cpuid2;
        long head = KvmApi.KVM_CPUID2.byteSize(), size = KvmApi.KVM_CPUID_ENTRY2.byteSize();
        int n = cpuid2.get(JAVA_INT, CPUID_NENT);
        List<CpuFeatures.CpuidEntry> entries = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            long e = head + i * size;
            entries.add(new CpuFeatures.CpuidEntry(cpuid2.get(JAVA_INT, e + FUNCTION), cpuid2.get(JAVA_INT, e + INDEX),
                    cpuid2.get(JAVA_INT, e + FLAGS), cpuid2.get(JAVA_INT, e + EAX), cpuid2.get(JAVA_INT, e + EBX),
                    cpuid2.get(JAVA_INT, e + ECX), cpuid2.get(JAVA_INT, e + EDX)));
        }
        List<CpuFeatures.CpuidEntry> edited = CpuFeatures.apply(edits, entries);
        MemorySegment out = arena.allocate(head + edited.size() * size, 8);
        out.set(JAVA_INT, CPUID_NENT, edited.size());
        for (int i = 0; i < edited.size(); i++) {
            CpuFeatures.CpuidEntry c = edited.get(i);
            long e = head + i * size;
            out.set(JAVA_INT, e + FUNCTION, c.function());
            out.set(JAVA_INT, e + INDEX, c.index());
            out.set(JAVA_INT, e + FLAGS, c.flags());
            out.set(JAVA_INT, e + EAX, c.eax());
            out.set(JAVA_INT, e + EBX, c.ebx());
            out.set(JAVA_INT, e + ECX, c.ecx());
            out.set(JAVA_INT, e + EDX, c.edx());
        }
        return out;
    }

    /**
     * KVM's supported CPUID, adjusted for vCPU {@code apicId} of {@code cpus}: initial APIC id in leaf 1
     * and the x2APIC id in leaves 0xB / 0x1F, logical processor count in leaf 1.
     */
    public static MemorySegment cpuidFor(MemorySegment supported, Arena arena, int apicId, int cpus) {
        MemorySegment c = arena.allocate(supported.byteSize(), 8);
        c.copyFrom(supported);
        int n = c.get(JAVA_INT, CPUID_NENT);
        long entry = KvmApi.KVM_CPUID2.byteSize(), size = KvmApi.KVM_CPUID_ENTRY2.byteSize();
        for (int i = 0; i < n; i++) {
            long e = entry + i * size;
            int function = c.get(JAVA_INT, e + FUNCTION);
            switch (function) {
                case 1 -> {
                    int ebx = c.get(JAVA_INT, e + EBX);
                    ebx = (ebx & 0x0000ffff) | (Math.min(cpus, PcPlatform.MAX_CPUS) << 16) | (apicId << 24);
                    c.set(JAVA_INT, e + EBX, ebx);
                    if (cpus > 1) c.set(JAVA_INT, e + EDX, c.get(JAVA_INT, e + EDX) | (1 << 28)); // HTT
                    // the hypervisor bit: without it a guest never looks at KVM's leaves (kvm-clock, PV features)
                    c.set(JAVA_INT, e + ECX, c.get(JAVA_INT, e + ECX) | CPUID_1_ECX_HYPERVISOR);
                }
                case 0xb, 0x1f -> c.set(JAVA_INT, e + EDX, apicId);
                default -> { }
            }
        }
        return c;
    }

    static final int CPUID_1_ECX_HYPERVISOR = 1 << 31;
    /** Field offsets inside a {@code kvm_cpuid_entry2} and its header. */
    private static final long FUNCTION = KvmApi.offset(KvmApi.KVM_CPUID_ENTRY2, "function"),
            INDEX = KvmApi.offset(KvmApi.KVM_CPUID_ENTRY2, "index"), FLAGS = KvmApi.offset(KvmApi.KVM_CPUID_ENTRY2, "flags"),
            EAX = KvmApi.offset(KvmApi.KVM_CPUID_ENTRY2, "eax"), EBX = KvmApi.offset(KvmApi.KVM_CPUID_ENTRY2, "ebx"),
            ECX = KvmApi.offset(KvmApi.KVM_CPUID_ENTRY2, "ecx"), EDX = KvmApi.offset(KvmApi.KVM_CPUID_ENTRY2, "edx"),
            CPUID_NENT = KvmApi.offset(KvmApi.KVM_CPUID2, "nent");
    /** Field offsets inside a {@code kvm_segment}, a {@code kvm_dtable}, a {@code kvm_msrs} and its entries. */
    private static final long SEG_LIMIT = KvmApi.offset(KvmApi.KVM_SEGMENT, "limit"),
            SEG_SELECTOR = KvmApi.offset(KvmApi.KVM_SEGMENT, "selector"), SEG_TYPE = KvmApi.offset(KvmApi.KVM_SEGMENT, "type"),
            SEG_PRESENT = KvmApi.offset(KvmApi.KVM_SEGMENT, "present"), SEG_DPL = KvmApi.offset(KvmApi.KVM_SEGMENT, "dpl"),
            SEG_DB = KvmApi.offset(KvmApi.KVM_SEGMENT, "db"), SEG_S = KvmApi.offset(KvmApi.KVM_SEGMENT, "s"),
            SEG_L = KvmApi.offset(KvmApi.KVM_SEGMENT, "l"), SEG_G = KvmApi.offset(KvmApi.KVM_SEGMENT, "g"),
            SEG_UNUSABLE = KvmApi.offset(KvmApi.KVM_SEGMENT, "unusable"),
            DT_LIMIT = KvmApi.offset(KvmApi.KVM_DTABLE, "limit"),
            MSRS_NMSRS = KvmApi.offset(KvmApi.KVM_MSRS, "nmsrs"),
            MSR_INDEX = KvmApi.offset(KvmApi.KVM_MSR_ENTRY, "index"), MSR_DATA = KvmApi.offset(KvmApi.KVM_MSR_ENTRY, "data");
    static final int MSR_IA32_SYSENTER_CS = 0x174, MSR_IA32_SYSENTER_ESP = 0x175, MSR_IA32_SYSENTER_EIP = 0x176,
            MSR_STAR = 0xc0000081, MSR_LSTAR = 0xc0000082, MSR_CSTAR = 0xc0000083, MSR_SYSCALL_MASK = 0xc0000084,
            MSR_KERNEL_GS_BASE = 0xc0000102, MSR_IA32_TSC = 0x10, MSR_IA32_MISC_ENABLE = 0x1a0,
            MSR_MTRR_DEF_TYPE = 0x2ff;
    static final long MISC_ENABLE_FAST_STRING = 1, MTRR_ENABLE_WRITEBACK = (1 << 11) | 6;
    static final long LAPIC_LVT_LINT0 = 0x350, LAPIC_LVT_LINT1 = 0x360;
    static final int APIC_MODE_NMI = 4, APIC_MODE_EXTINT = 7;

    /**
     * What firmware would have done to every vCPU before an OS boots: the local APIC's LINT0 wired as
     * ExtINT (the PIC) and LINT1 as NMI, x87/SSE control words at their reset values, and the MSRs a
     * 64-bit kernel expects zeroed or set (fast strings on, MTRRs enabled with write-back default).
     */
    public static void applyPlatformState(VcpuFd vcpu) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment lapic = arena.allocate(KvmApi.KVM_LAPIC_STATE);
            vcpu.call(KvmApi.KVM_GET_LAPIC, lapic);
            setLvtMode(lapic, LAPIC_LVT_LINT0, APIC_MODE_EXTINT);
            setLvtMode(lapic, LAPIC_LVT_LINT1, APIC_MODE_NMI);
            vcpu.call(KvmApi.KVM_SET_LAPIC, lapic);

            MemorySegment fpu = arena.allocate(KvmApi.KVM_FPU);
            fpu.set(JAVA_SHORT, KvmApi.offset(KvmApi.KVM_FPU, "fcw"), (short) 0x37f);
            fpu.set(JAVA_INT, KvmApi.offset(KvmApi.KVM_FPU, "mxcsr"), 0x1f80);
            vcpu.call(KvmApi.KVM_SET_FPU, fpu);

            long[][] msrs = {{MSR_IA32_SYSENTER_CS, 0}, {MSR_IA32_SYSENTER_ESP, 0}, {MSR_IA32_SYSENTER_EIP, 0},
                    {MSR_STAR, 0}, {MSR_CSTAR, 0}, {MSR_KERNEL_GS_BASE, 0}, {MSR_SYSCALL_MASK, 0}, {MSR_LSTAR, 0},
                    {MSR_IA32_TSC, 0}, {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
                    {MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITEBACK}};
            long entry = KvmApi.KVM_MSR_ENTRY.byteSize();
            MemorySegment m = arena.allocate(KvmApi.KVM_MSRS.byteSize() + msrs.length * entry, 8);
            m.set(JAVA_INT, MSRS_NMSRS, msrs.length);
            for (int i = 0; i < msrs.length; i++) {
                long at = KvmApi.KVM_MSRS.byteSize() + i * entry;
                m.set(JAVA_INT, at + MSR_INDEX, (int) msrs[i][0]);
                m.set(JAVA_LONG, at + MSR_DATA, msrs[i][1]);
            }
            vcpu.setMsrs(m);
        }
    }

    private static void setLvtMode(MemorySegment lapic, long reg, int mode) {
        int v = lapic.get(JAVA_INT, reg);
        lapic.set(JAVA_INT, reg, (v & ~0x700) | (mode << 8));
    }

    /** A register struct of {@code layout} read from the vCPU with {@code get}. */
    private static MemorySegment registers(VcpuFd vcpu, Arena arena, java.lang.foreign.MemoryLayout layout, dev.jvmm.sys.Ioctl.Request get) {
        MemorySegment s = arena.allocate(layout);
        vcpu.call(get, s);
        return s;
    }

    /** A register dump for error reports: general registers, segments, control registers. */
    public static String dumpRegisters(VcpuFd vcpu) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment regs = registers(vcpu, arena, KvmApi.KVM_REGS, KvmApi.KVM_GET_REGS);
            MemorySegment sregs = registers(vcpu, arena, KvmApi.KVM_SREGS, KvmApi.KVM_GET_SREGS);
            StringBuilder sb = new StringBuilder();
            String[] names = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11",
                    "r12", "r13", "r14", "r15", "rip", "rflags"};
            for (int i = 0; i < names.length; i++) {
                sb.append(String.format("%6s=%016x", names[i], regs.get(JAVA_LONG, KvmApi.offset(KvmApi.KVM_REGS, names[i]))));
                sb.append(i % 4 == 3 ? '\n' : ' ');
            }
            sb.append('\n');
            for (String seg : new String[] {"cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"}) {
                long o = KvmApi.offset(KvmApi.KVM_SREGS, seg);
                sb.append(String.format("%6s=%04x base=%016x limit=%08x type=%x%n", seg,
                        sregs.get(JAVA_SHORT, o + SEG_SELECTOR) & 0xffff, sregs.get(JAVA_LONG, o),
                        sregs.get(JAVA_INT, o + SEG_LIMIT), sregs.get(JAVA_BYTE, o + SEG_TYPE)));
            }
            for (String dt : new String[] {"gdt", "idt"}) {
                long o = KvmApi.offset(KvmApi.KVM_SREGS, dt);
                sb.append(String.format("%6s base=%016x limit=%04x%n", dt, sregs.get(JAVA_LONG, o),
                        sregs.get(JAVA_SHORT, o + DT_LIMIT) & 0xffff));
            }
            for (String cr : new String[] {"cr0", "cr2", "cr3", "cr4", "efer", "apic_base"}) {
                sb.append(String.format("%6s=%016x ", cr, sregs.get(JAVA_LONG, KvmApi.offset(KvmApi.KVM_SREGS, cr))));
            }
            return sb.toString().stripTrailing();
        }
    }

    /** Guest-physical address of CS:RIP, for showing the instruction bytes an emulation failure stopped at. */
    public static long codeAddress(VcpuFd vcpu) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment regs = registers(vcpu, arena, KvmApi.KVM_REGS, KvmApi.KVM_GET_REGS);
            MemorySegment sregs = registers(vcpu, arena, KvmApi.KVM_SREGS, KvmApi.KVM_GET_SREGS);
            long csBase = sregs.get(JAVA_LONG, KvmApi.offset(KvmApi.KVM_SREGS, "cs"));
            return csBase + regs.get(JAVA_LONG, REGS_RIP);
        }
    }
}
