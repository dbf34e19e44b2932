package dev.jvmm.vmm;

import dev.jvmm.loader.KernelFormat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Everything `jvmm run` was asked to do, already parsed and range-checked by the CLI.
 *
 * @param format       forced image format, or null to detect
 * @param serialLog    file for the guest's serial output instead of stdout, or null
 * @param timeout      wall-clock limit, or null for none
 * @param statsJson    file to write run statistics to as JSON, or null
 * @param stdin        connect stdin to the guest console (off: the guest sees no input)
 */
public record VmConfig(Path kernel, KernelFormat format, int cpus, long memBytes, String cmdline, List<Path> initrds,
                       Path serialLog, Duration timeout, boolean stats, Path statsJson, boolean stdin, boolean verbose, String kvmPath) {
    public VmConfig {
        initrds = List.copyOf(initrds);
        cmdline = cmdline == null ? "" : cmdline;
    }
}
