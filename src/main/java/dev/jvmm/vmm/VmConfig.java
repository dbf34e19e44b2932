package dev.jvmm.vmm;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Pattern;

/**
 * How to build and run one VM, already parsed and range-checked by the CLI. (What to boot is a
 * {@link dev.jvmm.loader.BootImage}, made separately by the loaders.)
 *
 * @param serialLog    file for the guest's serial output instead of stdout, or null
 * @param timeout      wall-clock limit, or null for none
 * @param stdin        connect stdin to the guest console (off: the guest sees no input)
 * @param acpi         give the guest ACPI tables (and the ACPI power-off/reset registers)
 * @param pit          which i8254 the guest gets
 * @param cpuFeatures  CPUID edits such as "-xsave,-cx16", or "" for none
 * @param expect       end the run with status 0 when a line of serial output matches this, or null
 * @param virtio       virtio devices, in slot order
 * @param deadline     when {@code timeout} ends, in {@link System#nanoTime()} terms; 0: {@code timeout} after the VM starts
 */
public record VmConfig(int cpus, long memBytes, Path serialLog, Duration timeout, boolean stdin, String kvmPath,
                       boolean acpi, PitMode pit, String cpuFeatures, Pattern expect, List<VirtioSpec> virtio, long deadline) {
    /** The i8254 timer: KVM's in-kernel one, or jvmm's model on the event loop. */
    public enum PitMode { KERNEL, USER }

    public VmConfig {
        cpuFeatures = cpuFeatures == null ? "" : cpuFeatures;
        pit = pit == null ? PitMode.KERNEL : pit;
        kvmPath = kvmPath == null ? "/dev/kvm" : kvmPath;
        virtio = virtio == null ? List.of() : List.copyOf(virtio);
    }


    /** A VM with defaults for everything but its size: console on stdout, no stdin, ACPI, in-kernel PIT. */
    public static VmConfig of(int cpus, long memBytes) {
        return new VmConfig(cpus, memBytes, null, null, false, "/dev/kvm", true, PitMode.KERNEL, "", null, List.of(), 0);
    }

    public VmConfig withDeadline(long nanoTime) {
        return new VmConfig(cpus, memBytes, serialLog, timeout, stdin, kvmPath, acpi, pit, cpuFeatures, expect, virtio, nanoTime);
    }

    public VmConfig withSerialLog(Path log) {
        return new VmConfig(cpus, memBytes, log, timeout, stdin, kvmPath, acpi, pit, cpuFeatures, expect, virtio, deadline);
    }
}
