package dev.jvmm.vmm;

import dev.jvmm.device.Bus;
import dev.jvmm.device.DeviceState;
import dev.jvmm.kvm.VcpuFd;
import dev.jvmm.sys.Ioctl;
import dev.jvmm.sys.KvmApi;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Sets a new VM to a snapshot's state (what {@link VmSnapshot} saved): creates the vCPUs with their
 * saved CPUID and sets their state in the order KVM needs (registers, XSAVE or FPU, XCRs, special
 * registers, MSRs, MP state, LAPIC, the TSC deadline, events, debug registers), then the in-kernel
 * irqchip, PIT and kvmclock, then each device model (the port devices' and the virtio-mmio transports', which
 * activate their devices again). Every section's size is checked before KVM sees it, and every
 * device of the VM must have its section.
 */
final class SnapshotRestore {
    private SnapshotRestore() { }

    /** @throws IllegalArgumentException naming the section that is missing or malformed */
    static void apply(VmBuilder.Parts p, VmConfig config, Map<String, byte[]> state) {
        try (Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < config.cpus(); i++) {
                VcpuFd fd = p.vmFd.createVcpu(i);
                p.vcpuFds.add(fd);
                setVcpu(arena, fd, state, "vcpu." + i + ".");
            }
            if (state.containsKey("vcpu." + config.cpus() + ".regs")) {
                throw new IllegalArgumentException("the snapshot has more vCPUs than " + config.cpus());
            }
            for (int chip = 0; chip < KvmApi.KVM_NR_IRQCHIPS; chip++) {
                byte[] c = sized(state, "vm.irqchip." + chip, KvmApi.KVM_IRQCHIP);
                if (le32(c, 0) != chip) throw new IllegalArgumentException("section vm.irqchip." + chip + " is for chip " + le32(c, 0));
                p.vmFd.call(KvmApi.KVM_SET_IRQCHIP, native8(arena, c));
            }
            if (config.pit() == VmConfig.PitMode.KERNEL) p.vmFd.call(KvmApi.KVM_SET_PIT2, native8(arena, sized(state, "vm.pit2", KvmApi.KVM_PIT_STATE2)));
            MemorySegment clock = native8(arena, sized(state, "vm.clock", KvmApi.KVM_CLOCK_DATA));
            clock.set(JAVA_INT, KvmApi.offset(KvmApi.KVM_CLOCK_DATA, "flags"), 0);
            p.vmFd.call(KvmApi.KVM_SET_CLOCK, clock);
        }
        Map<String, DeviceState> models = new java.util.LinkedHashMap<>();
        for (Bus bus : java.util.List.of(p.pio, p.mmio)) {
            for (Bus.Range r : bus.ranges()) {
                if (r.device() instanceof DeviceState ds) models.putIfAbsent(r.name(), ds);
            }
        }
        for (Map.Entry<String, byte[]> e : state.entrySet()) {
            if (!e.getKey().startsWith("device.")) continue;
            String name = e.getKey().substring("device.".length());
            DeviceState d = models.get(name);
            if (d == null) throw new IllegalArgumentException("the snapshot has state for a device this VM does not have: " + name);
            try {
                d.loadState(e.getValue());
            } catch (IllegalArgumentException bad) {
                throw new IllegalArgumentException("section " + e.getKey() + ": " + bad.getMessage());
            }
        }
        for (String name : models.keySet()) {
            if (!state.containsKey("device." + name)) throw new IllegalArgumentException("section device." + name + " is missing");
        }
    }

    /**
     * Sets one new vCPU to the state saved under {@code v} ("vcpu.N."), in QEMU's order: CPUID,
     * registers, XSAVE (or FPU), XCRs, special registers, MSRs, MP state, LAPIC, then the TSC-deadline
     * MSR, then events and debug registers. KVM takes the TSC deadline only while the LAPIC timer is in
     * TSC-deadline mode (else it drops the write, and reads 0), and a fresh vCPU's LAPIC is not: set
     * with the other MSRs, before the LAPIC, a guest's armed deadline timer would be lost and its next
     * timer interrupt never come (QEMU sets it after the LAPIC for the same reason).
     */
    static void setVcpu(Arena arena, VcpuFd fd, Map<String, byte[]> state, String v) {
        byte[] cpuid = section(state, v + "cpuid");
        if (cpuid.length < KvmApi.KVM_CPUID2.byteSize()
                || cpuid.length != KvmApi.KVM_CPUID2.byteSize() + Integer.toUnsignedLong(le32(cpuid, 0)) * KvmApi.KVM_CPUID_ENTRY2.byteSize()) {
            throw new IllegalArgumentException("section " + v + "cpuid is malformed");
        }
        fd.call(KvmApi.KVM_SET_CPUID2, native8(arena, cpuid));
        set(arena, fd, state, v + "regs", KvmApi.KVM_SET_REGS, KvmApi.KVM_REGS);
        if (state.containsKey(v + "xsave")) set(arena, fd, state, v + "xsave", KvmApi.KVM_SET_XSAVE, KvmApi.KVM_XSAVE);
        else set(arena, fd, state, v + "fpu", KvmApi.KVM_SET_FPU, KvmApi.KVM_FPU);
        if (state.containsKey(v + "xcrs")) set(arena, fd, state, v + "xcrs", KvmApi.KVM_SET_XCRS, KvmApi.KVM_XCRS);
        set(arena, fd, state, v + "sregs", KvmApi.KVM_SET_SREGS, KvmApi.KVM_SREGS);
        byte[] msrs = section(state, v + "msrs");
        if (msrs.length < KvmApi.KVM_MSRS.byteSize()
                || msrs.length != KvmApi.KVM_MSRS.byteSize() + Integer.toUnsignedLong(le32(msrs, 0)) * KvmApi.KVM_MSR_ENTRY.byteSize()) {
            throw new IllegalArgumentException("section " + v + "msrs is malformed");
        }
        byte[][] split = splitMsrs(msrs, MSR_IA32_TSC_DEADLINE);
        setMsrs(arena, fd, v, split[0]);
        set(arena, fd, state, v + "mp_state", KvmApi.KVM_SET_MP_STATE, KvmApi.KVM_MP_STATE);
        set(arena, fd, state, v + "lapic", KvmApi.KVM_SET_LAPIC, KvmApi.KVM_LAPIC_STATE);
        if (le32(split[1], 0) > 0) setMsrs(arena, fd, v, split[1]);
        set(arena, fd, state, v + "events", KvmApi.KVM_SET_VCPU_EVENTS, KvmApi.KVM_VCPU_EVENTS);
        set(arena, fd, state, v + "debugregs", KvmApi.KVM_SET_DEBUGREGS, KvmApi.KVM_DEBUGREGS);
    }

    private static void setMsrs(Arena arena, VcpuFd fd, String v, byte[] msrs) {
        try {
            fd.setMsrs(native8(arena, msrs));
        } catch (IllegalStateException refused) { // KVM took some and refused one: name it
            throw new IllegalArgumentException("section " + v + "msrs: " + refused.getMessage());
        }
    }

    /** IA32_TSC_DEADLINE: the LAPIC timer's deadline in TSC-deadline mode. */
    static final int MSR_IA32_TSC_DEADLINE = 0x6e0;

    /**
     * A {@code struct kvm_msrs} split in two: every entry but those for MSR {@code index}, and those
     * (each a whole struct, its count first).
     */
    static byte[][] splitMsrs(byte[] msrs, int index) {
        int header = (int) KvmApi.KVM_MSRS.byteSize(), entry = (int) KvmApi.KVM_MSR_ENTRY.byteSize();
        int n = le32(msrs, 0);
        java.io.ByteArrayOutputStream rest = new java.io.ByteArrayOutputStream(), picked = new java.io.ByteArrayOutputStream();
        int restCount = 0, pickedCount = 0;
        for (int i = 0; i < n; i++) {
            int at = header + i * entry;
            if (le32(msrs, at) == index) {
                picked.write(msrs, at, entry);
                pickedCount++;
            } else {
                rest.write(msrs, at, entry);
                restCount++;
            }
        }
        return new byte[][] {withCount(msrs, header, restCount, rest.toByteArray()), withCount(msrs, header, pickedCount, picked.toByteArray())};
    }

    private static byte[] withCount(byte[] msrs, int header, int count, byte[] entries) {
        byte[] out = new byte[header + entries.length];
        System.arraycopy(msrs, 0, out, 0, header);
        out[0] = (byte) count;
        out[1] = (byte) (count >>> 8);
        out[2] = (byte) (count >>> 16);
        out[3] = (byte) (count >>> 24);
        System.arraycopy(entries, 0, out, header, entries.length);
        return out;
    }

    /**
     * How the CPU features in {@code saved} and {@code here} (each a {@code struct kvm_cpuid2}) differ:
     * the feature words (leaf 1 ECX/EDX, leaf 7.0 EBX/ECX/EDX, leaf 0xd.0 and 0xd.1 EAX, leaf 0x80000001
     * ECX/EDX), not the rest (leaf 1's EBX holds the APIC ID of the host CPU the ioctl ran on). Null if
     * they are the same, else the first feature word one has and the other not.
     */
    static String cpuidDifference(byte[] saved, byte[] here) {
        java.util.Set<String> a = cpuidEntries(saved), b = cpuidEntries(here);
        if (a == null) return "the snapshot's CPUID is malformed";
        if (a.equals(b)) return null;
        for (String e : a) if (!b.contains(e)) return "the snapshot's host had " + e;
        for (String e : b) if (!a.contains(e)) return "this host has " + e;
        return "different entries";
    }

    private static java.util.Set<String> cpuidEntries(byte[] c) {
        if (c == null || c.length < KvmApi.KVM_CPUID2.byteSize()) return null;
        long n = Integer.toUnsignedLong(le32(c, 0)), size = KvmApi.KVM_CPUID_ENTRY2.byteSize();
        if (c.length < KvmApi.KVM_CPUID2.byteSize() + n * size) return null;
        java.util.Set<String> out = new java.util.TreeSet<>();
        for (int i = 0; i < n; i++) {
            int at = (int) (KvmApi.KVM_CPUID2.byteSize() + i * size);
            int function = le32(c, at), index = le32(c, at + 4);
            int eax = le32(c, at + 12), ebx = le32(c, at + 16), ecx = le32(c, at + 20), edx = le32(c, at + 24);
            // string concatenation, not String.format: a restore compares some 150 entries, and a
            // Formatter parsing each pattern in the interpreter was milliseconds of the restore
            String leaf = "leaf 0x" + Integer.toHexString(function) + "." + Integer.toHexString(index);
            if (function == 1 || function == 0x80000001) out.add(leaf + " ecx " + hex8(ecx) + " edx " + hex8(edx));
            else if (function == 7 && index == 0) out.add(leaf + " ebx " + hex8(ebx) + " ecx " + hex8(ecx) + " edx " + hex8(edx));
            else if (function == 0xd && (index == 0 || index == 1)) out.add(leaf + " eax " + hex8(eax));
        }
        return out;
    }

    /** {@code v} as eight hex digits, zero-padded (what %08x writes). */
    static String hex8(int v) {
        String h = Integer.toHexString(v);
        return "0".repeat(8 - h.length()) + h;
    }

    private static byte[] section(Map<String, byte[]> state, String name) {
        byte[] b = state.get(name);
        if (b == null) throw new IllegalArgumentException("section " + name + " is missing");
        return b;
    }

    private static byte[] sized(Map<String, byte[]> state, String name, MemoryLayout layout) {
        byte[] b = section(state, name);
        if (b.length != layout.byteSize()) {
            throw new IllegalArgumentException("section " + name + " is " + b.length + " bytes, not " + layout.byteSize());
        }
        return b;
    }

    private static void set(Arena arena, VcpuFd fd, Map<String, byte[]> state, String name, Ioctl.Request r, MemoryLayout layout) {
        fd.call(r, native8(arena, sized(state, name, layout)));
    }

    private static MemorySegment native8(Arena arena, byte[] b) {
        MemorySegment s = arena.allocate(Math.max(1, b.length), 8);
        MemorySegment.copy(b, 0, s, JAVA_BYTE, 0, b.length);
        return s;
    }

    private static int le32(byte[] b, int at) {
        return (b[at] & 0xff) | (b[at + 1] & 0xff) << 8 | (b[at + 2] & 0xff) << 16 | (b[at + 3] & 0xff) << 24;
    }
}
