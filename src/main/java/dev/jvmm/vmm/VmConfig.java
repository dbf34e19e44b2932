package dev.jvmm.vmm;

import dev.jvmm.arch.x86.CpuFeatures;
import dev.jvmm.arch.x86.Layout;
import dev.jvmm.arch.x86.PcPlatform;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * How to build and run one VM: plain data, checked when built ({@link Builder#build} throws
 * {@link IllegalArgumentException} with a message fit for a usage error), with no side effects.
 * (What to boot is a {@link dev.jvmm.loader.BootImage}, made separately by the loaders.)
 *
 * @param serialLog    file for the guest's console output instead of stdout, or null
 * @param timeout      wall-clock limit for the whole run, or null for none
 * @param stdin        connect stdin to the guest console (off: the guest sees no input)
 * @param acpi         give the guest ACPI tables (and the ACPI power-off/reset registers)
 * @param pit          which i8254 the guest gets
 * @param cpuFeatures  CPUID edits (--cpu-features), in order
 * @param expect       end the run with status 0 when a line of console output matches this, or null
 * @param virtio       virtio devices, in slot order
 * @param onReboot     what a guest reset does
 * @param failOn       end the run with {@link ExitStatus#FAIL_ON_MATCHED} when a console line matches one of these
 */
public record VmConfig(int cpus, long memBytes, Path serialLog, Duration timeout, boolean stdin, String kvmPath,
                       boolean acpi, PitMode pit, List<CpuFeatures.Edit> cpuFeatures, Pattern expect,
                       List<VirtioSpec> virtio, OnReboot onReboot, List<Pattern> failOn) {
    /** The smallest guest jvmm builds: the boot structures and tables live in the first MiB. */
    public static final long MIN_MEM = 1L << 20;
    /** The longest --timeout: a duration this long is a mistake, and longer ones overflow nanoseconds. */
    public static final Duration MAX_TIMEOUT = Duration.ofDays(365);

    /** The i8254 timer: KVM's in-kernel one, or jvmm's model on the event loop. */
    public enum PitMode {
        KERNEL, USER;

        public static PitMode parse(String s) {
            return choice("--pit", s, values());
        }
    }

    /** What a guest reset does: end the run with status 0, or boot the same kernel again. */
    public enum OnReboot {
        EXIT, RESTART;

        public static OnReboot parse(String s) {
            return choice("--on-reboot", s, values());
        }
    }

    /** The one of {@code values} that {@code s} names, in any case; else why not, naming {@code option}'s choices. */
    private static <E extends Enum<E>> E choice(String option, String s, E[] values) {
        String name = s.toLowerCase(Locale.ROOT);
        List<String> names = new ArrayList<>();
        for (E v : values) {
            String n = v.name().toLowerCase(Locale.ROOT);
            if (n.equals(name)) return v;
            names.add(n);
        }
        throw new IllegalArgumentException("unknown " + option + " '" + s + "': use " + String.join(" or ", names));
    }

    public VmConfig {
        cpuFeatures = List.copyOf(cpuFeatures);
        virtio = List.copyOf(virtio);
        failOn = List.copyOf(failOn);
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().cpus(cpus).memBytes(memBytes).serialLog(serialLog).timeout(timeout).stdin(stdin)
                .kvmPath(kvmPath).acpi(acpi).pit(pit).cpuFeatures(cpuFeatures).expect(expect).virtio(virtio).onReboot(onReboot).failOn(failOn);
    }

    /** A VM with defaults for everything but its size: console on stdout, no stdin, ACPI, in-kernel PIT. */
    public static VmConfig of(int cpus, long memBytes) {
        return builder().cpus(cpus).memBytes(memBytes).build();
    }

    /** Builds a {@link VmConfig}; every field has a default but the size (1 vCPU, 256 MiB). */
    public static final class Builder {
        private int cpus = 1;
        private long memBytes = 256L << 20;
        private Path serialLog;
        private Duration timeout;
        private boolean stdin;
        private String kvmPath = "/dev/kvm";
        private boolean acpi = true;
        private PitMode pit = PitMode.KERNEL;
        private List<CpuFeatures.Edit> cpuFeatures = List.of();
        private Pattern expect;
        private final List<VirtioSpec> virtio = new ArrayList<>();
        private OnReboot onReboot = OnReboot.EXIT;
        private final List<Pattern> failOn = new ArrayList<>();

        private Builder() { }

        public Builder cpus(int n) { this.cpus = n; return this; }
        public Builder memBytes(long n) { this.memBytes = n; return this; }
        public Builder serialLog(Path p) { this.serialLog = p; return this; }
        public Builder timeout(Duration d) { this.timeout = d; return this; }
        public Builder stdin(boolean on) { this.stdin = on; return this; }
        public Builder kvmPath(String p) { this.kvmPath = p; return this; }
        public Builder acpi(boolean on) { this.acpi = on; return this; }
        public Builder pit(PitMode m) { this.pit = m; return this; }
        public Builder cpuFeatures(List<CpuFeatures.Edit> edits) { this.cpuFeatures = List.copyOf(edits); return this; }
        public Builder expect(Pattern p) { this.expect = p; return this; }
        public Builder virtio(List<VirtioSpec> specs) { virtio.clear(); virtio.addAll(specs); return this; }
        public Builder addVirtio(VirtioSpec spec) { virtio.add(spec); return this; }
        public Builder onReboot(OnReboot r) { this.onReboot = r; return this; }
        public Builder failOn(List<Pattern> patterns) { failOn.clear(); failOn.addAll(patterns); return this; }
        public Builder addFailOn(Pattern p) { failOn.add(p); return this; }

        /** @throws IllegalArgumentException naming the option that is out of range */
        public VmConfig build() {
            if (cpus < 1) throw new IllegalArgumentException("--smp must be at least 1 (got " + cpus + ")");
            if (cpus > PcPlatform.MAX_CPUS) {
                throw new IllegalArgumentException("--smp " + cpus + ": jvmm supports at most " + PcPlatform.MAX_CPUS
                        + " vCPUs (8-bit APIC ids in the MP and ACPI tables)");
            }
            if (memBytes < MIN_MEM) throw new IllegalArgumentException("--mem is too small: at least 1M is needed");
            if (memBytes % Layout.PAGE_SIZE != 0) {
                throw new IllegalArgumentException("--mem must be a multiple of the " + Layout.PAGE_SIZE / 1024
                        + " KiB page size (got " + memBytes + " bytes)");
            }
            if (timeout != null && (timeout.isNegative() || timeout.isZero())) {
                throw new IllegalArgumentException("--timeout must be longer than 0");
            }
            if (timeout != null && timeout.compareTo(MAX_TIMEOUT) > 0) {
                throw new IllegalArgumentException("--timeout " + RunReport.duration(timeout) + " is longer than jvmm supports (at most "
                        + MAX_TIMEOUT.toDays() + " days)");
            }
            if (virtio.size() > Layout.VIRTIO_MAX_DEVICES) {
                throw new IllegalArgumentException("at most " + Layout.VIRTIO_MAX_DEVICES + " virtio devices (" + virtio.size() + " asked for)");
            }
            return new VmConfig(cpus, memBytes, serialLog, timeout, stdin, kvmPath, acpi, pit, cpuFeatures, expect, virtio, onReboot,
                    failOn);
        }
    }
}
