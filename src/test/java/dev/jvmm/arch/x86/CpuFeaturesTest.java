package dev.jvmm.arch.x86;

import dev.jvmm.arch.x86.CpuFeatures.CpuidEntry;
import dev.jvmm.arch.x86.CpuFeatures.Edit;
import dev.jvmm.arch.x86.CpuFeatures.Register;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CpuFeaturesTest {
    private static final int XSAVE = 1 << 26, OSXSAVE = 1 << 27, AVX = 1 << 28, CX16 = 1 << 13, X2APIC = 1 << 21,
            FMA = 1 << 12, SSE4_2 = 1 << 20;
    private static final int AVX2 = 1 << 5, AVX512F = 1 << 16, AVX512VL = 1 << 31, SMEP = 1 << 7;
    private static final int LM = 1 << 29, NX = 1 << 20;

    private static final List<CpuidEntry> TABLE = List.of(
            new CpuidEntry(0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69),
            new CpuidEntry(1, 0, 0, 0x806c1, 0, XSAVE | OSXSAVE | AVX | CX16 | FMA | SSE4_2, 0x178bfbff),
            new CpuidEntry(7, 0, 1, 0, AVX2 | AVX512F | AVX512VL | SMEP, 0, 0),
            new CpuidEntry(7, 1, 1, 0, 0, 0, 0),
            new CpuidEntry(0xd, 0, 1, 0x7, 0x340, 0x340, 0),
            new CpuidEntry(0xd, 1, 1, 0xf, 0, 0, 0),
            new CpuidEntry(0x80000001, 0, 0, 0, 0, 0x121, LM | NX));

    private static CpuidEntry find(List<CpuidEntry> t, int fn, int index) {
        return t.stream().filter(e -> e.matches(fn, index)).findFirst().orElse(null);
    }

    @Test
    void parsesSignsAndNames() {
        List<Edit> edits = CpuFeatures.parse("-cx16,+x2apic, rdrand ,,+SMEP");
        assertEquals(List.of(
                new Edit(1, 0, Register.ECX, 13, false, "cx16"),
                new Edit(1, 0, Register.ECX, 21, true, "x2apic"),
                new Edit(1, 0, Register.ECX, 30, true, "rdrand"),
                new Edit(7, 0, Register.EBX, 7, true, "smep")), edits);
        assertEquals(List.of(), CpuFeatures.parse(""));
        assertEquals(List.of(), CpuFeatures.parse(" , "));
    }

    @Test
    void knowsTheUsualNames() {
        for (String n : List.of("xsave", "avx", "avx2", "cx16", "x2apic", "tsc_deadline_timer", "hypervisor", "rdrand",
                "rdseed", "aes", "pcid", "smep", "smap", "umip", "pku", "la57", "fsgsbase", "invpcid", "erms",
                "xsaveopt", "xsavec", "xsaves", "lm", "nx", "rdtscp", "pdpe1gb", "lahf_lm", "sse3", "pni")) {
            assertTrue(CpuFeatures.names().contains(n), n);
        }
        assertEquals(new CpuFeatures.Feature("la57", 7, 0, Register.ECX, 16), CpuFeatures.feature("la57"));
        assertEquals(new CpuFeatures.Feature("xsaves", 0xd, 1, Register.EAX, 3), CpuFeatures.feature("xsaves"));
        assertEquals(new CpuFeatures.Feature("pdpe1gb", 0x80000001, 0, Register.EDX, 26), CpuFeatures.feature("pdpe1gb"));
        assertEquals(new CpuFeatures.Feature("lahf_lm", 0x80000001, 0, Register.ECX, 0), CpuFeatures.feature("lahf_lm"));
        assertEquals(new CpuFeatures.Feature("tsc_deadline_timer", 1, 0, Register.ECX, 24),
                CpuFeatures.feature("tsc_deadline_timer"));
        assertEquals(new CpuFeatures.Feature("erms", 7, 0, Register.EBX, 9), CpuFeatures.feature("erms"));
        assertEquals("pni", CpuFeatures.feature("sse3").name());
    }

    @Test
    void unknownNamesAreRefusedWithAHint() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CpuFeatures.parse("-xsave,-bogus"));
        assertTrue(e.getMessage().contains("'bogus'"), e.getMessage());
        assertTrue(e.getMessage().contains("-xsave,-cx16,+x2apic"), e.getMessage());
        IllegalArgumentException sign = assertThrows(IllegalArgumentException.class, () -> CpuFeatures.parse("+"));
        assertTrue(sign.getMessage().contains("'+'"), sign.getMessage());
    }

    @Test
    void applyClearsAndSetsBits() {
        List<CpuidEntry> out = CpuFeatures.apply(CpuFeatures.parse("-cx16,+x2apic,-nx,-smep"), TABLE);
        CpuidEntry leaf1 = find(out, 1, 0);
        assertEquals(0, leaf1.ecx() & CX16);
        assertEquals(X2APIC, leaf1.ecx() & X2APIC);
        assertEquals(XSAVE, leaf1.ecx() & XSAVE, "untouched");
        assertEquals(0x178bfbff, leaf1.edx());
        assertEquals(LM, find(out, 0x80000001, 0).edx());
        assertEquals(AVX2 | AVX512F | AVX512VL, find(out, 7, 0).ebx());
        assertEquals(0, find(out, 7, 1).ebx(), "subleaf 1 untouched");
        assertEquals(TABLE.size(), out.size());
        assertEquals(TABLE.get(0), out.get(0));
        assertEquals(CX16, find(TABLE, 1, 0).ecx() & CX16, "the input is not modified");
    }

    @Test
    void subleafEditsOnlyTouchTheirSubleaf() {
        List<CpuidEntry> out = CpuFeatures.apply(CpuFeatures.parse("-xsaves"), TABLE);
        assertEquals(0x7, find(out, 0xd, 0).eax());
        assertEquals(0x7, find(out, 0xd, 1).eax());
    }

    @Test
    void xsaveOffTakesItsDependentsAndLeafDWithIt() {
        List<Edit> edits = CpuFeatures.parse("-xsave");
        List<String> names = edits.stream().map(Edit::name).toList();
        assertTrue(names.containsAll(List.of("xsave", "osxsave", "avx", "avx2", "fma", "avx512f", "avx512vl",
                "avx512_fp16", "xsaveopt", "xsaves", "amx_tile")), names.toString());
        assertTrue(edits.stream().noneMatch(Edit::on));
        assertEquals(names.size(), names.stream().distinct().count(), "no repeats");

        List<CpuidEntry> out = CpuFeatures.apply(edits, TABLE);
        CpuidEntry leaf1 = find(out, 1, 0);
        assertEquals(0, leaf1.ecx() & (XSAVE | OSXSAVE | AVX | FMA));
        assertEquals(CX16 | SSE4_2, leaf1.ecx());
        assertEquals(SMEP, find(out, 7, 0).ebx());
        assertTrue(out.stream().noneMatch(e -> e.function() == 0xd), "leaf 0xD dropped");
        assertEquals(TABLE.size() - 2, out.size());
    }

    @Test
    void avxOffKeepsXsave() {
        List<CpuidEntry> out = CpuFeatures.apply(CpuFeatures.parse("-avx"), TABLE);
        assertEquals(XSAVE | OSXSAVE | CX16 | SSE4_2, find(out, 1, 0).ecx());
        assertEquals(SMEP, find(out, 7, 0).ebx());
        assertTrue(out.stream().anyMatch(e -> e.function() == 0xd));
    }

    @Test
    void laterEditsWin() {
        List<CpuidEntry> out = CpuFeatures.apply(CpuFeatures.parse("-xsave,+xsave"), TABLE);
        assertEquals(XSAVE, find(out, 1, 0).ecx() & XSAVE);
        assertEquals(0, find(out, 1, 0).ecx() & AVX, "dependents stay off");
        assertTrue(out.stream().anyMatch(e -> e.function() == 0xd), "xsave back on: leaf 0xD kept");
        assertFalse(find(CpuFeatures.apply(CpuFeatures.parse("+cx16,-cx16"), TABLE), 1, 0).ecx() == (find(TABLE, 1, 0).ecx()));
    }

    @Test
    void editsForMissingLeavesChangeNothing() {
        List<CpuidEntry> small = List.of(new CpuidEntry(1, 0, 0, 0, 0, 0, 0));
        assertEquals(small, CpuFeatures.apply(CpuFeatures.parse("+la57,-lm"), small));
    }
}
