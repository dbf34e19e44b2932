package dev.jvmm.vmm;

import dev.jvmm.arch.x86.CpuSetup;
import dev.jvmm.arch.x86.Layout;
import dev.jvmm.arch.x86.acpi.AcpiConfig;
import dev.jvmm.arch.x86.acpi.AcpiTables;
import dev.jvmm.arch.x86.acpi.MpTable;
import dev.jvmm.device.Bus;
import dev.jvmm.device.legacy.DebugExit;
import dev.jvmm.arch.x86.CpuFeatures;
import dev.jvmm.device.BusDevice;
import dev.jvmm.device.legacy.AcpiPm;
import dev.jvmm.device.virtio.VirtioConsole;
import dev.jvmm.device.virtio.VirtioDevice;
import dev.jvmm.device.legacy.CmosRtc;
import dev.jvmm.device.legacy.I8042;
import dev.jvmm.device.legacy.I8254;
import dev.jvmm.device.legacy.SystemControlPortB;
import dev.jvmm.device.legacy.PortSink;
import dev.jvmm.device.legacy.Uart16550;
import dev.jvmm.kvm.Kvm;
import dev.jvmm.kvm.KvmUnavailableException;
import dev.jvmm.kvm.VcpuFd;
import dev.jvmm.kvm.VmFd;
import dev.jvmm.loader.BootImage;
import dev.jvmm.memory.Chunk;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.memory.RamRange;
import dev.jvmm.sys.KvmApi;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.Terminal;
import dev.jvmm.sys.Tun;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One virtual machine from creation to exit status: builds it from a {@link VmConfig} and a loaded
 * {@link BootImage}, starts a thread per vCPU, runs the event loop on the calling thread until a stop
 * request, then tears everything down in order (vCPUs, output, terminal) and returns the exit status.
 */
public final class Vm implements VcpuThread.Host {
    private static final Logger log = LoggerFactory.getLogger(Vm.class);

    static final int COM1_PORT = 0x3f8, COM1_IRQ = 4;
    static final int DEBUG_EXIT_PORT = 0xf4;
    static final int MAX_XAPIC_CPUS = 255;
    /** The longest a stop may take to get every vCPU out of KVM_RUN before jvmm gives up on them. */
    static final long JOIN_TIMEOUT_MS = 2000;

    /**
     * The stop that ended the run: the first one requested wins.
     * @param reset          the guest reset the machine (a reboot), as opposed to powering off or failing
     * @param expectMatched  the console output matched --expect
     */
    public record Stop(int exitStatus, String reason, String detail, boolean reset, boolean expectMatched) { }

    private final VmConfig config;
    private final PrintStream err;
    private final AtomicReference<Stop> stop = new AtomicReference<>();
    private volatile boolean stopping;
    private volatile long stopRequestedAt;
    private volatile long vcpusStoppedAt;
    private volatile EventLoop loop;

    public Vm(VmConfig config, PrintStream err) {
        this.config = config;
        this.err = err;
    }

    @Override
    public boolean stopping() {
        return stopping;
    }

    @Override
    public void stop(int exitStatus, String reason, String detail) {
        end(new Stop(exitStatus, reason, detail, false, false));
    }

    @Override
    public void reset(String reason) {
        end(new Stop(ExitStatus.OK, reason, null, true, false));
    }

    private void end(Stop s) {
        if (stop.compareAndSet(null, s)) {
            stopRequestedAt = System.nanoTime();
            stopping = true;
            EventLoop l = loop;
            if (l != null) l.wake();
        }
    }

    public Stop stopReason() {
        return stop.get();
    }

    /** From the stop request until every vCPU thread had left KVM_RUN and ended (after the run). */
    public java.time.Duration stopLatency() {
        return java.time.Duration.ofNanos(vcpusStoppedAt - stopRequestedAt);
    }

    /** The RAM ranges of a VM with {@code memBytes} of memory: below the 32-bit MMIO hole, then above 4 GiB. */
    public static List<RamRange> ramRanges(long memBytes) {
        List<RamRange> ranges = new ArrayList<>();
        ranges.add(new RamRange(0, Layout.lowRamSize(memBytes)));
        long high = Layout.highRamSize(memBytes);
        if (high > 0) ranges.add(new RamRange(Layout.FOUR_GIB, high));
        return ranges;
    }

