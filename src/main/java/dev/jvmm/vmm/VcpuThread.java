package dev.jvmm.vmm;

import dev.jvmm.arch.x86.CpuSetup;
import dev.jvmm.device.Bus;
import dev.jvmm.kvm.KvmRun;
import dev.jvmm.kvm.VcpuFd;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.Errno;
import dev.jvmm.sys.KvmApi;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.Signals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HexFormat;
import java.util.concurrent.CountDownLatch;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One platform thread per vCPU, named "CPU n/KVM", looping on KVM_RUN. Port and MMIO exits are served
 * here, synchronously, through the buses ({@link IoExits}). Another thread stops it with {@link #kick()}:
 * a SIGURG that the thread blocks everywhere except inside KVM_RUN.
 */
public final class VcpuThread implements Runnable {
    /** The VM's stop protocol, as the run loop sees it. */
    public interface RunControl {
        boolean stopping();

        /** The run must end; the first stop requested wins. */
        void stop(Stop stop);

        /** Whether the VM asks its vCPUs to leave KVM_RUN and park (a pause). */
        default boolean pauseRequested() {
            return false;
        }

        /** Called by a vCPU thread out of KVM_RUN: returns when the pause is over or the run stops. */
        default void park(int vcpu) { }

        /** A KVM_EXIT_DEBUG on this vCPU's thread: whether a debugger took it (else the run fails). */
        default boolean debugExit(VcpuFd vcpu, KvmRun run) {
            return false;
        }
    }

    private static final long REGS_RFLAGS = KvmApi.offset(KvmApi.KVM_REGS, "rflags");
    private static final long RFLAGS_IF = 1 << 9;

    private final VcpuFd vcpu;
    private final GuestMemory memory;
    private final RunControl host;
    private final VcpuStats stats = new VcpuStats();
    private final IoExits io;
    private final CountDownLatch ready = new CountDownLatch(1);
    private final Thread thread;
    private volatile long tid;
    /** Set by the VM's halt probe; the vCPU answers at its next exit from KVM_RUN (the probe kicks it). */
    private volatile boolean probeRequested;
    /** The last probe's answer: halted (or never started) with interrupts off, so only INIT/NMI could wake it. */
    private volatile boolean dead;
    private volatile long probeAnswers;
    private volatile boolean finished;
    private volatile long readyAt;

    public VcpuThread(VcpuFd vcpu, Bus pio, Bus mmio, GuestMemory memory, RunControl host) {
        this.vcpu = vcpu;
        this.memory = memory;
        this.host = host;
        this.io = new IoExits(pio, mmio, stats);
        this.thread = Thread.ofPlatform().name("CPU " + vcpu.id() + "/KVM").daemon(true).unstarted(this);
    }

    public void start() throws InterruptedException {
        thread.start();
        ready.await();
    }

    public Thread thread() {
        return thread;
    }

    public VcpuStats stats() {
        return stats;
    }

    public boolean finished() {
        return finished;
    }

    /** When this thread was about to enter KVM_RUN the first time ({@link System#nanoTime()}; 0 before). */
    public long readyAt() {
        return readyAt;
    }

    /** Asks this vCPU whether it is halted for good; see {@link #probeAnswers()} and {@link #dead()}. */
    public void probe() {
        probeRequested = true;
        kick();
    }

    public long probeAnswers() {
        return probeAnswers;
    }

    public boolean dead() {
        return dead;
    }

    private void answerProbe(MemorySegment regs) {
        probeRequested = false;
        int mp = vcpu.getMpState();
        vcpu.call(KvmApi.KVM_GET_REGS, regs);
        boolean interruptsOff = (regs.get(JAVA_LONG, REGS_RFLAGS) & RFLAGS_IF) == 0;
        dead = mp == KvmApi.KVM_MP_STATE_UNINITIALIZED
                || (mp == KvmApi.KVM_MP_STATE_HALTED && interruptsOff);
        probeAnswers++;
    }

    /** Makes KVM_RUN return now (or immediately when next entered). Any thread. */
    public void kick() {
        long t = tid;
        if (t != 0 && !finished) Signals.kill(t, Signals.KICK_SIGNAL);
    }

    @Override
    public void run() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment kickSet = Signals.sigset(arena, Signals.KICK_SIGNAL);
            MemorySegment zeroTimeout = arena.allocate(16, 8);
            Signals.blockInThisThread(kickSet);
            vcpu.setSignalMaskAllowing(Signals.KICK_SIGNAL);
            tid = Signals.currentThreadId();
            readyAt = System.nanoTime();
            ready.countDown();
            loop(arena, kickSet, zeroTimeout);
        } catch (Throwable t) { // an Error too: it must end the run, not just this thread
            vmmError("vCPU " + vcpu.id() + " failed: " + t, t);
        } finally {
            finished = true;
            ready.countDown();
        }
    }

    private void vmmError(String reason, Throwable t) {
        host.stop(new Stop(StopCause.VMM_ERROR, ExitStatus.VMM_ERROR, reason, null, t));
    }

    private void fail(StopCause cause, int status, String reason) {
        host.stop(new Stop(cause, status, reason, registers(), null));
    }


    private void loop(Arena arena, MemorySegment kickSet, MemorySegment zeroTimeout) {
        KvmRun run = vcpu.run();
        MemorySegment capture = LibC.newCapture(arena);
        MemorySegment regs = arena.allocate(KvmApi.KVM_REGS);
        while (!host.stopping()) {
            if (host.pauseRequested()) {
                completePendingIo(run, capture, kickSet, zeroTimeout, regs);
                host.park(vcpu.id());
                continue;
            }
            int rc = vcpu.runOnce(capture);
            if (rc < 0) {
                int errno = LibC.errno(capture);
                if (errno == Errno.EINTR || errno == Errno.EAGAIN) {
                    kicked(kickSet, zeroTimeout, regs);
                    continue;
                }
                vmmError("KVM_RUN failed on vCPU " + vcpu.id() + ": " + Errno.describe(errno), null);
                return;
            }
            int reason = run.exitReason();
            stats.countExit(reason);
            String impossible = null;
            switch (reason) {
                case KvmApi.KVM_EXIT_IO -> impossible = io.handleIo(run);
                case KvmApi.KVM_EXIT_MMIO -> impossible = io.handleMmio(run);
                case KvmApi.KVM_EXIT_INTR -> kicked(kickSet, zeroTimeout, regs);
                case KvmApi.KVM_EXIT_DEBUG -> {
                    if (!host.debugExit(vcpu, run)) {
                        handleStop(run, reason);
                        return;
                    }
                }
                case KvmApi.KVM_EXIT_HLT -> {
                    // Only seen without an in-kernel irqchip, which jvmm always creates.
                }
                default -> {
                    handleStop(run, reason);
                    return;
                }
            }
            if (impossible != null) {
                vmmError("vCPU " + vcpu.id() + ": " + impossible, null);
                return;
            }
        }
    }

    /**
     * Before parking: KVM_RUN once with immediate_exit set, which completes an I/O or MMIO read the
     * last exit left pending (its result goes into the guest's registers) and returns EINTR without
     * running guest code, so the parked vCPU's state is whole.
     */
    private void completePendingIo(KvmRun run, MemorySegment capture, MemorySegment kickSet, MemorySegment zeroTimeout, MemorySegment regs) {
        run.setImmediateExit(true);
        try {
            int rc = vcpu.runOnce(capture);
            if (rc < 0) {
                int errno = LibC.errno(capture);
                if (errno != Errno.EINTR && errno != Errno.EAGAIN) {
                    vmmError("KVM_RUN (completing I/O before a pause) failed on vCPU " + vcpu.id() + ": " + Errno.describe(errno), null);
                }
            }
        } finally {
            run.setImmediateExit(false);
        }
        kicked(kickSet, zeroTimeout, regs); // the pause's kick, pending while outside KVM_RUN
    }

    private void kicked(MemorySegment kickSet, MemorySegment zeroTimeout, MemorySegment regs) {
        stats.kicks++;
        Signals.consumePending(kickSet, zeroTimeout);
        if (probeRequested) answerProbe(regs);
    }

    private void handleStop(KvmRun run, int reason) {
        String cpu = "vCPU " + vcpu.id();
        switch (reason) {
            case KvmApi.KVM_EXIT_SHUTDOWN -> fail(StopCause.GUEST_CRASH, ExitStatus.GUEST_SHUTDOWN,
                    cpu + ": the guest triple-faulted (KVM_EXIT_SHUTDOWN)");
            case KvmApi.KVM_EXIT_FAIL_ENTRY -> fail(StopCause.FAIL_ENTRY, ExitStatus.FAIL_ENTRY, String.format(
                    "%s: KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason 0x%x)", cpu, run.failEntryReason()));
            case KvmApi.KVM_EXIT_INTERNAL_ERROR -> internalError(run, cpu);
            case KvmApi.KVM_EXIT_SYSTEM_EVENT -> {
                int type = run.systemEventType();
                switch (type) {
                    case KvmApi.KVM_SYSTEM_EVENT_SHUTDOWN -> host.stop(new Stop(StopCause.POWER_OFF, ExitStatus.OK, "the guest powered off"));
                    case KvmApi.KVM_SYSTEM_EVENT_RESET -> host.stop(new Stop(StopCause.RESET, ExitStatus.OK, "the guest reset the machine"));
                    default -> fail(StopCause.GUEST_CRASH, ExitStatus.GUEST_SHUTDOWN, cpu + ": the guest reported a crash (system event " + type + ")");
                }
            }
            default -> host.stop(new Stop(StopCause.VMM_ERROR, ExitStatus.VMM_ERROR, cpu + ": unhandled KVM exit "
                    + KvmApi.exitName(reason) + " (" + reason + ")", registers(), null));
        }
    }

    private void internalError(KvmRun run, String cpu) {
        int suberror = run.internalSuberror();
        int ndata = run.internalDataCount();
        StringBuilder data = new StringBuilder();
        for (int i = 0; i < ndata; i++) data.append(String.format(" 0x%x", run.internalData(i)));
        String reason;
        if (suberror == KvmApi.KVM_INTERNAL_ERROR_EMULATION) {
            reason = cpu + ": KVM could not emulate the instruction at " + instructionBytes()
                    + " (KVM_EXIT_INTERNAL_ERROR, emulation failure). This host's KVM emulates guest code"
                    + " instead of running it on hardware and does not support this instruction; see 'jvmm check'";
        } else {
            reason = cpu + ": KVM internal error, suberror " + suberror
                    + (suberror == KvmApi.KVM_INTERNAL_ERROR_DELIVERY_EV ? " (could not deliver an event)" : "")
                    + (suberror == KvmApi.KVM_INTERNAL_ERROR_SIMUL_EX ? " (exception while delivering an exception)" : "");
        }
        host.stop(new Stop(StopCause.KVM_INTERNAL_ERROR, ExitStatus.INTERNAL_ERROR, reason,
                registers() + (ndata > 0 ? "\n  data:" + data : ""), null));
    }

    /** "0x10000 (bytes cc f4 ...)": the bytes at CS:RIP, read from guest RAM when that address is RAM. */
    private String instructionBytes() {
        try {
            long at = CpuSetup.codeAddress(vcpu);
            String where = String.format("0x%x", at);
            if (!memory.contains(at, 1)) return where;
            int n = 1;
            while (n < 15 && memory.contains(at, n + 1)) n++;
            return where + " (bytes " + HexFormat.ofDelimiter(" ").formatHex(memory.read(at, n)) + ")";
        } catch (RuntimeException e) {
            return "an unknown address";
        }
    }

    private String registers() {
        try {
            return CpuSetup.dumpRegisters(vcpu);
        } catch (RuntimeException e) {
            return "(registers unavailable: " + e.getMessage() + ")";
        }
    }
}
