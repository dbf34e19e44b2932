package dev.jvmm.cli;

import dev.jvmm.arch.x86.CpuFeatures;
import dev.jvmm.arch.x86.Layout;
import dev.jvmm.host.HostInfo;
import dev.jvmm.loader.BootImage;
import dev.jvmm.loader.KernelCache;
import dev.jvmm.loader.KernelFormat;
import dev.jvmm.loader.KernelLoader;
import dev.jvmm.loader.LoadException;
import dev.jvmm.loader.LoadOptions;
import dev.jvmm.vmm.ApiServer;
import dev.jvmm.vmm.RestoreConfig;
import dev.jvmm.vmm.SnapshotFile;
import dev.jvmm.vmm.ExitStatus;
import dev.jvmm.vmm.GdbStub;
import dev.jvmm.gdb.GdbServer;
import dev.jvmm.vmm.RootfsRun;
import dev.jvmm.vmm.RunGuard;
import dev.jvmm.vmm.StopCause;
import dev.jvmm.loader.initramfs.RootfsInit;
import dev.jvmm.vmm.RunReport;
import dev.jvmm.vmm.Stop;
import dev.jvmm.vmm.Timeline;
import dev.jvmm.vmm.VirtioMmioDevices;
import dev.jvmm.vmm.VirtioSpec;
import dev.jvmm.vmm.Vm;
import dev.jvmm.vmm.VmBuilder;
import dev.jvmm.vmm.VmConfig;
import dev.jvmm.vmm.VmmException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/** {@code jvmm run}: boot a kernel and return the guest's verdict as the exit status. */
@Command(name = "run", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Boot KERNEL in a new VM; the guest's serial console is on stdin/stdout.")
public final class RunCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    private final PrintStream err;
    private List<VirtioSpec.Share> shareSpecs = List.of();
    private RootfsRun rootfsRun;

    RunCommand(PrintStream err) {
        this.err = err;
    }

    @Mixin
    SizeOptions size;

    @Option(names = "--cmdline", paramLabel = "STRING", description = "Kernel command line (multiboot: the boot command line).")
    String cmdline = "";

    @Option(names = "--initrd", paramLabel = "FILE", description = "Initial ramdisk; for multiboot kernels a module. Repeatable.")
    List<Path> initrds = new ArrayList<>();

    @Option(names = "--format", paramLabel = "FORMAT", description = "Force the kernel format: flat, multiboot, bzimage or elf (default: detect).")
    String format;

    @Option(names = "--boot", paramLabel = "64|pvh", description = "How to enter a Linux kernel: 64 (64-bit boot protocol) or pvh"
            + " (PVH entry of an ELF vmlinux). Default: 64, or PVH for an ELF whose only entry is its PVH note.")
    String boot;

    @Option(names = "--host-decompress", description = "Boot a bzImage by decompressing its payload on the host and entering"
            + " the vmlinux inside, instead of letting the kernel decompress itself (the default: faster in every measurement so far).")
    boolean hostDecompress;

    @Option(names = "--no-host-decompress", description = "The default: the kernel decompresses itself (accepted for scripts"
            + " written when host decompression was the default; overrides --host-decompress).")
    boolean noHostDecompress;

    @Option(names = "--no-kernel-cache", description = "With --host-decompress: decompress on every boot, instead of keeping what"
            + " was decompressed in ${XDG_CACHE_HOME:-~/.cache}/jvmm/vmlinux for the next boot of the same kernel.")
    boolean noKernelCache;

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

    @Option(names = "--fail-on", paramLabel = "REGEX", description = "End the run with status 22 when a line of console"
            + " output matches REGEX, e.g. 'WARNING:|BUG:|KASAN:' (repeatable). A kernel panic always ends it with 20.")
    List<String> failOn = new ArrayList<>();

    @Option(names = "--disk", paramLabel = "PATH[,ro][,id=NAME][,lock=off]", description = "A virtio-blk disk over a raw image file;"
            + " ro makes it read-only, id sets its serial (default: the file name). The image is locked (exclusively, or"
            + " shared with ro) so no other VM writes it meanwhile; lock=off shares it anyway. Repeatable.")
    List<String> disks = new ArrayList<>();

    @Option(names = "--net", paramLabel = "tap=NAME[,mac=MAC]|user[,fwd=tcp:HOSTPORT:GUESTPORT]...[,mac=MAC][,optional]",
            description = "A virtio-net device on the host's tap device NAME (attached to, or created: that needs root);"
            + " or user: on a passt process jvmm starts (user-mode networking, no root: DHCP, DNS, NAT; the gateway address"
            + " is the host's loopback), fwd=tcp|udp:[ADDR:]HOSTPORT:GUESTPORT forwarding host ports to the guest,"
            + " optional: passt going away takes the link down instead of ending the run. mac sets the guest's address"
            + " (default: 52:54:00:xx:xx:xx from the tap name; 52:54:00:12:34:56 for user). Repeatable.")
    List<String> nets = new ArrayList<>();

    @Option(names = "--passt", paramLabel = "PATH", description = "The passt program for --net user (default: passt on PATH;"
            + " Debian package passt).")
    Path passt;

    @Option(names = "--vsock", paramLabel = "cid=N,uds=PATH", description = "A virtio-vsock device, guest CID N (3 or more),"
            + " Firecracker's UNIX-socket protocol: host programs connect to PATH and write 'CONNECT PORT\\n' (answer"
            + " 'OK HOSTPORT\\n') to reach the guest's port; the guest's connections to CID 2 port P go to the socket PATH_P.")
    String vsock;

    @Option(names = "--share", paramLabel = "DIR[,tag=TAG][,ro]", description = "Share host directory DIR with the guest"
            + " (virtio-fs through a virtiofsd jvmm starts and stops; the guest mounts it with mount -t virtiofs TAG /mnt);"
            + " tag defaults to DIR's name (at most 36 bytes), ro makes it read-only. socket=PATH,tag=TAG uses a vhost-user"
            + " back end already listening at PATH instead. Repeatable; tags must differ. Needs root (virtiofsd does).")
    List<String> shares = new ArrayList<>();

    @Option(names = "--virtiofsd", paramLabel = "PATH", description = "The virtiofsd program for --share (default: virtiofsd"
            + " on PATH, /usr/libexec/virtiofsd, /usr/lib/qemu/virtiofsd).")
    Path virtiofsd;

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

    @Option(names = "--api-socket", paramLabel = "PATH", description = "Serve a control socket at PATH (owner-only, removed"
            + " at exit): one JSON request per line, info, stats, pause, resume, stop or snapshot; 'jvmm ctl PATH REQUEST' is its client.")
    Path apiSocket;

    @Option(names = "--gdb", paramLabel = "tcp:[HOST:]PORT|unix:PATH", description = "Serve the GDB remote protocol"
            + " (one debugger at a time) on a TCP port (127.0.0.1 unless HOST is given) or a UNIX socket: gdb's 'target remote'.")
    String gdb;

    @Option(names = "--gdb-wait", description = "With --gdb: the vCPUs do not start until a debugger attaches and continues.")
    boolean gdbWait;

    @Option(names = "--no-stdin", description = "Do not connect stdin to the guest's console (as ssh -n): for scripts whose stdin is not meant for the guest.")
    boolean noStdin;

    @Option(names = "--kvm", paramLabel = "PATH", description = "KVM device (default: ${DEFAULT-VALUE}).", defaultValue = "/dev/kvm")
    String kvmPath;

    @Option(names = {"-v", "--verbose"}, description = "Log what jvmm does; show stack traces on errors.")
    boolean verbose;

    @Option(names = "--rootfs", paramLabel = "DIR[,rw]", description = "Run COMMAND in the guest with host directory DIR"
            + " as its root file system (virtio-fs; read-only with writable overlays on /tmp, /run, /etc, /var and home;"
            + " rw: writable). jvmm makes the initramfs (its own init and the kernel's modules). The command's stdout and"
            + " stderr are jvmm's, its exit status jvmm's; without COMMAND, a shell on the console.")
    String rootfs;

    @Option(names = "--modules", paramLabel = "DIR", description = "With --rootfs: the kernel's /lib/modules/VERSION"
            + " directory (default: lib/modules/VERSION beside the kernel's directory, or /lib/modules/VERSION).")
    Path modules;

    @Option(names = "--user", description = "With --rootfs: run COMMAND as the calling user's uid and gid instead of root.")
    boolean asCaller;

    @Option(names = "--restore", paramLabel = "DIR", description = "Start from the snapshot in DIR (taken with the control"
            + " socket's snapshot request) instead of booting a KERNEL: memory mapped copy-on-write from DIR/memory, the"
            + " vCPUs, irqchip, clock and devices as they were; the VM's shape (--smp, --mem, --pit, ACPI) and its virtio devices"
            + " are the snapshot's, each disk's image given again with --disk, in the same order.")
    Path restore;

    @Parameters(index = "0", arity = "0..1", paramLabel = "KERNEL", description = "Kernel image: flat, multiboot, bzImage or ELF vmlinux.")
    Path kernel;

    @Parameters(index = "1..*", paramLabel = "COMMAND", description = "With --rootfs: the command to run and its arguments"
            + " (after --).")
    List<String> command = new ArrayList<>();

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }

    /** The VM the options describe. Reads nothing but the options (and the host's RAM size, to refuse more). */
    VmConfig config() {
        try {
            long memBytes = size.memBytes();
            if (memBytes < VmConfig.MIN_MEM) throw usage("--mem " + size.mem + " is too small: at least 1M is needed");
            if (memBytes % Layout.PAGE_SIZE != 0) {
                throw usage("--mem " + size.mem + " is not a whole number of " + Layout.PAGE_SIZE / 1024 + " KiB pages");
            }
            VmConfig.Builder b = VmConfig.builder().cpus(size.cpus).memBytes(memBytes).serialLog(serialLog)
                    .stdin(!noStdin).kvmPath(kvmPath).acpi(!noAcpi).pit(VmConfig.PitMode.parse(pit))
                    .cpuFeatures(CpuFeatures.parse(cpuFeatures)).onReboot(VmConfig.OnReboot.parse(onReboot));
            if (timeout != null) b.timeout(Units.parseDuration(timeout));
            if (expect != null) b.expect(compile("--expect", expect));
            for (String f : failOn) b.addFailOn(compile("--fail-on", f));
            for (String d : disks) b.addVirtio(VirtioSpec.Disk.parse(d));
            Set<String> taps = new HashSet<>();
            int users = 0;
            for (String n : nets) {
                if (VirtioSpec.UserNet.isUser(n)) {
                    b.addVirtio(VirtioSpec.UserNet.parse(n, users++).withPasst(passt));
                    continue;
                }
                VirtioSpec.Net net = VirtioSpec.Net.parse(n);
                if (!taps.add(net.tap())) throw new IllegalArgumentException("--net '" + n + "': tap device " + net.tap() + " is already used by another --net");
                b.addVirtio(net);
            }
            if (passt != null && users == 0) throw new IllegalArgumentException("--passt is for --net user, and there is none");
            if (vsock != null) b.addVirtio(VirtioSpec.Vsock.parse(vsock));
            List<VirtioSpec.Share> shareSpecs = new ArrayList<>();
            for (String sh : shares) shareSpecs.add(VirtioSpec.Share.parse(sh).withVirtiofsd(virtiofsd));
            VirtioSpec.Share.checkTagsUnique(shareSpecs);
            shareSpecs.forEach(b::addVirtio);
            this.shareSpecs = shareSpecs;
            if (rootfs != null) {
                rootfsRun = RootfsRun.parse(rootfs, modules, command, asCaller, shareSpecs);
                if (!initrds.isEmpty()) throw new IllegalArgumentException("--rootfs makes its own initramfs: --initrd cannot be given too");
                if (!command.isEmpty()) {
                    b.stdin(false); // the command's stdin, not the console's
                    // the kernel's console is not the command's output: to --serial-log, stderr with -v, else nowhere
                    if (serialLog == null) b.serialLog(Path.of(verbose ? "/dev/stderr" : "/dev/null"));
                }
                b.addVirtio(new VirtioSpec.CommandPorts(!noStdin && !command.isEmpty()));
            } else {
                if (!command.isEmpty()) throw new IllegalArgumentException("a COMMAND (" + command.getFirst() + ") needs --rootfs");
                if (modules != null || asCaller) throw new IllegalArgumentException((modules != null ? "--modules" : "--user") + " needs --rootfs");
            }
            if (rng) b.addVirtio(new VirtioSpec.Rng());
            switch (consoleKind.toLowerCase(Locale.ROOT)) {
                case "serial" -> { }
                case "virtio" -> b.addVirtio(new VirtioSpec.Console());
                default -> throw new IllegalArgumentException("unknown --console '" + consoleKind + "': use serial or virtio");
            }
            if (gdb != null) gdbAddress = GdbServer.Address.parse(gdb);
            else if (gdbWait) throw new IllegalArgumentException("--gdb-wait needs --gdb");
            VmConfig config = b.build();
            long hostMem = HostInfo.memTotal();
            if (config.memBytes() > hostMem) {
                throw new IllegalArgumentException("--mem " + size.mem + " is more than this host's " + Units.formatSize(hostMem) + " of RAM");
            }
            return config;
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
    }

    private static Pattern compile(String option, String regex) {
        try {
            return Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException(option + " '" + regex + "' is not a valid regular expression: " + e.getDescription());
        }
    }

    private LoadOptions loadOptions(VmConfig config, RootfsRun.Plan plan) {
        LoadOptions.BootProtocol protocol = switch (boot == null ? "" : boot.toLowerCase(Locale.ROOT)) {
            case "" -> LoadOptions.BootProtocol.DEFAULT;
            case "64" -> LoadOptions.BootProtocol.LONG64;
            case "pvh" -> LoadOptions.BootProtocol.PVH;
            default -> throw usage("unknown --boot '" + boot + "': use 64 or pvh");
        };
        List<String> words = new ArrayList<>();
        if (plan != null) words.add(plan.cmdline());
        if (!cmdline.isEmpty()) words.add(cmdline);
        if (!config.virtio().isEmpty()) words.add(VirtioMmioDevices.cmdlineDevices(config.virtio()));
        return new LoadOptions(config.memBytes(), String.join(" ", words), plan != null ? plan.initrds() : initrds, protocol,
                hostDecompress && !noHostDecompress, config.acpi() ? Layout.ACPI_RSDP : 0, noKernelCache ? null : KernelCache.inDefaultDirectory());
    }

    private KernelFormat forcedFormat() {
        if (format == null) return null;
        try {
            return KernelFormat.valueOf(format.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw usage("unknown --format '" + format + "': use " + String.join(", ",
                    Arrays.stream(KernelFormat.values()).map(f -> f.name().toLowerCase(Locale.ROOT)).toList()));
        }
    }

    @Override
    public Integer call() {
        Timeline timeline = Timeline.sinceProcessStart();
        timeline.mark(Timeline.Mark.COMMAND);
        Main.configureLogging(verbose);
        if (restore != null) return restoreRun(timeline);
        if (kernel == null) throw usage("Missing required parameter: 'KERNEL' (or --restore DIR)");
        VmConfig config = config();
        KernelFormat forced = forcedFormat();
        RootfsRun.Plan plan = null;
        if (rootfsRun != null) {
            try {
                plan = rootfsRun.plan(kernel, Path.of("").toAbsolutePath(), System.getenv("TERM"), virtiofsd, config.virtio());
            } catch (LoadException e) {
                return fail(ExitStatus.BAD_IMAGE, e.getMessage(), e);
            }
            timeline.mark(Timeline.Mark.INITRAMFS_READY);
            // the root share first: the guest's root device; then the others in command-line order
            List<VirtioSpec> devices = new ArrayList<>(List.of(plan.root()));
            devices.addAll(config.virtio());
            config = config.toBuilder().virtio(devices).build();
        }
        try (RootfsRun.Plan cleanup = plan) {
            return run(config, forced, plan, timeline);
        }
    }

    private int run(VmConfig config, KernelFormat forced, RootfsRun.Plan plan, Timeline timeline) {
        LoadOptions options = loadOptions(config, plan);
        ApiServer api = null;
        if (apiSocket != null) {
            try {
                api = ApiServer.start(apiSocket, ApiServer.runInfo(kernel, options.cmdline()));
            } catch (VmmException e) {
                return fail(e.exitStatus(), e.getMessage(), e);
            }
        }
        try {
            return run(config, forced, options, timeline, api);
        } finally {
            if (api != null) api.close();
        }
    }

    /** --gdb, parsed when the run starts (a usage error before anything is loaded). */
    private GdbServer.Address gdbAddress;

    private int run(VmConfig config, KernelFormat forced, LoadOptions options, Timeline timeline, ApiServer api) {
        // --timeout counts from the start of the jvmm process, as timeout(1) would: JVM start-up included
        long deadline = config.timeout() == null ? 0 : timeline.timeoutOrigin() + config.timeout().toNanos();
        RunGuard guard = RunGuard.current();
        if (config.timeout() != null) guard.deadline(deadline, config.timeout());
        {
            BootImage image;
            try {
                image = KernelLoader.load(kernel, forced, options);
            } catch (LoadException e) {
                return fail(ExitStatus.BAD_IMAGE, e.getMessage(), e);
            }
            timeline.mark(Timeline.Mark.KERNEL_LOADED);
            // isLinux first: for the usual test kernel (flat, multiboot) it answers from the format alone, and
            // reading /proc/cpuinfo cost 3-10 ms of start-up (measured 2026-12-03)
            if (!force && LinuxKernels.isLinux(kernel, image) && HostInfo.virtualization() == HostInfo.Virtualization.EMULATED) {
                return fail(ExitStatus.HOST_UNSUITABLE, kernel + " is a Linux kernel, and this host's /dev/kvm emulates guest"
                        + " code instead of running it (no VT-x/AMD-V): Linux would crawl for minutes and then stop on an"
                        + " instruction the emulator lacks. Use a host with hardware virtualization or scripts/nested-kvm"
                        + " (--force tries anyway)", null);
            }
            RunReport report;
            for (int boot = 1; ; boot++) {
                GdbStub stub = null;
                try (Vm vm = VmBuilder.build(config, image, timeline)) {
                    guard.attach(vm);
                    if (api != null) api.attach(vm);
                    if (gdbAddress != null) stub = GdbStub.start(vm, gdbAddress, gdbWait);
                    report = vm.run();
                    if (api != null) api.attach(null);
                    guard.attach(null);
                } catch (VmmException e) {
                    return fail(e.exitStatus(), e.getMessage(), e);
                } finally {
                    if (stub != null) stub.close();
                }
                if (!(report.stop().reset() && config.onReboot() == VmConfig.OnReboot.RESTART)) break;
                if (verbose) err.println("jvmm: " + report.stop().reason() + "; restarting (boot " + (boot + 1) + ")");
            }
            return finish(config, report);
        }
    }

    /** {@code --restore DIR}: the VM from a snapshot, with this command line's console, timeout, stats and control socket. */
    private int restoreRun(Timeline timeline) {
        if (kernel != null) throw usage("--restore takes no KERNEL: the snapshot holds the guest");
        if (rootfs != null || !initrds.isEmpty() || !nets.isEmpty() || !shares.isEmpty() || rng || vsock != null
                || !consoleKind.equalsIgnoreCase("serial") || !cmdline.isEmpty() || format != null || boot != null
                || gdb != null) {
            throw usage("--restore: the snapshot has the guest and its devices (only their disk images are given again, with --disk);"
                    + " --rootfs, --initrd, --net, --share, --vsock, --rng, --console, --cmdline, --format, --boot and --gdb cannot be given with it");
        }
        Map<String, byte[]> state;
        try {
            state = SnapshotFile.read(restore.resolve("state"));
        } catch (SnapshotFile.SnapshotException e) {
            return fail(ExitStatus.BAD_IMAGE, e.getMessage(), null);
        }
        VmConfig config;
        List<long[]> regions;
        try {
            RestoreConfig saved = RestoreConfig.decode(state.get(RestoreConfig.SECTION));
            regions = saved.regions();
            VmConfig given = config();
            List<VirtioSpec.Disk> givenDisks = new ArrayList<>();
            for (VirtioSpec v : given.virtio()) givenDisks.add((VirtioSpec.Disk) v); // the only devices --restore takes
            config = given.toBuilder().cpus(saved.cpus()).memBytes(saved.memBytes()).acpi(saved.acpi())
                    .pit(VmConfig.PitMode.parse(saved.pit()))
                    .onReboot(VmConfig.OnReboot.EXIT).virtio(VirtioSpec.forRestore(saved.devices(), givenDisks)).build();
        } catch (VmmException e) {
            return fail(e.exitStatus(), e.getMessage(), null);
        } catch (CommandLine.ParameterException e) {
            throw e;
        } catch (RuntimeException e) {
            return fail(ExitStatus.BAD_IMAGE, "snapshot " + restore + ": its " + RestoreConfig.SECTION + " section is malformed ("
                    + e.getMessage() + ")", e);
        }
        ApiServer api = null;
        if (apiSocket != null) {
            try {
                api = ApiServer.start(apiSocket, ApiServer.runInfo(null, "restored from " + restore.toAbsolutePath()));
            } catch (VmmException e) {
                return fail(e.exitStatus(), e.getMessage(), e);
            }
        }
        try {
            long deadline = config.timeout() == null ? 0 : timeline.timeoutOrigin() + config.timeout().toNanos();
            RunGuard guard = RunGuard.current();
            if (config.timeout() != null) guard.deadline(deadline, config.timeout());
            RunReport report;
            try (Vm vm = VmBuilder.restore(config, restore, state, regions, timeline)) {
                timeline.mark(Timeline.Mark.VM_CREATED);
                guard.attach(vm);
                if (api != null) api.attach(vm);
                report = vm.run();
                if (api != null) api.attach(null);
                guard.attach(null);
            } catch (VmmException e) {
                return fail(e.exitStatus(), e.getMessage(), e);
            }
            return finish(config, report);
        } finally {
            if (api != null) api.close();
        }
    }

    private int finish(VmConfig config, RunReport report) {
        report.timeline().mark(Timeline.Mark.EXIT);
        Stop stop = report.stop();
        int status = stop.exitStatus();
        // the guest stopped without the command's status: the init or the kernel failed
        boolean noCommandStatus = rootfsRun != null && stop.cause() != StopCause.COMMAND_EXITED && status == ExitStatus.OK;
        boolean expectUnmatched = !noCommandStatus && config.expect() != null && !stop.expectMatched() && status == ExitStatus.OK;
        if (noCommandStatus) status = RootfsInit.EXIT_SETUP_FAILED;
        if (expectUnmatched) status = ExitStatus.EXPECT_UNMATCHED;
        RunGuard guard = RunGuard.current();
        if (guard != null && !guard.reporting(status)) return status; // the watchdog is ending the process, with its line
        if (noCommandStatus) {
            err.println("jvmm: the guest stopped (" + stop.reason() + ") before the command's exit status came");
            err.flush();
            return status;
        }
        if (expectUnmatched) {
            err.println("jvmm: the guest stopped (" + stop.reason() + ") before its output matched --expect '" + expect + "'");
        }
        if (stop.worthReporting()) {
            err.println("jvmm: " + stop.reason());
            if (stop.detail() != null) err.println(stop.detail().indent(2).stripTrailing());
            if (stop.error() != null && verbose) stop.error().printStackTrace(err);
            else if (stop.error() != null) err.println("jvmm: run with -v for details");
        } else if (verbose) {
            err.println("jvmm: " + stop.reason());
        }
        if (stats) report.print(err);
        if (statsJson != null) {
            try {
                report.writeJson(statsJson);
            } catch (IOException e) {
                err.println("jvmm: cannot write --stats-json " + statsJson + ": " + e.getMessage());
                if (status == ExitStatus.OK) status = ExitStatus.OUTPUT_FAILED;
                if (guard != null) guard.reporting(status);
            }
        }
        err.flush();
        return status;
    }

    private int fail(int status, String message, Throwable cause) {
        err.println("jvmm: " + message);
        if (verbose && cause != null) cause.printStackTrace(err);
        err.flush();
        return status;
    }
}