    /** Builds and runs the VM; returns the process exit status. */
    public int run(BootImage image, RunReport report) throws VmmException {
        long started = System.nanoTime();
        try (Kvm kvm = openKvm()) {
            checkHost(kvm);
            try (VmFd vm = kvm.createVm(); GuestMemory memory = allocateMemory(); EventLoop loop = new EventLoop()) {
                this.loop = loop;
                setUpVm(vm, memory);
                CpuSetup.writeFirmwareTables(memory, image.entry()); // first: the image may overwrite any of it
                writePlatformTables(memory);
                loadImage(memory, image);
                return runVm(kvm, vm, memory, image, report, started);
            }
        }
    }

    private Kvm openKvm() throws VmmException {
        try {
            return Kvm.open(config.kvmPath());
        } catch (KvmUnavailableException e) {
            throw new VmmException(ExitStatus.HOST_UNSUITABLE, e.getMessage());
        }
    }

    private void checkHost(Kvm kvm) throws VmmException {
        List<String> missing = kvm.missingCapabilities();
        if (!missing.isEmpty()) {
            throw new VmmException(ExitStatus.HOST_UNSUITABLE, kvm.path() + " lacks capabilities jvmm needs: " + String.join(", ", missing));
        }
        int max = kvm.maxVcpus();
        if (config.cpus() > max) {
            throw new VmmException(ExitStatus.USAGE, "--smp " + config.cpus() + ": this host allows at most " + max + " vCPUs per VM");
        }
        if (config.cpus() > MAX_XAPIC_CPUS) {
            throw new VmmException(ExitStatus.USAGE, "--smp " + config.cpus() + ": jvmm supports at most " + MAX_XAPIC_CPUS
                    + " vCPUs (8-bit APIC ids in the MP and ACPI tables)");
        }
    }

    private GuestMemory allocateMemory() throws VmmException {
        try {
            return GuestMemory.allocate(ramRanges(config.memBytes()));
        } catch (IllegalStateException e) {
            throw new VmmException(ExitStatus.HOST_UNSUITABLE, e.getMessage());
        }
    }

    private void setUpVm(VmFd vm, GuestMemory memory) {
        vm.setTssAddr(Layout.TSS_ADDR);
        vm.setIdentityMapAddr(Layout.IDENTITY_MAP_ADDR);
        vm.createIrqchip();
        vm.setPcGsiRouting();
        if (config.pit() == VmConfig.PitMode.KERNEL) vm.createPit2(KvmApi.KVM_PIT_SPEAKER_DUMMY);
        int slot = 0;
        for (GuestMemory.Region r : memory.regions()) vm.setUserMemoryRegion(slot++, r.gpa(), r.size(), r.host());
    }

    /** The MP table always (it is how kernels without ACPI find the CPUs), ACPI tables unless --no-acpi. */
    private void writePlatformTables(GuestMemory memory) {
        List<Chunk> chunks = new ArrayList<>(MpTable.build(config.cpus()));
        if (config.acpi()) {
            chunks.addAll(AcpiTables.build(new AcpiConfig(config.cpus(), VirtioBackplane.layout(config.virtio()))).chunks());
        }
        for (Chunk c : chunks) memory.write(c.guestAddress(), c.data());
    }

    private static void loadImage(GuestMemory memory, BootImage image) throws VmmException {
        for (Chunk c : image.chunks()) {
            if (!memory.contains(c.guestAddress(), c.data().length + c.zeroFill())) {
                throw new VmmException(ExitStatus.BAD_IMAGE, String.format("%s [0x%x, 0x%x) does not fit in guest RAM",
                        c.what(), c.guestAddress(), c.end()));
            }
            memory.write(c.guestAddress(), c.data());
            if (c.zeroFill() > 0) memory.zero(c.guestAddress() + c.data().length, c.zeroFill());
        }
    }

