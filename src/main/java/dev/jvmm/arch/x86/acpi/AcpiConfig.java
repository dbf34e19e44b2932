package dev.jvmm.arch.x86.acpi;

import java.util.List;

/** What the ACPI tables describe: the vCPU count (1 to {@link AcpiTables#MAX_CPUS}) and the virtio-mmio devices. */
public record AcpiConfig(int cpus, List<VirtioMmioSlot> virtioSlots) {
    public AcpiConfig {
        if (cpus < 1 || cpus > AcpiTables.MAX_CPUS) {
            throw new IllegalArgumentException("ACPI tables support 1 to " + AcpiTables.MAX_CPUS + " vCPUs (got " + cpus + ")");
        }
        virtioSlots = List.copyOf(virtioSlots);
    }

    public AcpiConfig(int cpus) {
        this(cpus, List.of());
    }
}
