package dev.jvmm.vmm;

import dev.jvmm.it.KvmSupport;
import dev.jvmm.kvm.Kvm;
import dev.jvmm.kvm.VcpuFd;
import dev.jvmm.kvm.VmFd;
import dev.jvmm.sys.KvmApi;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A vCPU's state saved ({@link VmSnapshot#vcpuState}) and set on a fresh vCPU of another VM
 * ({@link SnapshotRestore#setVcpu}), on /dev/kvm without running a guest: what KVM only takes in the
 * right order comes back.
 */
class SnapshotVcpuTest {
    private static final int LAPIC_SVR = 0xf0, LAPIC_LVTT = 0x320, LVTT_TSC_DEADLINE = 2 << 17, MSR_IA32_TSC = 0x10;

    /**
     * A guest's LAPIC timer in TSC-deadline mode, armed: the deadline MSR is set after the LAPIC (KVM
     * drops a deadline written while the timer is in another mode, as a fresh vCPU's is), so the
     * restored vCPU has the same deadline and mode. Set with the other MSRs it read 0: no timer
     * interrupt would ever come.
     */
    @Test
    void anArmedTscDeadlineTimerSurvives() throws Exception {
        KvmSupport.requireKvm();
        try (Kvm kvm = Kvm.open(Kvm.DEFAULT_PATH); Arena arena = Arena.ofConfined()) {
            assertTrue(java.util.Arrays.stream(kvm.msrIndexList()).anyMatch(i -> i == SnapshotRestore.MSR_IA32_TSC_DEADLINE),
                    "KVM lists IA32_TSC_DEADLINE among the MSRs to save");
            try (VmFd vm = kvm.createVm(); VmFd vm2 = kvm.createVm()) {
                vm.createIrqchip();
                vm2.createIrqchip();
                VcpuFd cpu = vm.createVcpu(0);
                cpu.call(KvmApi.KVM_SET_CPUID2, withTscDeadline(kvm.supportedCpuid(arena)));
                MemorySegment lapic = arena.allocate(KvmApi.KVM_LAPIC_STATE);
                cpu.call(KvmApi.KVM_GET_LAPIC, lapic);
                lapic.set(JAVA_INT, LAPIC_SVR, 0x1ff);
                lapic.set(JAVA_INT, LAPIC_LVTT, 0xec | LVTT_TSC_DEADLINE);
                cpu.call(KvmApi.KVM_SET_LAPIC, lapic);
                long deadline = getMsr(arena, cpu, MSR_IA32_TSC) + (1L << 44); // hours away at any TSC rate
                setMsr(arena, cpu, SnapshotRestore.MSR_IA32_TSC_DEADLINE, deadline);
                assertEquals(deadline, getMsr(arena, cpu, SnapshotRestore.MSR_IA32_TSC_DEADLINE), "the source vCPU's deadline");

                Map<String, byte[]> state = new LinkedHashMap<>();
                VmSnapshot.vcpuState(kvm, cpu).forEach((k, v) -> state.put("vcpu.0." + k, v));
                VcpuFd restored = vm2.createVcpu(0);
                SnapshotRestore.setVcpu(arena, restored, state, "vcpu.0.");

                assertEquals(deadline, getMsr(arena, restored, SnapshotRestore.MSR_IA32_TSC_DEADLINE), "the restored vCPU's deadline");
                MemorySegment back = arena.allocate(KvmApi.KVM_LAPIC_STATE);
                restored.call(KvmApi.KVM_GET_LAPIC, back);
                assertEquals(0xec | LVTT_TSC_DEADLINE, back.get(JAVA_INT, LAPIC_LVTT), "the timer's mode and vector");
                cpu.close();
                restored.close();
            }
        }
    }

    /** The TSC-deadline entry taken out of a kvm_msrs and put in one of its own; the others kept in order. */
    @Test
    void msrsSplitAroundTheDeadline() {
        byte[] msrs = msrs(new long[][] {{0x10, 5}, {0x6e0, 77}, {0x4b564d01, 9}});
        byte[][] split = SnapshotRestore.splitMsrs(msrs, SnapshotRestore.MSR_IA32_TSC_DEADLINE);
        assertArrayEquals(msrs(new long[][] {{0x10, 5}, {0x4b564d01, 9}}), split[0]);
        assertArrayEquals(msrs(new long[][] {{0x6e0, 77}}), split[1]);
        byte[][] none = SnapshotRestore.splitMsrs(split[0], SnapshotRestore.MSR_IA32_TSC_DEADLINE);
        assertArrayEquals(split[0], none[0]);
        assertArrayEquals(msrs(new long[0][]), none[1]);
    }

    private static byte[] msrs(long[][] entries) {
        int header = (int) KvmApi.KVM_MSRS.byteSize(), entry = (int) KvmApi.KVM_MSR_ENTRY.byteSize();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(header + entries.length * entry).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, entries.length);
        for (int i = 0; i < entries.length; i++) {
            b.putInt(header + i * entry, (int) entries[i][0]);
            b.putLong(header + i * entry + 8, entries[i][1]);
        }
        return b.array();
    }

    /** KVM's supported CPUID with leaf 1's TSC-deadline bit (ECX 24) set, as a VMM offering that timer does. */
    private static MemorySegment withTscDeadline(MemorySegment cpuid) {
        int n = cpuid.get(JAVA_INT, 0);
        long base = KvmApi.KVM_CPUID2.byteSize(), size = KvmApi.KVM_CPUID_ENTRY2.byteSize();
        for (int i = 0; i < n; i++) {
            long e = base + i * size;
            if (cpuid.get(JAVA_INT, e) == 1) {
                long ecx = e + KvmApi.offset(KvmApi.KVM_CPUID_ENTRY2, "ecx");
                cpuid.set(JAVA_INT, ecx, cpuid.get(JAVA_INT, ecx) | 1 << 24);
            }
        }
        return cpuid;
    }

    private static long getMsr(Arena arena, VcpuFd cpu, int index) {
        MemorySegment s = arena.allocate(KvmApi.KVM_MSRS.byteSize() + KvmApi.KVM_MSR_ENTRY.byteSize(), 8);
        s.set(JAVA_INT, 0, 1);
        s.set(JAVA_INT, KvmApi.KVM_MSRS.byteSize(), index);
        assertEquals(1, cpu.call(KvmApi.KVM_GET_MSRS, s), "KVM_GET_MSRS 0x" + Integer.toHexString(index));
        return s.get(JAVA_LONG, KvmApi.KVM_MSRS.byteSize() + 8);
    }

    private static void setMsr(Arena arena, VcpuFd cpu, int index, long value) {
        MemorySegment s = arena.allocate(KvmApi.KVM_MSRS.byteSize() + KvmApi.KVM_MSR_ENTRY.byteSize(), 8);
        s.set(JAVA_INT, 0, 1);
        s.set(JAVA_INT, KvmApi.KVM_MSRS.byteSize(), index);
        s.set(JAVA_LONG, KvmApi.KVM_MSRS.byteSize() + 8, value);
        cpu.setMsrs(s);
    }
}
