package dev.jvmm.vmm;

import dev.jvmm.arch.x86.CpuSetup;
import dev.jvmm.arch.x86.Layout;
import dev.jvmm.arch.x86.acpi.AcpiConfig;
import dev.jvmm.arch.x86.acpi.AcpiTables;
import dev.jvmm.arch.x86.acpi.MpTable;
import dev.jvmm.device.Bus;
import dev.jvmm.device.ByteSink;
import dev.jvmm.device.ConsoleEndpoint;
import dev.jvmm.device.virtio.VirtioDevice;
import dev.jvmm.event.EventLoop;
import dev.jvmm.host.ConsoleOutput;
import dev.jvmm.host.ExpectMatcher;
import dev.jvmm.kvm.Kvm;
import dev.jvmm.kvm.KvmUnavailableException;
import dev.jvmm.kvm.VcpuFd;
import dev.jvmm.kvm.VmFd;
import dev.jvmm.loader.BootImage;
import dev.jvmm.memory.Chunk;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.KvmApi;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.nio.file.Path;
import dev.jvmm.memory.RamRange;

/**
 * Makes a {@link Vm} from a {@link VmConfig} and a loaded {@link BootImage}: the KVM VM and its
 * memory, the image and the firmware and platform tables in it, the console, the legacy and virtio
 * devices on their buses, and the vCPUs in their entry state. Nothing runs yet; a failure on the way
 * releases what was made and says why with the exit status it maps to.
 */
public final class VmBuilder {
    private VmBuilder() { }

    /** Linux's panic() line on the console ("Kernel panic - not syncing: ..."). */
    static final java.util.regex.Pattern KERNEL_PANIC = java.util.regex.Pattern.compile("Kernel panic - not syncing");

    /** The pieces of a VM as they are made, so a failure halfway can release them in order. */
    static final class Parts {
        Kvm kvm;
        VmFd vmFd;
        GuestMemory memory;
        EventLoop loop;
        OutputStream consoleStream;
        ConsoleOutput console;
        List<VirtioDevice> devices = List.of();
        VirtioMmioDevices virtio;
        final List<VcpuFd> vcpuFds = new ArrayList<>();
        Bus pio;
        Bus mmio;
        LegacyDevices legacy;
        ConsoleEndpoint consoleInput;
        ExpectMatcher expect;
        ExpectMatcher panic;
        Timeline timeline;
    }

    public static Vm build(VmConfig config, BootImage image) throws VmmException {
        return build(config, image, Timeline.sinceProcessStart());
    }

    /** As {@link #build(VmConfig, BootImage)}, marking the run's milestones on {@code timeline}. */
    public static Vm build(VmConfig config, BootImage image, Timeline timeline) throws VmmException {
        // Made before the first system call, which waits for the FFM link of LibC's system call on its
        // own thread: the tables need none, and KvmApi's layouts are what every KVM call below uses first.
        List<Chunk> platform = platformTables(config);
        KvmApi.KVM_REGS.byteSize();
        return assemble(config, timeline, (p, vm) -> {
            p.vmFd = p.kvm.createVm();
            p.memory = allocateMemory(config);
            MemorySlots.registerWhile(p.vmFd, p.memory, () -> {
                p.loop = new EventLoop();
                setUpIrqchip(p.vmFd, config);
                CpuSetup.writeFirmwareTables(p.memory, image.entry()); // first: the image may overwrite any of it
                for (Chunk c : platform) p.memory.write(c.guestAddress(), c.data());
                loadImage(p.memory, image);
                addLegacyDevices(p, config, vm);
                addVirtioDevices(p, config, vm, timeline);
                createVcpus(p, config, image);
            });
            timeline.mark(Timeline.Mark.VM_CREATED);
            return vm;
        });
    }

    /**
     * Guest RAM's KVM memory slots, registered on a thread of their own while the rest of the VM is
     * made. {@code KVM_SET_USER_MEMORY_REGION} spends 3.5-11 ms of a boot's start-up asleep in the
     * kernel (waiting out an SRCU grace period) for half a millisecond of CPU (measured 2026-12-03 on
     * this host, one slot); the firmware, tables, image, devices and vCPUs need no slot to be made,
     * and KVM takes ioctls on one VM from several threads. {@link #registerWhile} waits for it, before any
     * vCPU runs.
     */
    private static final class MemorySlots implements Runnable {
        /** Steps of making a VM that need no memory slot. */
        @FunctionalInterface
        interface Steps {
            void run() throws VmmException;
        }

