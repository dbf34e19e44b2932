package dev.jvmm.vmm;

import dev.jvmm.sys.KvmApi;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The host CPU check of a restore: which feature words count, and how a difference is named. */
class SnapshotCpuidTest {
    /** A struct kvm_cpuid2 of entries {function, index, eax, ebx, ecx, edx}. */
    static byte[] cpuid(int[]... entries) {
        int header = (int) KvmApi.KVM_CPUID2.byteSize(), size = (int) KvmApi.KVM_CPUID_ENTRY2.byteSize();
        ByteBuffer b = ByteBuffer.allocate(header + entries.length * size).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, entries.length);
        for (int i = 0; i < entries.length; i++) {
            int at = header + i * size;
            int[] e = entries[i];
            b.putInt(at, e[0]).putInt(at + 4, e[1]).putInt(at + 12, e[2]).putInt(at + 16, e[3]).putInt(at + 20, e[4]).putInt(at + 24, e[5]);
        }
        return b.array();
    }

    @Test
    void featureWordsCountAndTheRestDoesNot() {
        byte[] saved = cpuid(new int[] {1, 0, 0x906ea, 0x00000800, 0x7ffafbff, 0xbfebfbff}, new int[] {7, 0, 0, 0x29c6fbf, 0x40000000, 0xbc000400});
        byte[] otherApicId = cpuid(new int[] {1, 0, 0x906ea, 0x01000800, 0x7ffafbff, 0xbfebfbff}, new int[] {7, 0, 0, 0x29c6fbf, 0x40000000, 0xbc000400});
        assertNull(SnapshotRestore.cpuidDifference(saved, otherApicId), "leaf 1 EBX (the APIC ID) is not a feature word");
        byte[] lessAvx = cpuid(new int[] {1, 0, 0x906ea, 0x00000800, 0x6ffafbff, 0xbfebfbff}, new int[] {7, 0, 0, 0x29c6fbf, 0x40000000, 0xbc000400});
        assertEquals("the snapshot's host had leaf 0x1.0 ecx 7ffafbff edx bfebfbff", SnapshotRestore.cpuidDifference(saved, lessAvx));
        byte[] moreLeaf7 = cpuid(new int[] {1, 0, 0x906ea, 0x00000800, 0x7ffafbff, 0xbfebfbff}, new int[] {7, 0, 0, 0x29c6fbf, 0x40000000, 0xbc000401});
        assertEquals("the snapshot's host had leaf 0x7.0 ebx 029c6fbf ecx 40000000 edx bc000400", SnapshotRestore.cpuidDifference(saved, moreLeaf7));
        assertEquals("this host has leaf 0x80000001.0 ecx 00000121 edx 2c100800",
                SnapshotRestore.cpuidDifference(cpuid(), cpuid(new int[] {0x80000001, 0, 0, 0, 0x121, 0x2c100800})));
        assertEquals("the snapshot's CPUID is malformed", SnapshotRestore.cpuidDifference(new byte[3], saved));
    }
}
