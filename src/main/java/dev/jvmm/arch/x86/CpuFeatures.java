package dev.jvmm.arch.x86;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * {@code --cpu-features}: CPUID feature bits to turn off or on, by the names Linux shows in
 * {@code /proc/cpuinfo}, e.g. {@code -xsave,-cx16,+x2apic}.
 *
 * <p>{@link #parse} turns the comma-separated list into {@link Edit}s; {@link #apply} applies them
 * to a CPUID table (KVM's {@code kvm_cpuid_entry2} array as {@link CpuidEntry} records). Known names
 * cover leaf 1 ECX/EDX, leaf 7 subleaf 0 EBX/ECX/EDX, leaf 0xD subleaf 1 EAX and leaf 0x80000001
 * ECX/EDX; {@link #names()} lists them. A name without a sign means {@code +}. Edits apply in
 * order, so a later edit of the same bit wins.
 *
 * <p>Dependencies: turning a feature off also turns off the features that cannot work without it,
 * transitively: {@code -xsave} clears OSXSAVE, the XSAVE variants of leaf 0xD, AVX and everything
 * built on AVX (AVX2, FMA, F16C, VAES, VPCLMULQDQ, all AVX-512 and AMX features), and {@link #apply}
 * then drops leaf 0xD altogether (the guest sees no XSAVE state components), since a guest must not
 * be told about XSAVE state it cannot enable. {@code -avx} clears the AVX family, {@code -avx512f}
 * the other AVX-512 features. Turning a feature on does not turn its prerequisites on, and sets the
 * bit whatever the host supports: KVM may refuse or ignore what it cannot virtualise.
 */
public final class CpuFeatures {
    private CpuFeatures() { }

    /** A CPUID output register. */
    public enum Register { EAX, EBX, ECX, EDX }

    /** Where a named feature lives. */
    public record Feature(String name, int function, int index, Register register, int bit) { }

    /** One bit to set or clear. {@code name} is the feature's name, for messages. */
    public record Edit(int function, int index, Register register, int bit, boolean on, String name) { }

    /**
     * One CPUID entry, as in KVM's {@code struct kvm_cpuid_entry2}. {@code flags} bit 0
     * ({@link #FLAG_SIGNIFICANT_INDEX}) says the entry is for subleaf {@code index} only; without it
     * the entry answers every subleaf.
     */
    public record CpuidEntry(int function, int index, int flags, int eax, int ebx, int ecx, int edx) {
        public int get(Register r) {
            return switch (r) {
                case EAX -> eax;
                case EBX -> ebx;
                case ECX -> ecx;
                case EDX -> edx;
            };
        }

        public CpuidEntry with(Register r, int value) {
            return switch (r) {
                case EAX -> new CpuidEntry(function, index, flags, value, ebx, ecx, edx);
                case EBX -> new CpuidEntry(function, index, flags, eax, value, ecx, edx);
                case ECX -> new CpuidEntry(function, index, flags, eax, ebx, value, edx);
                case EDX -> new CpuidEntry(function, index, flags, eax, ebx, ecx, value);
            };
        }

        /** Whether this entry answers CPUID({@code fn}, {@code subleaf}). */
        public boolean matches(int fn, int subleaf) {
            return function == fn && ((flags & FLAG_SIGNIFICANT_INDEX) == 0 || index == subleaf);
        }
    }

    /** KVM_CPUID_FLAG_SIGNIFCANT_INDEX. */
    public static final int FLAG_SIGNIFICANT_INDEX = 1;

    public static final int LEAF_XSAVE = 0xd;

    private static final Map<String, Feature> FEATURES = new LinkedHashMap<>();
    /** Feature → features that need it (direct dependents only). */
    private static final Map<String, List<String>> DEPENDENTS = new LinkedHashMap<>();

    private static void leaf(int function, int index, Register r, String... namesByBit) {
        for (int bit = 0; bit < namesByBit.length; bit++) {
            String n = namesByBit[bit];
            if (n != null) {
                if (FEATURES.put(n, new Feature(n, function, index, r, bit)) != null) {
                    throw new AssertionError("duplicate feature name " + n);
                }
            }
        }
    }

    private static void alias(String alias, String name) {
        FEATURES.put(alias, FEATURES.get(name));
    }

    private static void needs(String feature, String... dependents) {
        DEPENDENTS.put(feature, List.of(dependents));
    }

    static {
        String x = null;   // a bit without a name
        leaf(1, 0, Register.ECX,
                "pni", "pclmulqdq", "dtes64", "monitor", "ds_cpl", "vmx", "smx", "est",
                "tm2", "ssse3", "cid", "sdbg", "fma", "cx16", "xtpr", "pdcm",
                x, "pcid", "dca", "sse4_1", "sse4_2", "x2apic", "movbe", "popcnt",
                "tsc_deadline_timer", "aes", "xsave", "osxsave", "avx", "f16c", "rdrand", "hypervisor");
        leaf(1, 0, Register.EDX,
                "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce",
                "cx8", "apic", x, "sep", "mtrr", "pge", "mca", "cmov",
                "pat", "pse36", "pn", "clflush", x, "dts", "acpi", "mmx",
                "fxsr", "sse", "sse2", "ss", "ht", "tm", "ia64", "pbe");
        leaf(7, 0, Register.EBX,
                "fsgsbase", "tsc_adjust", "sgx", "bmi1", "hle", "avx2", x, "smep",
                "bmi2", "erms", "invpcid", "rtm", "cqm", x, "mpx", "rdt_a",
                "avx512f", "avx512dq", "rdseed", "adx", "smap", "avx512ifma", x, "clflushopt",
                "clwb", "intel_pt", "avx512pf", "avx512er", "avx512cd", "sha_ni", "avx512bw", "avx512vl");
        leaf(7, 0, Register.ECX,
                x, "avx512vbmi", "umip", "pku", "ospke", "waitpkg", "avx512_vbmi2", x,
                "gfni", "vaes", "vpclmulqdq", "avx512_vnni", "avx512_bitalg", "tme", "avx512_vpopcntdq", x,
                "la57", x, x, x, x, x, "rdpid", x,
                "bus_lock_detect", "cldemote", x, "movdiri", "movdir64b", "enqcmd", "sgx_lc");
        leaf(7, 0, Register.EDX,
                x, x, "avx512_4vnniw", "avx512_4fmaps", "fsrm", x, x, x,
                "avx512_vp2intersect", x, "md_clear", x, x, x, "serialize", x,
                "tsxldtrk", x, "pconfig", "arch_lbr", "ibt", x, "amx_bf16", "avx512_fp16",
                "amx_tile", "amx_int8", x, x, "flush_l1d", "arch_capabilities", "core_capabilities");
        leaf(LEAF_XSAVE, 1, Register.EAX, "xsaveopt", "xsavec", "xgetbv1", "xsaves", "xfd");
        leaf(0x80000001, 0, Register.ECX,
                "lahf_lm", "cmp_legacy", "svm", "extapic", "cr8_legacy", "abm", "sse4a", "misalignsse",
                "3dnowprefetch", "osvw", "ibs", "xop", "skinit", "wdt", x, "lwp",
                "fma4", "tce", x, "nodeid_msr", x, "tbm", "topoext", "perfctr_core",
                "perfctr_nb", x, "bpext", "ptsc", "perfctr_llc", "mwaitx");
        leaf(0x80000001, 0, Register.EDX,
                x, x, x, x, x, x, x, x,
                x, x, x, "syscall", x, x, x, x,
                x, x, x, "mp", "nx", x, "mmxext", x,
                x, "fxsr_opt", "pdpe1gb", "rdtscp", x, "lm", "3dnowext", "3dnow");
        alias("sse3", "pni");
        alias("sse4.1", "sse4_1");
        alias("sse4.2", "sse4_2");

        needs("xsave", "osxsave", "avx", "xsaveopt", "xsavec", "xgetbv1", "xsaves", "xfd",
                "amx_tile", "amx_bf16", "amx_int8", "pku");
        needs("avx", "avx2", "fma", "f16c", "vaes", "vpclmulqdq", "avx512f");
        needs("avx512f", "avx512dq", "avx512ifma", "avx512pf", "avx512er", "avx512cd", "avx512bw",
                "avx512vl", "avx512vbmi", "avx512_vbmi2", "avx512_vnni", "avx512_bitalg",
                "avx512_vpopcntdq", "avx512_4vnniw", "avx512_4fmaps", "avx512_vp2intersect", "avx512_fp16");
        needs("amx_tile", "amx_bf16", "amx_int8");
        needs("pku", "ospke");
        needs("fxsr", "sse", "fxsr_opt");
        needs("sse", "sse2");
        needs("sse2", "pni");
        needs("pni", "ssse3");
        needs("ssse3", "sse4_1");
        needs("sse4_1", "sse4_2");
        needs("sse4_2", "avx", "aes", "pclmulqdq", "sha_ni", "gfni");
        needs("lm", "pdpe1gb");
    }

    /** Every known feature name (including aliases such as {@code sse3}), in table order. */
    public static Set<String> names() {
        return Collections.unmodifiableSet(FEATURES.keySet());
    }

    /** The feature called {@code name}, or null. */
    public static Feature feature(String name) {
        return FEATURES.get(name.toLowerCase(Locale.ROOT));
    }

    /**
     * Parses {@code -name,+name,name,...}: {@code -} turns a feature off (with its dependents),
     * {@code +} or no sign turns it on. Blank items are skipped; an empty or blank spec gives no edits.
     *
     * @throws IllegalArgumentException naming the first unknown feature or malformed item
     */
    public static List<Edit> parse(String spec) {
        Objects.requireNonNull(spec, "spec");
        List<Edit> edits = new ArrayList<>();
        for (String raw : spec.split(",")) {
            String item = raw.strip();
            if (item.isEmpty()) {
                continue;
            }
            boolean on = item.charAt(0) != '-';
            String name = item.charAt(0) == '-' || item.charAt(0) == '+' ? item.substring(1).strip() : item;
            Feature f = name.isEmpty() ? null : feature(name);
            if (f == null) {
                throw new IllegalArgumentException(name.isEmpty()
                        ? "invalid CPU feature item '" + item + "': expected a feature name after the sign, "
                                + "e.g. -xsave,+x2apic"
                        : "unknown CPU feature '" + name + "': use the names /proc/cpuinfo shows, each with - to "
                                + "turn it off or + to turn it on, separated by commas, e.g. -xsave,-cx16,+x2apic");
            }
            if (on) {
                edits.add(edit(f, true));
            } else {
                for (String n : withDependents(f.name())) {
                    edits.add(edit(FEATURES.get(n), false));
                }
            }
        }
        return List.copyOf(edits);
    }

    private static Edit edit(Feature f, boolean on) {
        return new Edit(f.function(), f.index(), f.register(), f.bit(), on, f.name());
    }

    /** {@code name} followed by every feature that depends on it, transitively, without repeats. */
    static List<String> withDependents(String name) {
        Set<String> out = new LinkedHashSet<>();
        List<String> work = new ArrayList<>(List.of(name));
        while (!work.isEmpty()) {
            String n = work.removeFirst();
            if (out.add(n)) {
                work.addAll(DEPENDENTS.getOrDefault(n, List.of()));
            }
        }
        return List.copyOf(out);
    }

    /**
     * Returns a copy of {@code entries} with {@code edits} applied in order. An edit changes every
     * entry that answers its leaf and subleaf; an edit for a leaf the table lacks changes nothing. If
     * the edits turn xsave off, leaf 0xD is dropped.
     */
    public static List<CpuidEntry> apply(List<Edit> edits, List<CpuidEntry> entries) {
        List<CpuidEntry> out = new ArrayList<>(entries);
        boolean dropXsaveLeaf = false;
        for (Edit e : edits) {
            int mask = 1 << e.bit();
            for (int i = 0; i < out.size(); i++) {
                CpuidEntry c = out.get(i);
                if (c.matches(e.function(), e.index())) {
                    int v = c.get(e.register());
                    out.set(i, c.with(e.register(), e.on() ? v | mask : v & ~mask));
                }
            }
            if (e.name().equals("xsave")) {
                dropXsaveLeaf = !e.on();
            }
        }
        if (dropXsaveLeaf) {
            out.removeIf(c -> c.function() == LEAF_XSAVE);
        }
        return List.copyOf(out);
    }
}
