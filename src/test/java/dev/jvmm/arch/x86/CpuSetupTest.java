package dev.jvmm.arch.x86;

import dev.jvmm.sys.KvmApi;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** CPUID adjustments on a plain {@code struct kvm_cpuid2}, registers addressed by the layout's names. */
class CpuSetupTest {
    static long at(int entry, String reg) {
        return KvmApi.KVM_CPUID2.byteSize() + entry * KvmApi.KVM_CPUID_ENTRY2.byteSize() + KvmApi.offset(KvmApi.KVM_CPUID_ENTRY2, reg);
    }

    static MemorySegment cpuid(Arena arena, int... functions) {
        MemorySegment c = arena.allocate(KvmApi.KVM_CPUID2.byteSize() + functions.length * KvmApi.KVM_CPUID_ENTRY2.byteSize(), 8);
        c.set(JAVA_INT, 0, functions.length);
        for (int i = 0; i < functions.length; i++) {
            c.set(JAVA_INT, at(i, "function"), functions[i]);
            c.set(JAVA_INT, at(i, "ebx"), 0x00000800); // CLFLUSH size in bits 15:8, must survive
            c.set(JAVA_INT, at(i, "ecx"), 0x1);
            c.set(JAVA_INT, at(i, "edx"), 0x10);
        }
        return c;
    }

    @Test
    void leafOneGetsApicIdCountHttAndTheHypervisorBit() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = CpuSetup.cpuidFor(cpuid(arena, 0, 1, 0xb), arena, 3, 4);
            assertEquals(3, out.get(JAVA_INT, at(1, "ebx")) >>> 24, "initial APIC id");
            assertEquals(4, (out.get(JAVA_INT, at(1, "ebx")) >>> 16) & 0xff, "logical processors");
            assertEquals(0x800, out.get(JAVA_INT, at(1, "ebx")) & 0xffff);
            assertEquals(0x1 | (1 << 31), out.get(JAVA_INT, at(1, "ecx")), "hypervisor bit, others kept");
            assertEquals(0x10 | (1 << 28), out.get(JAVA_INT, at(1, "edx")), "HTT");
            assertEquals(3, out.get(JAVA_INT, at(2, "edx")), "x2APIC id in leaf 0xB");
            assertEquals(0x1, out.get(JAVA_INT, at(0, "ecx")), "other leaves untouched");
            assertEquals(0, out.get(JAVA_INT, at(1, "padding")), "nothing written into padding");
        }
    }

    @Test
    void featureEditsRewriteTheTable() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = cpuid(arena, 0, 1);
            in.set(JAVA_INT, at(1, "ecx"), (1 << 13) | (1 << 26)); // cx16, xsave
            MemorySegment out = CpuSetup.withFeatures(in, CpuFeatures.parse("-cx16"), arena);
            assertEquals(2, out.get(JAVA_INT, 0));
            assertEquals(1 << 26, out.get(JAVA_INT, at(1, "ecx")));
            assertNotEquals(in.address(), out.address());
            assertEquals(in, CpuSetup.withFeatures(in, List.of(), arena), "no edits: the same table");
        }
    }
}
