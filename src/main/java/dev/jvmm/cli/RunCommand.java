package dev.jvmm.cli;

import dev.jvmm.loader.BootImage;
import dev.jvmm.loader.KernelFormat;
import dev.jvmm.loader.KernelLoader;
import dev.jvmm.loader.LoadException;
import dev.jvmm.loader.LoadOptions;
import dev.jvmm.vmm.ExitStatus;
import dev.jvmm.vmm.HostInfo;
import dev.jvmm.vmm.RunReport;
import dev.jvmm.vmm.Vm;
import dev.jvmm.vmm.VmConfig;
import dev.jvmm.vmm.VmmException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code jvmm run}: boot a kernel and return the guest's verdict as the exit status. */
@Command(name = "run", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Boot KERNEL in a new VM; the guest's serial console is on stdin/stdout.",
        footer = {"", "Exit codes:",
                "  0    the guest powered off or reset the machine, or Ctrl-A x",
                "  odd  isa-debug-exit: the guest wrote v to port 0xf4: (v << 1) | 1",
                "  2    bad command line",
                "  4    the kernel or an initrd cannot be loaded",
                "  6    this host cannot run VMs (no /dev/kvm, permission, capability)",
                "  8    the guest triple-faulted (KVM_EXIT_SHUTDOWN)",
                "  10   KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY)",
                "  12   KVM internal error, e.g. an instruction it cannot emulate",
                "  14   jvmm failed (a bug or an unexpected KVM error)",
                "  124  --timeout passed",
                "  130  SIGINT, 143 SIGTERM"})
public final class RunCommand implements Callable<Integer> {
    static final long MIN_MEM = 1L << 20;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    private final PrintStream err;

    RunCommand(PrintStream err) {
        this.err = err;
    }

    @Option(names = "--smp", paramLabel = "N", description = "Number of vCPUs (default: ${DEFAULT-VALUE}).", defaultValue = "1")
    int cpus;

    @Option(names = "--mem", paramLabel = "SIZE", description = "Guest RAM, e.g. 512M or 2G; a bare number is MiB (default: ${DEFAULT-VALUE}).",
            defaultValue = "256M")
    String mem;

    @Option(names = "--cmdline", paramLabel = "STRING", description = "Kernel command line (multiboot: the boot command line).")
    String cmdline = "";

    @Option(names = "--initrd", paramLabel = "FILE", description = "Initial ramdisk; for multiboot kernels a module. Repeatable.")
    List<Path> initrds = new ArrayList<>();

    @Option(names = "--format", paramLabel = "FORMAT", description = "Force the kernel format: flat or multiboot (default: detect).")
    String format;

    @Option(names = "--serial-log", paramLabel = "FILE", description = "Write the guest's serial output to FILE instead of stdout.")
    Path serialLog;

    @Option(names = "--timeout", paramLabel = "DURATION", description = "End the run with status 124 after DURATION (e.g. 500ms, 30s, 2m).")
    String timeout;

    @Option(names = "--stats", description = "Print exit statistics to stderr when the run ends.")
    boolean stats;

    @Option(names = "--stats-json", paramLabel = "FILE", description = "Write the same statistics to FILE as JSON.")
    Path statsJson;

    @Option(names = "--no-stdin", description = "Do not connect stdin to the guest's console (as ssh -n): for scripts whose stdin is not meant for the guest.")
    boolean noStdin;

    @Option(names = "--kvm", paramLabel = "PATH", description = "KVM device (default: ${DEFAULT-VALUE}).", defaultValue = "/dev/kvm")
    String kvmPath;

    @Option(names = {"-v", "--verbose"}, description = "Log what jvmm does; show stack traces on errors.")
    boolean verbose;

    @Parameters(index = "0", paramLabel = "KERNEL", description = "Kernel image: flat binary or multiboot ELF.")
    Path kernel;

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }

    VmConfig config() {
        if (cpus < 1) throw usage("--smp must be at least 1 (got " + cpus + ")");
        long memBytes;
        Duration limit = null;
        try {
            memBytes = Units.parseSize(mem);
            if (timeout != null) limit = Units.parseDuration(timeout);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        if (memBytes < MIN_MEM) throw usage("--mem " + mem + " is too small: at least 1M is needed");
        long hostMem = HostInfo.memTotal();
        if (memBytes > hostMem) {
            throw usage("--mem " + mem + " is more than this host's " + Units.formatSize(hostMem) + " of RAM");
        }
        if (limit != null && limit.isZero()) throw usage("--timeout must be longer than 0");
        KernelFormat forced = null;
        if (format != null) {
            try {
                forced = KernelFormat.valueOf(format.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw usage("unknown --format '" + format + "': use flat or multiboot");
            }
        }
        return new VmConfig(kernel, forced, cpus, memBytes, cmdline, initrds, serialLog, limit, stats, statsJson, !noStdin, verbose, kvmPath);
    }

    @Override
    public Integer call() {
        Main.configureLogging(verbose);
        VmConfig config = config();
        BootImage image;
        try {
            image = KernelLoader.load(config.kernel(), config.format(),
                    new LoadOptions(config.memBytes(), config.cmdline(), config.initrds()));
        } catch (LoadException e) {
            return fail(err, ExitStatus.BAD_IMAGE, e.getMessage(), e);
        }
        Vm vm = new Vm(config, err);
        RunReport report = new RunReport();
        int status;
        try {
            status = vm.run(image, report);
        } catch (VmmException e) {
            return fail(err, e.exitStatus(), e.getMessage(), e);
        } catch (RuntimeException e) {
            return fail(err, ExitStatus.VMM_ERROR, String.valueOf(e.getMessage()), e);
        }
        Vm.Stop stop = report.stop();
        if (status != ExitStatus.OK && !(stop.reason().contains("isa-debug-exit"))) {
            err.println("jvmm: " + stop.reason());
            if (stop.detail() != null) err.println(stop.detail().indent(2).stripTrailing());
        } else if (verbose) {
            err.println("jvmm: " + stop.reason());
        }
        if (stats) report.print(err);
        if (statsJson != null) {
            try {
                report.writeJson(statsJson);
            } catch (IOException e) {
                err.println("jvmm: cannot write --stats-json " + statsJson + ": " + e.getMessage());
            }
        }
        err.flush();
        return status;
    }

    private int fail(PrintStream err, int status, String message, Throwable cause) {
        err.println("jvmm: " + message);
        if (verbose) cause.printStackTrace(err);
        err.flush();
        return status;
    }
}
