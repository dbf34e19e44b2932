package dev.jvmm.vmm;

import dev.jvmm.log.Log;
import dev.jvmm.event.EventLoop;
import dev.jvmm.host.ConsoleInput;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.Terminal;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One virtual machine, made by {@link VmBuilder}: {@link #run} starts a thread per vCPU and runs the
 * event loop on the calling thread until a stop request, then gets every vCPU out of KVM_RUN and
 * reports; {@link #close} releases everything in order. The stop protocol: any thread may call
 * {@link #stop}; the first stop wins and decides the exit status.
 */
public final class Vm implements VcpuThread.RunControl, AutoCloseable {
    /** The longest a stop may take to get every vCPU out of KVM_RUN before jvmm gives up on them. */
    static final long JOIN_TIMEOUT_MS = 500;
    /** How long the console's last output may take to drain at the end (a reader that never reads). */
    static final long OUTPUT_DRAIN_MS = 500;

    private final VmConfig config;
    private final VmBuilder.Parts p;
    private final AtomicReference<Stop> stop = new AtomicReference<>();
    private final List<VcpuThread> vcpus = new ArrayList<>();
    private volatile boolean stopping;
    private volatile long stopRequestedAt;
    private volatile long vcpusStoppedAt;
    private Terminal terminal;
    private boolean closed;

    Vm(VmConfig config, VmBuilder.Parts parts) {
        this.config = config;
        this.p = parts;
    }

    public VmConfig config() {
        return config;
    }

    @Override
    public boolean stopping() {
        return stopping;
    }

    /** Ends the run (any thread); the first stop requested wins. */
    @Override
    public void stop(Stop s) {
        if (stop.compareAndSet(null, s)) {
            stopRequestedAt = System.nanoTime();
            stopping = true;
            EventLoop l = p.loop;
            if (l != null) l.wake();
        }
    }

    /** Ends the run with {@code exitStatus} (tests, and the control paths that have no cause of their own). */
    public void stop(int exitStatus, String reason) {
        stop(new Stop(StopCause.VMM_ERROR, exitStatus, reason));
    }

    public Stop stopReason() {
        return stop.get();
    }

    /** From the stop request until every vCPU thread had left KVM_RUN and ended (after the run). */
    public Duration stopLatency() {
        return Duration.ofNanos(vcpusStoppedAt - stopRequestedAt);
    }

    /** How long the rest of a panic report may take to arrive before the run ends. */
    static final long FAILURE_GRACE_NANOS = 500_000_000L;

    private volatile Stop guestFailure;

    /**
     * The guest failed in a way only its console shows (a kernel panic, a --fail-on match): that is
     * the run's verdict even if the guest then resets or powers off; the run ends a moment later,
     * so what the guest prints about the failure still reaches the output. Any thread.
     */
    void guestFailed(Stop failure) {
        synchronized (this) {
            if (guestFailure != null) return;
            guestFailure = failure;
        }
        EventLoop l = p.loop;
        if (l != null) l.execute(() -> l.schedule(FAILURE_GRACE_NANOS, () -> stop(failure)));
        else stop(failure);
    }

    static Stop expectStop(VmConfig config, String then) {
        return new Stop(StopCause.EXPECT_MATCHED, ExitStatus.OK, "the serial output matched --expect '" + config.expect().pattern() + "'"
                + (then == null ? "" : " (then: " + then + ")"));
    }

    /**
     * Runs the VM until it stops: starts the vCPUs and serves the event loop on this thread, then gets
     * every vCPU out of KVM_RUN. Returns what happened; call {@link #close} afterwards.
     */
    public RunReport run() {
        long started = System.nanoTime();
        boolean tty = config.stdin() && config.serialLog() == null && LibC.isatty(0);
        try {
            for (int i = 0; i < p.vcpuFds.size(); i++) vcpus.add(new VcpuThread(p.vcpuFds.get(i), p.pio, p.mmio, p.memory, this));
            if (tty) terminal = Terminal.makeRaw(0);
            if (config.stdin()) {
                new ConsoleInput(0, p.loop, p.consoleInput, tty,
                        () -> stop(new Stop(StopCause.POWER_OFF, ExitStatus.OK, "user quit with Ctrl-A x"))).start();
            }
            HaltWatch.start(vcpus, p.loop, this::stop);
            Log.debug(Vm.class, "starting {} vCPU(s), {} MiB", config.cpus(), config.memBytes() >> 20);
            for (VcpuThread v : vcpus) v.start();
            p.timeline.mark(Timeline.Mark.VCPUS_STARTED, vcpus.isEmpty() ? 0 : vcpus.get(0).readyAt());
            p.loop.run(this::stopping);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stop(new Stop(StopCause.VMM_ERROR, ExitStatus.VMM_ERROR, "interrupted"));
        } catch (RuntimeException | Error e) {
            stop(new Stop(StopCause.VMM_ERROR, ExitStatus.VMM_ERROR, String.valueOf(e), null, e));
        }
        p.console.release(); // a vCPU waiting for console room must not hold up the stop
        stopVcpus();
        vcpusStoppedAt = System.nanoTime();
        if (!p.console.close(OUTPUT_DRAIN_MS)) Log.debug(Vm.class, "the console output did not drain within {} ms", OUTPUT_DRAIN_MS);
        if (terminal != null) terminal.restore();
        Stop s = stop.get();
        Stop failed = guestFailure;
        if (failed != null && s != failed && s.cause() != StopCause.SIGNAL && s.cause() != StopCause.VMM_ERROR) {
            s = new Stop(failed.cause(), failed.exitStatus(), failed.reason() + " (then: " + s.reason() + ")");
        }
        String lost = p.console.failure();
        if (lost != null && s.cause() != StopCause.OUTPUT_FAILED) {
            // output written at the very end failed: whatever the guest said, its output is lost
            s = new Stop(StopCause.OUTPUT_FAILED, ExitStatus.OUTPUT_FAILED, lost + " (then: " + s.reason() + ")");
        }
        if (p.expect != null && p.expect.matched() && !s.expectMatched()) {
            s = expectStop(config, s.reason()); // the match came in the output written at the very end: it still counts
        }
        p.timeline.mark(Timeline.Mark.FIRST_CONSOLE_BYTE, p.console.firstByteAt());
        p.timeline.mark(Timeline.Mark.STOP_REQUESTED, stopRequestedAt);
        RunReport report = new RunReport(p.timeline);
        report.finish(s, vcpus, p.pio, p.mmio, p.virtio.counters(), p.console.bytesWritten(), System.nanoTime() - started);
        return report;
    }

    /** The terminal in raw mode while the VM runs, or null. */
    public Terminal terminal() {
        return terminal;
    }

    /** Kicks every vCPU out of KVM_RUN until all threads have ended (or the join timeout passes). */
    private void stopVcpus() {
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
            if (v.thread().isAlive()) Log.warn(Vm.class, "{} did not leave KVM_RUN within {} ms", v.thread().getName(), JOIN_TIMEOUT_MS);
        }
    }

    /**
     * Releases everything in order: devices (their threads, files and taps), the console, the vCPUs,
     * guest memory (only once nothing can touch it any more), the VM and /dev/kvm.
     */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        stopping = true;
        if (terminal != null) terminal.restore();
        if (p.virtio != null) p.virtio.close();
        else for (var d : p.devices) d.close();
        if (p.console != null) p.console.close(OUTPUT_DRAIN_MS);
        if (p.consoleStream != null && config.serialLog() != null) {
            try {
                p.consoleStream.close();
            } catch (IOException e) {
                Log.warn(Vm.class, "closing the serial log: {}", e.getMessage());
            }
        }
        boolean vcpusGone = true;
        for (int i = 0; i < p.vcpuFds.size(); i++) {
            boolean finished = i >= vcpus.size() || vcpus.get(i).finished();
            if (finished) p.vcpuFds.get(i).close();
            vcpusGone &= finished;
        }
        boolean quiet = vcpusGone && (p.virtio == null || p.virtio.quiesced());
        if (p.memory != null && quiet) p.memory.close(); // else a thread may still touch it: leave it mapped
        if (p.loop != null) p.loop.close();
        if (p.vmFd != null) p.vmFd.close();
        if (p.kvm != null) p.kvm.close();
    }
}
