package dev.jvmm.cli;

import picocli.CommandLine.Option;

/** --smp and --mem, shared by the commands that describe a VM ({@code run}, {@code dump-acpi}). */
public final class SizeOptions {
    @Option(names = "--smp", paramLabel = "N", description = "Number of vCPUs (default: ${DEFAULT-VALUE}).", defaultValue = "1")
    int cpus;

    @Option(names = "--mem", paramLabel = "SIZE", description = "Guest RAM, e.g. 512M or 2G; a bare number is MiB (default: ${DEFAULT-VALUE}).",
            defaultValue = "256M")
    String mem;

    /** --mem in bytes. @throws IllegalArgumentException for a malformed size */
    long memBytes() {
        return Units.parseSize(mem);
    }
}
