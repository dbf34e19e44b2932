package dev.jvmm.vmm;

import dev.jvmm.arch.x86.CpuSetup;
import dev.jvmm.device.Bus;
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

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * One platform thread per vCPU, named "CPU n/KVM", looping on KVM_RUN. Port and MMIO exits are served
 * here, synchronously, through the buses. Another thread stops it with {@link #kick()}: a SIGURG that
 * the thread blocks everywhere except inside KVM_RUN.
 */
public final class VcpuThread implements Runnable {
    /** What the run loop needs from the VM. */
    public interface Host {
        boolean stopping();

        /** The run must end (first call wins); {@code detail} may be multi-line (register dump). */
        void stop(int exitStatus, String reason, String detail);

        /** The guest reset the machine: the run ends, and may restart (--on-reboot). */
        void reset(String reason);
    }

    private static final long REGS_RFLAGS = KvmApi.offset(KvmApi.KVM_REGS, "rflags");
    private static final long RFLAGS_IF = 1 << 9;

    private final VcpuFd vcpu;
    private final Bus pio;
    private final Bus mmio;
    private final GuestMemory memory;
    private final Host host;
    private final VcpuStats stats = new VcpuStats();
    private final CountDownLatch ready = new CountDownLatch(1);
    private final Thread thread;
    private volatile long pthread;
    /** Set by the VM's halt probe; the vCPU answers at its next exit from KVM_RUN (the probe kicks it). */
    private volatile boolean probeRequested;
    /** The last probe's answer: halted (or never started) with interrupts off, so only INIT/NMI could wake it. */
    private volatile boolean dead;
    private volatile long probeAnswers;
    private volatile boolean finished;

    public VcpuThread(VcpuFd vcpu, Bus pio, Bus mmio, GuestMemory memory, Host host) {
        this.vcpu = vcpu;
        this.pio = pio;
        this.mmio = mmio;
        this.memory = memory;
        this.host = host;
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
        vcpu.getRegs(regs);
        boolean interruptsOff = (regs.get(JAVA_LONG, REGS_RFLAGS) & RFLAGS_IF) == 0;
        dead = mp == KvmApi.KVM_MP_STATE_UNINITIALIZED
                || (mp == KvmApi.KVM_MP_STATE_HALTED && interruptsOff);
        probeAnswers++;
    }

    /** Makes KVM_RUN return now (or immediately when next entered). Any thread. */
    public void kick() {
        long p = pthread;
        if (p != 0 && !finished) Signals.pthreadKill(p, Signals.KICK_SIGNAL);
    }

    @Override
    public void run() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment kickSet = Signals.sigset(arena, Signals.KICK_SIGNAL);
            MemorySegment zeroTimeout = arena.allocate(16, 8);
            Signals.blockInThisThread(kickSet);
            vcpu.setSignalMaskAllowing(Signals.KICK_SIGNAL);
            pthread = Signals.pthreadSelf();
            ready.countDown();
            loop(arena, kickSet, zeroTimeout);
        } catch (Throwable t) {
            host.stop(ExitStatus.VMM_ERROR, "vCPU " + vcpu.id() + " failed: " + t, stackTrace(t));
        } finally {
            finished = true;
            ready.countDown();
        }
    }

    private static String stackTrace(Throwable t) {
        java.io.StringWriter w = new java.io.StringWriter();
        t.printStackTrace(new java.io.PrintWriter(w));
        return w.toString();
    }


    private void loop(Arena arena, MemorySegment kickSet, MemorySegment zeroTimeout) {
        MemorySegment run = vcpu.run();
        MemorySegment capture = LibC.newCapture(arena);
        MemorySegment regs = arena.allocate(KvmApi.KVM_REGS);
        long[] exits = stats.exitsByReason;
        while (!host.stopping()) {
            int rc = vcpu.runOnce(capture);
            if (rc < 0) {
                int errno = LibC.errno(capture);
                if (errno == Errno.EINTR || errno == Errno.EAGAIN) {
                    stats.kicks++;
                    Signals.consumePending(kickSet, zeroTimeout);
                    if (probeRequested) answerProbe(regs);
                    continue;
                }
                host.stop(ExitStatus.VMM_ERROR, "KVM_RUN failed on vCPU " + vcpu.id() + ": " + Errno.describe(errno), null);
                return;
            }
            int reason = run.get(JAVA_INT, KvmApi.RUN_EXIT_REASON);
            exits[reason < VcpuStats.REASONS ? reason : VcpuStats.REASONS - 1]++;
            switch (reason) {
                case KvmApi.KVM_EXIT_IO -> handleIo(run);
                case KvmApi.KVM_EXIT_MMIO -> handleMmio(run);
                case KvmApi.KVM_EXIT_INTR -> {
                    stats.kicks++;
                    Signals.consumePending(kickSet, zeroTimeout);
                    if (probeRequested) answerProbe(regs);
                }
                case KvmApi.KVM_EXIT_HLT -> {
                    // Only seen without an in-kernel irqchip, which jvmm always creates.
                }
                default -> {
                    handleStop(run, reason);
                    return;
                }
            }
        }
    }

    private void handleIo(MemorySegment run) {
        int size = run.get(JAVA_BYTE, KvmApi.RUN_IO_SIZE);
        int port = run.get(JAVA_SHORT, KvmApi.RUN_IO_PORT) & 0xffff;
        int count = run.get(JAVA_INT, KvmApi.RUN_IO_COUNT);
        long dataOffset = run.get(JAVA_LONG, KvmApi.RUN_IO_DATA_OFFSET);
        boolean out = run.get(JAVA_BYTE, KvmApi.RUN_IO_DIRECTION) == KvmApi.KVM_EXIT_IO_OUT;
        if ((size != 1 && size != 2 && size != 4) || count < 1 || dataOffset < 0
                || dataOffset + (long) size * count > run.byteSize()) {
            host.stop(ExitStatus.VMM_ERROR, String.format("KVM reported an impossible port access (port 0x%x size %d count %d)",
                    port, size, count), null);
            return;
        }
        stats.pioAccesses[port] += count;
        Bus.Range range = pio.find(port);
        for (int i = 0; i < count; i++) {
            long at = dataOffset + (long) i * size;
            if (range == null || port + size > range.base() + range.length()) {
                if (range == null) stats.unclaimedPio++;
                if (!out) store(run, at, size, -1L);
            } else if (out) {
                range.device().write(port - range.base(), size, load(run, at, size));
            } else {
                store(run, at, size, range.device().read(port - range.base(), size));
            }
        }
    }

    private void handleMmio(MemorySegment run) {
        long addr = run.get(JAVA_LONG, KvmApi.RUN_MMIO_PHYS_ADDR);
        int len = run.get(JAVA_INT, KvmApi.RUN_MMIO_LEN);
        boolean write = run.get(JAVA_BYTE, KvmApi.RUN_MMIO_IS_WRITE) != 0;
        if (len < 1 || len > 8) {
            host.stop(ExitStatus.VMM_ERROR, String.format("KVM reported an impossible MMIO access (0x%x len %d)", addr, len), null);
            return;
        }
        stats.countMmio(addr);
        Bus.Range range = mmio.find(addr);
        boolean claimed = range != null && addr - range.base() <= range.length() - len;
        if (!claimed) {
            stats.unclaimedMmio++;
            if (!write) store(run, KvmApi.RUN_MMIO_DATA, len, -1L);
        } else if (write) {
            range.device().write(addr - range.base(), len, load(run, KvmApi.RUN_MMIO_DATA, len));
        } else {
            store(run, KvmApi.RUN_MMIO_DATA, len, range.device().read(addr - range.base(), len));
        }
    }

    private static long load(MemorySegment run, long at, int size) {
        long v = 0;
        for (int i = 0; i < size; i++) v |= (run.get(JAVA_BYTE, at + i) & 0xffL) << (8 * i);
        return v;
    }

    private static void store(MemorySegment run, long at, int size, long value) {
        if (size == 1) {
            run.set(JAVA_BYTE, at, (byte) value);
            return;
        }
        for (int i = 0; i < size; i++) run.set(JAVA_BYTE, at + i, (byte) (value >>> (8 * i)));
    }

    private void handleStop(MemorySegment run, int reason) {
        String cpu = "vCPU " + vcpu.id();
        switch (reason) {
            case KvmApi.KVM_EXIT_SHUTDOWN ->
                    host.stop(ExitStatus.GUEST_SHUTDOWN, cpu + ": the guest triple-faulted (KVM_EXIT_SHUTDOWN)", registers());
            case KvmApi.KVM_EXIT_FAIL_ENTRY -> host.stop(ExitStatus.FAIL_ENTRY, String.format(
                    "%s: KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason 0x%x)", cpu,
                    run.get(JAVA_LONG, KvmApi.RUN_FAIL_ENTRY_REASON)), registers());
            case KvmApi.KVM_EXIT_INTERNAL_ERROR -> internalError(run, cpu);
            case KvmApi.KVM_EXIT_SYSTEM_EVENT -> {
                int type = run.get(JAVA_INT, KvmApi.RUN_SYSTEM_EVENT_TYPE);
                switch (type) {
                    case KvmApi.KVM_SYSTEM_EVENT_SHUTDOWN -> host.stop(ExitStatus.OK, "the guest powered off", null);
                    case KvmApi.KVM_SYSTEM_EVENT_RESET -> host.reset("the guest reset the machine");
                    default -> host.stop(ExitStatus.GUEST_SHUTDOWN, cpu + ": the guest reported a crash (system event "
                            + type + ")", registers());
                }
            }
            default -> host.stop(ExitStatus.VMM_ERROR, cpu + ": unhandled KVM exit " + KvmApi.exitName(reason)
                    + " (" + reason + ")", registers());
        }
    }

    private void internalError(MemorySegment run, String cpu) {
        int suberror = run.get(JAVA_INT, KvmApi.RUN_INTERNAL_SUBERROR);
        int ndata = Math.min(run.get(JAVA_INT, KvmApi.RUN_INTERNAL_NDATA), 16);
        StringBuilder data = new StringBuilder();
        for (int i = 0; i < ndata; i++) {
            data.append(String.format(" 0x%x", run.get(JAVA_LONG_UNALIGNED, KvmApi.RUN_INTERNAL_DATA + 8L * i)));
        }
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
        host.stop(ExitStatus.INTERNAL_ERROR, reason, registers() + (ndata > 0 ? "\n  data:" + data : ""));
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