        private final VmFd vm;
        private final GuestMemory memory;
        private final Thread thread;
        private volatile Throwable failure;

        private MemorySlots(VmFd vm, GuestMemory memory) {
            this.vm = vm;
            this.memory = memory;
            this.thread = Thread.ofPlatform().name("jvmm memory slots").daemon(true).unstarted(this);
        }

        /**
         * Registers {@code memory}'s slots on {@code vm} while {@code steps} run on this thread, and
         * returns once both are done. A failure of the steps is thrown as it was, after the slots'
         * thread ended (nothing may still be registering RAM that the failure's clean-up releases);
         * otherwise a failure to register, as it was (an Error included).
         */
        static void registerWhile(VmFd vm, GuestMemory memory, Steps steps) throws VmmException {
            MemorySlots s = new MemorySlots(vm, memory);
            s.thread.start();
            try {
                steps.run();
            } finally {
                s.await();
            }
            // instanceof, not a pattern switch: that would spin a class at run time, on start-up's path
            Throwable t = s.failure;
            if (t instanceof RuntimeException e) throw e;
            if (t instanceof Error e) throw e;
            if (t != null) throw new IllegalStateException("registering guest memory failed", t);
        }

        @Override
        public void run() {
            try {
                registerMemory(vm, memory);
            } catch (Throwable t) {
                failure = t;
            }
        }

