package dev.jvmm.cli;

import dev.jvmm.arch.x86.CpuFeatures;
import dev.jvmm.arch.x86.Layout;
import dev.jvmm.loader.BootImage;
import dev.jvmm.loader.KernelFormat;
import dev.jvmm.loader.KernelLoader;
import dev.jvmm.loader.LoadException;
import dev.jvmm.loader.LoadOptions;
import dev.jvmm.sys.Tun;
import dev.jvmm.vmm.ExitStatus;
import dev.jvmm.vmm.HostInfo;
import dev.jvmm.vmm.LinuxKernels;
import dev.jvmm.vmm.RunReport;
import dev.jvmm.vmm.Vm;
import dev.jvmm.vmm.VirtioBackplane;
import dev.jvmm.vmm.VirtioSpec;
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
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

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

    private KernelFormat forcedFormat;
    private LoadOptions.BootProtocol bootProtocol;

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

    @Option(names = "--format", paramLabel = "FORMAT", description = "Force the kernel format: flat, multiboot, bzimage or elf (default: detect).")
    String format;

    @Option(names = "--boot", paramLabel = "64|pvh", description = "How to enter a Linux kernel: 64 (64-bit boot protocol) or pvh"
            + " (PVH entry of an ELF vmlinux). Default: 64, or PVH for an ELF whose only entry is its PVH note.")
    String boot;

    @Option(names = "--no-host-decompress", description = "Boot a bzImage the classic way, letting the kernel decompress"
            + " itself, instead of decompressing its payload on the host.")
    boolean noHostDecompress;

    @Option(names = "--no-acpi", description = "Give the guest no ACPI tables (an MP table still describes the CPUs).")
    boolean noAcpi;

    @Option(names = "--cpu-features", paramLabel = "EDITS", description = "Mask or add CPUID features, e.g. -xsave,-cx16,+x2apic.")
    String cpuFeatures = "";

    @Option(names = "--pit", paramLabel = "kernel|user", description = "i8254 timer: KVM's in-kernel PIT (default) or jvmm's"
            + " emulated one on the event loop.", defaultValue = "kernel")
    String pit;

    @Option(names = "--on-reboot", paramLabel = "exit|restart", description = "What a guest reboot does: end the run with"
            + " status 0 (default) or restart the VM.", defaultValue = "exit")
    String onReboot;

    @Option(names = "--expect", paramLabel = "REGEX", description = "End the run with status 0 as soon as a line of serial"
            + " output matches REGEX (status 16 if the guest stops first, 124 on --timeout).")
    String expect;

    @Option(names = "--disk", paramLabel = "PATH[,ro][,id=NAME]", description = "A virtio-blk disk over a raw image file;"
            + " ro makes it read-only, id sets its serial (default: the file name). Repeatable.")
    List<String> disks = new ArrayList<>();

    @Option(names = "--net", paramLabel = "tap=NAME[,mac=MAC]", description = "A virtio-net device on the host's tap device"
            + " NAME (attached to, or created: that needs root); mac sets the guest's address (default: 52:54:00:xx:xx:xx"
            + " from the tap name). Repeatable.")
    List<String> nets = new ArrayList<>();

    @Option(names = "--rng", description = "A virtio-rng device: entropy from the host for /dev/hwrng.")
    boolean rng;

    @Option(names = "--console", paramLabel = "serial|virtio", description = "Where the guest's console is: the 8250 (default)"
            + " or a virtio console (hvc0); stdin and stdout follow it.", defaultValue = "serial")
    String consoleKind;

    @Option(names = "--force", description = "Run a Linux kernel even on a host whose KVM only emulates guest code.")
    boolean force;

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
                throw usage("unknown --format '" + format + "': use flat, multiboot, bzimage or elf");
            }
        }
        this.forcedFormat = forced;
        this.bootProtocol = switch (boot == null ? "" : boot.toLowerCase(Locale.ROOT)) {
            case "" -> LoadOptions.BootProtocol.DEFAULT;
            case "64" -> LoadOptions.BootProtocol.LONG64;
            case "pvh" -> LoadOptions.BootProtocol.PVH;
            default -> throw usage("unknown --boot '" + boot + "': use 64 or pvh");
        };
        VmConfig.PitMode pitMode = switch (pit.toLowerCase(Locale.ROOT)) {
            case "kernel" -> VmConfig.PitMode.KERNEL;
            case "user" -> VmConfig.PitMode.USER;
            default -> throw usage("unknown --pit '" + pit + "': use kernel or user");
        };
        if (!onReboot.equals("exit") && !onReboot.equals("restart")) {
            throw usage("unknown --on-reboot '" + onReboot + "': use exit or restart");
        }
        Pattern expectPattern = null;
        if (expect != null) {
            try {
                expectPattern = Pattern.compile(expect);
            } catch (PatternSyntaxException e) {
                throw usage("--expect '" + expect + "' is not a valid regular expression: " + e.getDescription());
            }
        }
        try {
            CpuFeatures.parse(cpuFeatures);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        List<VirtioSpec> virtio = new ArrayList<>();
        for (String d : disks) virtio.add(parseDisk(d));
        java.util.Set<String> taps = new java.util.HashSet<>();
        for (String n : nets) {
            VirtioSpec.Net net = parseNet(n);
            if (!taps.add(net.tap())) throw usage("--net '" + n + "': tap device " + net.tap() + " is already used by another --net");
            virtio.add(net);
        }
        if (rng) virtio.add(new VirtioSpec.Rng());
        switch (consoleKind.toLowerCase(Locale.ROOT)) {
            case "serial" -> { }
            case "virtio" -> virtio.add(new VirtioSpec.Console());
            default -> throw usage("unknown --console '" + consoleKind + "': use serial or virtio");
        }
        if (virtio.size() > Layout.VIRTIO_MAX_DEVICES) {
            throw usage("at most " + Layout.VIRTIO_MAX_DEVICES + " virtio devices (" + virtio.size() + " asked for)");
        }
        return new VmConfig(cpus, memBytes, serialLog, limit, !noStdin, kvmPath, !noAcpi, pitMode, cpuFeatures, expectPattern,
                virtio, 0);
    }

    /** "PATH[,ro][,id=NAME]" */
    private VirtioSpec.Disk parseDisk(String spec) {
        String[] parts = spec.split(",");
        if (parts[0].isEmpty()) throw usage("--disk '" + spec + "': the image path is missing");
        Path image = Path.of(parts[0]);
        boolean ro = false;
        String id = image.getFileName() == null ? "disk" : image.getFileName().toString();
        for (int i = 1; i < parts.length; i++) {
            if (parts[i].equals("ro")) ro = true;
            else if (parts[i].startsWith("id=") && parts[i].length() > 3) id = parts[i].substring(3);
            else throw usage("--disk '" + spec + "': unknown option '" + parts[i] + "' (use ro or id=NAME)");
        }
        if (id.length() > 20) throw usage("--disk '" + spec + "': id '" + id + "' is longer than virtio's 20 bytes");
        return new VirtioSpec.Disk(image, ro, id);
    }

    /** "tap=NAME[,mac=aa:bb:cc:dd:ee:ff]" */
    private VirtioSpec.Net parseNet(String spec) {
        String tap = null;
        byte[] mac = null;
        for (String part : spec.split(",", -1)) {
            if (part.startsWith("tap=")) {
                if (tap != null) throw usage("--net '" + spec + "': tap= is given twice");
                tap = part.substring(4);
                String bad = Tun.checkName(tap);
                if (bad != null) throw usage("--net '" + spec + "': " + bad);
            } else if (part.startsWith("mac=")) {
                if (mac != null) throw usage("--net '" + spec + "': mac= is given twice");
                mac = parseMac(spec, part.substring(4));
            } else {
                throw usage("--net '" + spec + "': unknown option '" + part + "' (use tap=NAME and mac=aa:bb:cc:dd:ee:ff)");
            }
        }
        if (tap == null) throw usage("--net '" + spec + "': the tap device is missing (use tap=NAME)");
        return new VirtioSpec.Net(tap, mac);
    }

    private byte[] parseMac(String spec, String text) {
        String[] octets = text.split("[:-]", -1);
        byte[] mac = new byte[6];
        boolean ok = octets.length == 6;
        for (int i = 0; ok && i < 6; i++) {
            ok = octets[i].matches("[0-9a-fA-F]{1,2}");
            if (ok) mac[i] = (byte) Integer.parseInt(octets[i], 16);
        }
        if (!ok) throw usage("--net '" + spec + "': invalid MAC address '" + text + "' (use six hex bytes, e.g. 52:54:00:12:34:56)");
        if ((mac[0] & 1) != 0) throw usage("--net '" + spec + "': MAC address " + text + " is a multicast address (the first byte must be even)");
        if (java.util.Arrays.equals(mac, new byte[6])) throw usage("--net '" + spec + "': MAC address " + text + " is all zeros");
        return mac;
    }

    @Override
    public Integer call() {
        Main.configureLogging(verbose);
        VmConfig config = config();
        BootImage image;
        try {
            String fullCmdline = config.virtio().isEmpty() ? cmdline
                    : (cmdline.isEmpty() ? "" : cmdline + " ") + VirtioBackplane.cmdlineDevices(config.virtio());
            image = KernelLoader.load(kernel, forcedFormat, new LoadOptions(config.memBytes(), fullCmdline, initrds,
                    bootProtocol, !noHostDecompress, config.acpi() ? Layout.ACPI_RSDP : 0));
        } catch (LoadException e) {
            return fail(err, ExitStatus.BAD_IMAGE, e.getMessage(), e);
        }
        if (!force && HostInfo.virtualization() == HostInfo.Virtualization.EMULATED && LinuxKernels.isLinux(kernel, image)) {
            return fail(err, ExitStatus.HOST_UNSUITABLE, kernel + " is a Linux kernel, and this host's /dev/kvm emulates guest"
                    + " code instead of running it (no VT-x/AMD-V): Linux would crawl for minutes and then stop on an"
                    + " instruction the emulator lacks. Use a host with hardware virtualization or scripts/nested-kvm"
                    + " (--force tries anyway)", null);
        }
        RunReport report;
        int status;
        int boots = 0;
        // --timeout counts from the start of the jvmm process, as timeout(1) would: JVM start-up included
        long deadline = config.timeout() == null ? 0 : System.nanoTime() + config.timeout().toNanos() - sinceProcessStart();
        while (true) {
            VmConfig thisBoot = config;
            if (config.timeout() != null) thisBoot = config.withDeadline(deadline); // one deadline for all boots
            Vm vm = new Vm(thisBoot, err);
            report = new RunReport();
            try {
                status = vm.run(image, report);
            } catch (VmmException e) {
                return fail(err, e.exitStatus(), e.getMessage(), e);
            } catch (RuntimeException e) {
                return fail(err, ExitStatus.VMM_ERROR, String.valueOf(e.getMessage()), e);
            }
            if (!(report.stop().reset() && onReboot.equals("restart"))) break;
            boots++;
            if (verbose) err.println("jvmm: " + report.stop().reason() + "; restarting (boot " + (boots + 1) + ")");
        }
        Vm.Stop stop = report.stop();
        if (config.expect() != null && !stop.expectMatched() && status == ExitStatus.OK) {
            status = ExitStatus.EXPECT_UNMATCHED;
            err.println("jvmm: the guest stopped (" + stop.reason() + ") before its output matched --expect '" + expect + "'");
        }
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

    /** How long ago this process started (0 if the OS does not say). */
    private static long sinceProcessStart() {
        return ProcessHandle.current().info().startInstant()
                .map(start -> Math.max(0, Duration.between(start, java.time.Instant.now()).toNanos()))
                .orElse(0L);
    }

    private int fail(PrintStream err, int status, String message, Throwable cause) {
        err.println("jvmm: " + message);
        if (verbose && cause != null) cause.printStackTrace(err);
        err.flush();
        return status;
    }
}