    private int runVm(Kvm kvm, VmFd vm, GuestMemory memory, BootImage image, RunReport report, long started)
            throws VmmException {
        OutputStream consoleStream;
        try {
            consoleStream = config.serialLog() != null ? Files.newOutputStream(config.serialLog())
                    : new FileOutputStream(FileDescriptor.out);
        } catch (IOException e) {
            throw new VmmException(ExitStatus.USAGE, "cannot open --serial-log " + config.serialLog() + ": " + e.getMessage());
        }
        ConsoleOutput console = new ConsoleOutput(consoleStream, loop);
        List<VirtioDevice> virtioDevices;
        try {
            virtioDevices = VirtioBackplane.open(config.virtio(), (b, off, len) -> {
                for (int i = 0; i < len; i++) console.accept(b[off + i] & 0xff);
            });
        } catch (Tun.TapException e) {
            throw new VmmException(ExitStatus.HOST_UNSUITABLE, e.getMessage());
        } catch (IOException e) {
            throw new VmmException(ExitStatus.BAD_IMAGE, e.getMessage());
        }
        ExpectMatcher expect = null;
        if (config.expect() != null) {
            expect = new ExpectMatcher(config.expect(), () -> end(expectStop(null)));
            console.watch(expect);
        }
        Bus pio = new Bus("pio", 0x10000);
        Bus mmio = new Bus("mmio", Long.MAX_VALUE);
        Uart16550 com1 = new Uart16550(high -> vm.irqLine(COM1_IRQ, high), console);
        pio.register("com1", COM1_PORT, 8, com1);
        pio.register("isa-debug-exit", DEBUG_EXIT_PORT, 1, new DebugExit((s, why) -> stop(s, why, null)));
        I8042 i8042 = new I8042((s, why) -> reset(why));
        pio.register("i8042", 0x60, 1, i8042);
        pio.register("i8042", 0x64, 1, new BusDevice() { // the controller's second port is 4 registers on
            @Override
            public long read(long offset, int size) {
                return i8042.read(offset + 4, size);
            }

            @Override
            public void write(long offset, int size, long value) {
                i8042.write(offset + 4, size, value);
            }
        });
        pio.register("rtc", CmosRtc.BASE_PORT, CmosRtc.LENGTH, new CmosRtc(config.memBytes(), Clock.systemUTC()));
        if (config.acpi()) {
            pio.register("acpi-pm", AcpiPm.BASE_PORT, AcpiPm.LENGTH,
                    new AcpiPm((s, why) -> stop(s, why, null), () -> reset("the guest reset the machine (ACPI)")));
        }
        if (config.pit() == VmConfig.PitMode.USER) startUserPit(pio, vm);
        pio.register("post-code", 0x80, 1, new PortSink());

        VirtioBackplane virtio = new VirtioBackplane(config.virtio(), virtioDevices, vm, memory, mmio, loop);
        boolean tty = config.stdin() && config.serialLog() == null && LibC.isatty(0);
        VirtioConsole hvc = virtio.console();
        ConsoleInput input = new ConsoleInput(0, loop, hvc != null ? hvc::offer : com1::receive, tty,
                (s, why) -> stop(s, why, null));
        if (hvc != null) hvc.onReceiveBuffers(input::spaceAvailable);
        else com1.setRxSpaceListener(input::spaceAvailable);

        List<VcpuThread> vcpus = new ArrayList<>();
        List<VcpuFd> fds = new ArrayList<>();
        Terminal terminal = null;
        Thread restoreHook = null;
        SignalStops signals = null;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cpuid = CpuSetup.withFeatures(kvm.supportedCpuid(arena),
                    CpuFeatures.parse(config.cpuFeatures()), arena);
            for (int i = 0; i < config.cpus(); i++) {
                VcpuFd fd = vm.createVcpu(i);
                fds.add(fd);
                fd.setCpuid2(CpuSetup.cpuidFor(cpuid, arena, i, config.cpus()));
                CpuSetup.applyPlatformState(fd);
                if (i == 0) CpuSetup.applyEntry(fd, image.entry());
                vcpus.add(new VcpuThread(fd, pio, mmio, memory, this));
            }
            if (tty) {
                terminal = Terminal.makeRaw(0);
                Terminal t = terminal;
                restoreHook = new Thread(t::restore, "restore terminal");
                Runtime.getRuntime().addShutdownHook(restoreHook);
            }
            if (config.stdin()) input.start();
            signals = new SignalStops(this);
            if (config.timeout() != null) {
                long delay = config.deadline() != 0 ? config.deadline() - System.nanoTime() : config.timeout().toNanos();
                loop.schedule(Math.max(0, delay), () -> stop(ExitStatus.TIMEOUT,
                        "timed out after " + RunReport.duration(config.timeout()), null));
            }
            startHaltWatch(vcpus);
            log.debug("starting {} vCPU(s), {} MiB, {} image", config.cpus(), config.memBytes() >> 20, image.format());
            for (VcpuThread v : vcpus) v.start();
            loop.run(this::stopping);
            stopVcpus(vcpus);
            vcpusStoppedAt = System.nanoTime();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stop(ExitStatus.VMM_ERROR, "interrupted", null);
        } catch (RuntimeException e) {
            stop(ExitStatus.VMM_ERROR, e.getMessage(), null);
            stopVcpus(vcpus);
            throw e;
        } finally {
            if (signals != null) signals.close();
            try {
                console.flush();
            } catch (RuntimeException e) {
                log.warn("{}", e.getMessage());
            }
            if (terminal != null) {
                terminal.restore();
                try {
                    Runtime.getRuntime().removeShutdownHook(restoreHook);
                } catch (IllegalStateException e) {
                    // already shutting down
                }
            }
            if (config.serialLog() != null) {
                try {
                    consoleStream.close();
                } catch (IOException e) {
                    log.warn("closing the serial log: {}", e.getMessage());
                }
            }
            for (int i = 0; i < fds.size(); i++) {
                if (i >= vcpus.size() || vcpus.get(i).finished()) fds.get(i).close();
            }
            if (vcpus.stream().allMatch(VcpuThread::finished)) virtio.close(); // else a vCPU may still touch a disk
        }
        Stop s = stop.get();
        if (expect != null && expect.matched() && !s.expectMatched()) {
            // the match came in the output flushed at the very end: it still counts
            s = expectStop(s.reason());
        }
        report.finish(s, vcpus, pio, mmio, virtio.counters(), console.bytesWritten(), System.nanoTime() - started);
        return s.exitStatus();
    }

    /** How often the event loop asks the vCPUs whether the guest has halted for good. */
    static final long HALT_PROBE_NANOS = 1_000_000_000L;

    /**
     * A guest that halts every vCPU with interrupts off (Linux's "System halted", a poweroff that found
     * no way to power off, a test kernel's final {@code cli; hlt}) never exits to jvmm again: the
     * in-kernel irqchip handles HLT. So the event loop probes the vCPUs once a second, and two probes
     * in a row that find them all halted (or never started) end the run with status 0.
     */
    private void startHaltWatch(List<VcpuThread> vcpus) {
        long[] seen = new long[vcpus.size()];
        int[] deadRounds = {0};
        Runnable[] tick = new Runnable[1];
        tick[0] = () -> {
            boolean allAnswered = true, allDead = true;
            for (int i = 0; i < vcpus.size(); i++) {
                VcpuThread v = vcpus.get(i);
                if (v.probeAnswers() == seen[i]) allAnswered = false;
                seen[i] = v.probeAnswers();
                allDead &= v.dead();
            }
            deadRounds[0] = allAnswered && allDead ? deadRounds[0] + 1 : 0;
            if (deadRounds[0] >= 2) {
                stop(ExitStatus.OK, "the guest halted: every vCPU stopped with interrupts off", null);
                return;
            }
            for (VcpuThread v : vcpus) v.probe();
            loop.schedule(HALT_PROBE_NANOS, tick[0]);
        };
        loop.schedule(HALT_PROBE_NANOS, tick[0]);
    }

    /** --pit=user: jvmm's i8254 on ports 0x40-0x43 and 0x61, its channel 0 driven by event-loop timers. */
    private void startUserPit(Bus pio, VmFd vm) {
        I8254 pit = new I8254(System::nanoTime, high -> vm.irqLine(I8254.IRQ, high));
        pio.register("pit", I8254.BASE_PORT, I8254.LENGTH, pit);
        pio.register("port61", SystemControlPortB.PORT, SystemControlPortB.LENGTH, new SystemControlPortB(pit));
        EventLoop.Timer[] timer = new EventLoop.Timer[1];
        Runnable[] rearm = new Runnable[1];
        rearm[0] = () -> {
            if (timer[0] != null) timer[0].cancel();
            timer[0] = null;
            long deadline = pit.nextDeadlineNanos();
            if (deadline != Long.MAX_VALUE) {
                timer[0] = loop.schedule(Math.max(0, deadline - System.nanoTime()), () -> {
                    pit.advance();
                    rearm[0].run();
                });
            }
        };
        pit.setDeadlineListener(() -> loop.execute(rearm[0]));
        rearm[0].run();
    }

    private Stop expectStop(String then) {
        return new Stop(ExitStatus.OK, "the serial output matched --expect '" + config.expect().pattern() + "'"
                + (then == null ? "" : " (then: " + then + ")"), null, false, true);
    }

    /** Kicks every vCPU out of KVM_RUN until all threads have ended (or the join timeout passes). */
    private void stopVcpus(List<VcpuThread> vcpus) {
        stopping = true;
        long deadline = System.nanoTime() + JOIN_TIMEOUT_MS * 1_000_000;
        for (VcpuThread v : vcpus) {
            while (v.thread().isAlive() && System.nanoTime() < deadline) {
                v.kick();
                try {
                    v.thread().join(5);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            if (v.thread().isAlive()) log.warn("{} did not leave KVM_RUN within {} ms", v.thread().getName(), JOIN_TIMEOUT_MS);
        }
    }
}