        /** Waits for the registering thread to end, whatever it did. */
        void await() {
            boolean interrupted = false;
            while (true) {
                try {
                    thread.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true; // the slots must be in place (or failed) before anything goes on
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /** Makes the virtio devices of {@code config} (opening their host sides) and wires them into slots. */
    private static void addVirtioDevices(Parts p, VmConfig config, Vm vm, Timeline timeline) throws VmmException {
        p.devices = VirtioMmioDevices.create(config.virtio(), new VirtioSpec.Context() {
            @Override
            public ByteSink console() {
                return p.console;
            }

            @Override
            public void consoleInput(ConsoleEndpoint endpoint) {
                p.consoleInput = endpoint;
            }

            @Override
            public EventLoop loop() {
                return p.loop;
            }

            @Override
            public void stop(Stop s) {
                vm.stop(s);
            }

            @Override
            public boolean stopping() {
                return vm.stopping();
            }

            @Override
            public void ioPort(String name, int port, int length, dev.jvmm.device.BusDevice device) {
                p.pio.register(name, port, length, device);
            }

            @Override
            public Timeline timeline() {
                return timeline;
            }
        });
        p.virtio = new VirtioMmioDevices(config.virtio(), p.devices, p.vmFd, p.memory, p.mmio, p.loop,
                why -> vm.stop(new Stop(StopCause.BACKEND_FAILED, ExitStatus.HOST_UNSUITABLE, why)));
    }

    /**
     * A VM from the snapshot in {@code dir} ({@code state} is its checked state file): guest RAM
     * mapped copy-on-write from {@code dir/memory}, the in-kernel irqchip, PIT and clock, each vCPU's
     * state and each device model's state set back, so the guest continues where it was paused. The
     * VM's shape (vCPUs, RAM, ACPI, PIT) is {@code config}'s, which the caller took from the snapshot.
     * @throws VmmException a one-line refusal: another host's CPU features, memory that does not
     *     match, a state KVM or a device model will not take
     */
    public static Vm restore(VmConfig config, Path dir, Map<String, byte[]> state, List<long[]> regions, Timeline timeline)
            throws VmmException {
        long t0 = System.nanoTime();
        return assemble(config, timeline, (p, vm) -> {
            try (Arena arena = Arena.ofConfined()) {
                byte[] here = p.kvm.supportedCpuid(arena).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
                String diff = SnapshotRestore.cpuidDifference(state.get("host.supported_cpuid"), here);
                if (diff != null) {
                    throw new VmmException(ExitStatus.HOST_UNSUITABLE, "snapshot " + dir + " was taken on a host whose CPU features"
                            + " (KVM_GET_SUPPORTED_CPUID) differ from this host's (" + diff + "): it cannot be restored here");
                }
            }
            List<RamRange> expected = Layout.ramRanges(config.memBytes());
            long total = 0;
            for (long[] r : regions) total = Math.max(total, r[2] + r[1]);
            boolean same = expected.size() == regions.size();
            for (int i = 0; same && i < expected.size(); i++) {
                same = expected.get(i).start() == regions.get(i)[0] && expected.get(i).size() == regions.get(i)[1];
            }
            long fileSize;
            try {
                fileSize = Files.size(dir.resolve("memory"));
            } catch (IOException e) {
                throw new VmmException(ExitStatus.BAD_IMAGE, "snapshot " + dir + ": cannot read its memory file: " + e.getMessage());
            }
            if (!same || fileSize != total) {
                throw new VmmException(ExitStatus.BAD_IMAGE, "snapshot " + dir + ": its memory file (" + fileSize + " bytes) does not match"
                        + " its state's memory layout (" + total + " bytes)");
            }
            p.vmFd = p.kvm.createVm();
            try {
                p.memory = GuestMemory.mapPrivate(dir.resolve("memory"), regions);
            } catch (IllegalStateException e) {
                throw new VmmException(ExitStatus.BAD_IMAGE, "snapshot " + dir + ": " + e.getMessage());
            }
            MemorySlots.registerWhile(p.vmFd, p.memory, () -> {
                p.loop = new EventLoop();
                setUpIrqchip(p.vmFd, config);
                addLegacyDevices(p, config, vm);
                addVirtioDevices(p, config, vm, timeline);
            });
            try { // after the slots: vCPU state names guest addresses (kvmclock, steal time) KVM looks up in them
                SnapshotRestore.apply(p, config, state);
            } catch (IllegalArgumentException | dev.jvmm.kvm.KvmException e) {
                throw new VmmException(ExitStatus.BAD_IMAGE, "snapshot " + dir + " cannot be restored: " + e.getMessage());
            }
            p.virtio.notifyAllQueues();
            vm.restoredIn(System.nanoTime() - t0);
            return vm;
        });
    }

    /** What {@link #assemble} does to make a VM, on its parts, once KVM is open and the host checked. */
    @FunctionalInterface
    private interface Assembly {
        Vm assemble(Parts p, Vm vm) throws VmmException;
    }

    /** A VM whose KVM is open and host checked, then made by {@code steps}; closed again if any step fails. */
    private static Vm assemble(VmConfig config, Timeline timeline, Assembly steps) throws VmmException {
        Parts p = new Parts();
        p.timeline = timeline;
        Vm vm = new Vm(config, p);
        try {
            p.kvm = openKvm(config);
            checkHost(p.kvm, config);
            return steps.assemble(p, vm);
        } catch (VmmException | RuntimeException | Error e) {
            vm.close();
            throw e;
        }
    }

    /** The console, both buses, and the legacy PC devices on the port bus; the console's input goes to COM1. */
    private static void addLegacyDevices(Parts p, VmConfig config, Vm vm) throws VmmException {
        openConsole(p, config, vm);
        p.pio = new Bus("pio", 0x10000);
        p.mmio = new Bus("mmio", Long.MAX_VALUE);
        p.legacy = new LegacyDevices(p.pio, gsi -> high -> p.vmFd.irqLine(gsi, high), p.console, vm::stop, config, p.loop);
        p.consoleInput = p.legacy.com1();
    }

    private static Kvm openKvm(VmConfig config) throws VmmException {
        try {
            return Kvm.open(config.kvmPath());
        } catch (KvmUnavailableException e) {
            throw new VmmException(ExitStatus.HOST_UNSUITABLE, e.getMessage());
        }
    }

    private static void checkHost(Kvm kvm, VmConfig config) throws VmmException {
        List<String> missing = kvm.missingCapabilities();
        if (!missing.isEmpty()) {
            throw new VmmException(ExitStatus.HOST_UNSUITABLE, kvm.path() + " lacks capabilities jvmm needs: " + String.join(", ", missing));
        }
        int max = kvm.maxVcpus();
        if (config.cpus() > max) {
            throw new VmmException(ExitStatus.USAGE, "--smp " + config.cpus() + ": this host allows at most " + max + " vCPUs per VM");
        }
    }

    /** Anonymous memory, or shared memory (a memfd) when a device's back end maps guest RAM too. */
    private static GuestMemory allocateMemory(VmConfig config) throws VmmException {
        try {
            if (config.virtio().stream().anyMatch(VirtioSpec::needsSharedMemory)) {
                return GuestMemory.allocateShared(Layout.ramRanges(config.memBytes()));
            }
            return GuestMemory.allocate(Layout.ramRanges(config.memBytes()));
        } catch (IllegalStateException e) {
            throw new VmmException(ExitStatus.HOST_UNSUITABLE, e.getMessage());
        }
    }

    /** The TSS and identity-map pages, the in-kernel irqchip with the PC's GSI routing, and the PIT unless --pit user. */
    private static void setUpIrqchip(VmFd vm, VmConfig config) {
        vm.setTssAddr(Layout.TSS_ADDR);
        vm.setIdentityMapAddr(Layout.IDENTITY_MAP_ADDR);
        vm.createIrqchip();
        vm.setPcGsiRouting();
        if (config.pit() == VmConfig.PitMode.KERNEL) vm.createPit2(KvmApi.KVM_PIT_SPEAKER_DUMMY);
    }

    /** One KVM memory slot per RAM region, numbered from 0. */
    private static void registerMemory(VmFd vm, GuestMemory memory) {
        int slot = 0;
        for (GuestMemory.Region r : memory.regions()) vm.setUserMemoryRegion(slot++, r.gpa(), r.size(), r.host());
    }

    /** The MP table always (it is how kernels without ACPI find the CPUs), ACPI tables unless --no-acpi. */
    private static List<Chunk> platformTables(VmConfig config) {
        List<Chunk> chunks = new ArrayList<>(MpTable.build(config.cpus()));
        if (config.acpi()) {
            chunks.addAll(AcpiTables.build(new AcpiConfig(config.cpus(), VirtioMmioDevices.layout(config.virtio()))).chunks());
        }
        return chunks;
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

    /** The console's output: stdout, or --serial-log; a failed write ends the run (status {@link ExitStatus#OUTPUT_FAILED}). */
    private static void openConsole(Parts p, VmConfig config, Vm vm) throws VmmException {
        String destination;
        try {
            if (config.serialLog() != null) {
                p.consoleStream = Files.newOutputStream(config.serialLog());
                destination = "--serial-log " + config.serialLog();
            } else {
                p.consoleStream = new FileOutputStream(FileDescriptor.out);
                destination = "stdout";
            }
        } catch (IOException e) {
            throw new VmmException(ExitStatus.USAGE, "cannot open --serial-log " + config.serialLog() + ": " + e.getMessage());
        }
        p.console = new ConsoleOutput(p.consoleStream, destination,
                why -> vm.stop(new Stop(StopCause.OUTPUT_FAILED, ExitStatus.OUTPUT_FAILED, why)));
        if (config.expect() != null) {
            p.expect = new ExpectMatcher(config.expect(), () -> vm.stop(Vm.expectStop(config, null)));
            p.console.watch(p.expect::accept);
        }
        // A kernel that panics is never a success, whatever it does next (panic=-1 reboots): the
        // run ends with its own status, a moment later so the rest of the panic report is written too.
        p.panic = new ExpectMatcher(KERNEL_PANIC, true, line -> vm.guestFailed(
                new Stop(StopCause.GUEST_PANIC, ExitStatus.GUEST_PANIC, "the guest kernel panicked: " + line.strip())));
        p.console.watch(p.panic::accept);
        for (java.util.regex.Pattern f : config.failOn()) {
            ExpectMatcher m = new ExpectMatcher(f, true, line -> vm.guestFailed(new Stop(StopCause.FAIL_ON, ExitStatus.FAIL_ON_MATCHED,
                    "the console output matched --fail-on '" + f.pattern() + "': " + line.strip())));
            p.console.watch(m::accept);
        }
    }

    private static void createVcpus(Parts p, VmConfig config, BootImage image) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cpuid = CpuSetup.withFeatures(p.kvm.supportedCpuid(arena), config.cpuFeatures(), arena);
            for (int i = 0; i < config.cpus(); i++) {
                VcpuFd fd = p.vmFd.createVcpu(i);
                p.vcpuFds.add(fd);
                fd.call(KvmApi.KVM_SET_CPUID2, CpuSetup.cpuidFor(cpuid, arena, i, config.cpus()));
                CpuSetup.applyPlatformState(fd);
                if (i == 0) CpuSetup.applyEntry(fd, image.entry());
            }
        }
    }
}
