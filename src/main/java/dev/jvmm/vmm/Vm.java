package dev.jvmm.vmm;

import dev.jvmm.log.Log;
import dev.jvmm.event.EventLoop;
import dev.jvmm.host.ConsoleInput;
import dev.jvmm.kvm.Kvm;
import dev.jvmm.kvm.VmFd;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.Terminal;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import dev.jvmm.device.Bus;
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

    /** Ends the run (any thread); the first stop requested wins. A paused VM stops too. */
    @Override
    public void stop(Stop s) {
        if (stop.compareAndSet(null, s)) {
            stopRequestedAt = System.nanoTime();
            stopping = true;
            GdbStub g = gdb;
            if (g != null) g.vmStopped(s.exitStatus());
            synchronized (pauseLock) {
                pauseLock.notifyAll(); // parked vCPUs leave
            }
            EventLoop l = p.loop;
            if (l != null) l.wake();
        }
    }

    /** Ends the run with {@code exitStatus} (tests, and the control paths that have no cause of their own). */
    public void stop(int exitStatus, String reason) {
        stop(new Stop(StopCause.VMM_ERROR, exitStatus, reason));
    }

    // ---- pause and resume ----

    private final Object pauseLock = new Object();
    private volatile boolean pauseRequested;
    private volatile boolean running;
    private volatile long runStarted;
    /** Under pauseLock: vCPU threads parked now; whether the pause is complete; the kvmclock and time it was taken. */
    private int parked;
    private boolean paused;
    private long pausedClock, pausedAt;

    @Override
    public boolean pauseRequested() {
        return pauseRequested;
    }

    /** Work for parked vCPU threads, by vCPU id (under pauseLock): their own KVM state is read on their own thread. */
    private final Map<Integer, Runnable> vcpuTasks = new java.util.HashMap<>();

    @Override
    public void park(int vcpu) {
        synchronized (pauseLock) {
            parked++;
            // the last vCPU to park holds the devices: an exit handler that waits for the event loop
            // (a command's last output) has finished by now
            if (parked == vcpus.size() && pauseRequested && !stopping) p.loop.hold(true);
            pauseLock.notifyAll();
        }
        try {
            while (true) {
                Runnable task;
                synchronized (pauseLock) {
                    while ((pauseRequested || held(vcpu)) && !stopping && !vcpuTasks.containsKey(vcpu)) {
                        try {
                            pauseLock.wait();
                        } catch (InterruptedException e) {
                            // nothing interrupts vCPU threads; keep waiting for the resume or the stop
                        }
                    }
                    if ((!pauseRequested && !held(vcpu)) || stopping) return;
                    task = vcpuTasks.remove(vcpu);
                }
                task.run(); // outside the lock: the others' tasks run meanwhile
            }
        } finally {
            synchronized (pauseLock) {
                parked--;
            }
        }
    }

    /**
     * Runs {@code work} on every parked vCPU's own thread (any thread; the VM must be paused) and
     * returns the results in vCPU order.
     * @throws IllegalStateException if the VM is not paused, a vCPU's work failed, or did not finish in 10 s
     */
    <T> List<T> onParkedVcpus(java.util.function.BiFunction<Integer, dev.jvmm.kvm.VcpuFd, T> work) {
        if (!pauseDone()) throw new IllegalStateException("the VM is not paused");
        int n = vcpus.size();
        List<java.util.concurrent.CompletableFuture<T>> results = new ArrayList<>();
        synchronized (pauseLock) {
            for (int i = 0; i < n; i++) {
                int id = i;
                java.util.concurrent.CompletableFuture<T> f = new java.util.concurrent.CompletableFuture<>();
                results.add(f);
                vcpuTasks.put(id, () -> {
                    try {
                        f.complete(work.apply(id, p.vcpuFds.get(id)));
                    } catch (RuntimeException | Error e) {
                        f.completeExceptionally(e);
                    }
                });
            }
            pauseLock.notifyAll();
        }
        List<T> out = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) out.add(results.get(i).get(10, java.util.concurrent.TimeUnit.SECONDS));
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException(String.valueOf(e.getCause().getMessage()), e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("a vCPU thread did not answer within 10 s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted");
        } finally {
            synchronized (pauseLock) {
                vcpuTasks.clear();
            }
        }
        return out;
    }

    // ---- the gdb stub's hooks ----

    private volatile GdbStub gdb;
    /** Under pauseLock: vCPUs the debugger keeps stopped while the others run (vCont with no action for them). */
    private boolean[] held = new boolean[0];

    private boolean held(int vcpu) {
        return vcpu < held.length && held[vcpu];
    }

    /** The debugger keeps {@code vcpu} parked after the next resume (or lets it go). */
    void holdVcpu(int vcpu, boolean on) {
        synchronized (pauseLock) {
            if (held.length < p.vcpuFds.size()) held = new boolean[p.vcpuFds.size()];
            held[vcpu] = on;
            pauseLock.notifyAll();
        }
    }

    /** Whether a debugger is attached to this VM's --gdb stub (then only it pauses and resumes the VM). */
    public boolean debuggerAttached() {
        GdbStub g = gdb;
        return g != null && g.attached();
    }

    void attachGdb(GdbStub stub) {
        this.gdb = stub;
    }

    /** --gdb-wait: the vCPUs park before their first KVM_RUN, as if paused (call before {@link #run}). */
    void startPaused() {
        synchronized (pauseLock) {
            pauseRequested = true;
        }
    }

    @Override
    public boolean debugExit(dev.jvmm.kvm.VcpuFd vcpu, dev.jvmm.kvm.KvmRun run) {
        GdbStub g = gdb;
        return g != null && g.debugExit(vcpu, run);
    }

    /** Runs {@code work} on one parked vCPU's own thread (the VM must be paused); see {@link #onParkedVcpus}. */
    <T> T onParkedVcpu(int id, java.util.function.Function<dev.jvmm.kvm.VcpuFd, T> work) {
        if (!pauseDone()) throw new IllegalStateException("the VM is not paused");
        java.util.concurrent.CompletableFuture<T> f = new java.util.concurrent.CompletableFuture<>();
        synchronized (pauseLock) {
            vcpuTasks.put(id, () -> {
                try {
                    f.complete(work.apply(p.vcpuFds.get(id)));
                } catch (RuntimeException | Error e) {
                    f.completeExceptionally(e);
                }
            });
            pauseLock.notifyAll();
        }
        try {
            return f.get(10, java.util.concurrent.TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            throw new IllegalStateException(String.valueOf(e.getCause().getMessage()), e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("vCPU " + id + "'s thread did not answer within 10 s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted");
        } finally {
            synchronized (pauseLock) {
                vcpuTasks.remove(id);
            }
        }
    }

    int vcpuCount() {
        return p.vcpuFds.size();
    }

    dev.jvmm.memory.GuestMemory memory() {
        return p.memory;
    }

    private volatile long restoreNanos = -1;

    /** A VM restored from a snapshot: how long the restore took (memory mapped, state set), for the stats. */
    void restoredIn(long nanos) {
        restoreNanos = nanos;
    }

    /** For {@link VmSnapshot}: the parts it reads. */
    VmBuilder.Parts parts() {
        return p;
    }

    /**
     * Asks the VM to pause (any thread): every vCPU leaves KVM_RUN (a kick) and parks; then the event
     * loop holds its devices' descriptors, tasks and timers, and device threads their turns. Returns at once; {@link #pauseDone} says
     * when the pause is complete. Pausing a paused VM is no error.
     * @return null, or why the VM cannot pause now
     */
    public synchronized String requestPause() {
        if (stopping) return "the VM is stopping";
        if (!running) return "the VM is not running yet";
        if (pauseRequested) return null;
        synchronized (pauseLock) {
            pauseRequested = true;
            // a pause right after a resume, before any vCPU left its park (a debugger's Ctrl-C just after
            // its continue): no vCPU parks anew to hold the event loop, so hold it here
            if (parked == vcpus.size() && !stopping) p.loop.hold(true);
            pauseLock.notifyAll();
        }
        for (VcpuThread v : vcpus) v.kick();
        return null;
    }

    /**
     * Whether a requested pause is complete: every vCPU parked and the event loop holding. The first
     * time it is, the guest's kvmclock is read (KVM_GET_CLOCK), for {@link #resume} to set it back.
     */
    public boolean pauseDone() {
        synchronized (pauseLock) {
            if (!pauseRequested || stopping) return false;
            if (paused) return true;
            if (parked < vcpus.size() || !p.loop.holding()) return false;
            pausedClock = p.vmFd.getClock();
            pausedAt = System.nanoTime();
            paused = true;
            return true;
        }
    }

    /** The kvmclock saved when the pause completed (nanoseconds), or -1 if not paused. */
    public long pausedClock() {
        synchronized (pauseLock) {
            return paused ? pausedClock : -1;
        }
    }

    /**
     * Ends a pause (any thread): the guest's kvmclock is set back to what it was when the pause
     * completed, so the guest's clock does not jump by the time paused (unless {@code advanceClock}),
     * then the vCPUs and the event loop carry on. A pause still in progress is called off.
     * @return null, or why there is nothing to resume
     */
    public synchronized String resume(boolean advanceClock) {
        synchronized (pauseLock) {
            if (stopping) return "the VM is stopping";
            if (!pauseRequested) return "the VM is not paused";
            if (paused && !advanceClock) p.vmFd.setClock(pausedClock);
            paused = false;
            pauseRequested = false;
            p.loop.hold(false);
            pauseLock.notifyAll();
        }
        return null;
    }

    /** starting, running, pausing, paused or stopping. */
    public String state() {
        if (stopping) return "stopping";
        if (!running) return "starting";
        if (pauseRequested) return pauseDone() ? "paused" : "pausing";
        return "running";
    }

    /** The statistics so far, as --stats-json would write them if the run ended now (any thread, while it runs). */
    public RunReport liveReport() {
        if (!running) throw new IllegalStateException("the VM is not running yet");
        RunReport report = new RunReport(p.timeline);
        report.finish(null, vcpus, p.pio, p.mmio, p.virtio.counters(), p.console.bytesWritten(), System.nanoTime() - runStarted);
        return report;
    }

    /** State, configuration and devices, for the control socket's {@code info} (any thread). */
    public Map<String, Object> info() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("state", state());
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("cpus", config.cpus());
        c.put("mem_bytes", config.memBytes());
        c.put("acpi", config.acpi());
        c.put("pit", config.pit().name().toLowerCase(java.util.Locale.ROOT));
        c.put("on_reboot", config.onReboot().name().toLowerCase(java.util.Locale.ROOT));
        c.put("stdin", config.stdin());
        c.put("serial_log", config.serialLog() == null ? null : config.serialLog().toString());
        c.put("timeout_ms", config.timeout() == null ? null : config.timeout().toMillis());
        c.put("expect", config.expect() == null ? null : config.expect().pattern());
        List<Object> virtio = new ArrayList<>();
        for (VirtioSpec v : config.virtio()) virtio.add(v.toString());
        c.put("virtio", virtio);
        m.put("config", c);
        List<Object> devices = new ArrayList<>();
        for (Bus bus : List.of(p.pio, p.mmio)) {
            for (Bus.Range r : bus.ranges()) {
                devices.add(Json.fields("name", r.name(), "bus", bus.name(), "base", r.base(), "length", r.length()));
            }
        }
        m.put("devices", devices);
        m.put("vcpus", vcpus.size());
        synchronized (pauseLock) {
            if (paused) m.put("paused_ms", (System.nanoTime() - pausedAt) / 1_000_000);
        }
        try {
            m.put("kvmclock_ns", p.vmFd.getClock());
        } catch (RuntimeException e) {
            m.put("kvmclock_ns", null);
        }
        return m;
    }

    public Stop stopReason() {
        return stop.get();
    }

    /** From the stop request until every vCPU thread had left KVM_RUN and ended (after the run). */
    public Duration stopLatency() {
        return Duration.ofNanos(vcpusStoppedAt - stopRequestedAt);
    }

    /**
     * After a failure line, the run ends once the console has been quiet this long (the rest of the
     * panic report, its backtrace and registers, is written first), or the guest resets or powers
     * off, or {@link #FAILURE_GRACE_MAX_NANOS} passed.
     */
    static final long FAILURE_GRACE_NANOS = 500_000_000L;
    /** At most this long from the failure line to the end of the run (a guest that goes on printing). */
    static final long FAILURE_GRACE_MAX_NANOS = 5_000_000_000L;

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
        if (l != null) l.execute(() -> endWhenQuiet(l, failure, System.nanoTime() + FAILURE_GRACE_MAX_NANOS, -1));
        else stop(failure);
    }

    /** On the loop: ends the run with {@code failure} once no console output came for a grace period. */
    private void endWhenQuiet(EventLoop l, Stop failure, long deadline, long bytesBefore) {
        long bytes = p.console.bytesWritten();
        long now = System.nanoTime();
        if (bytes == bytesBefore || now >= deadline) stop(failure);
        else l.schedule(Math.min(FAILURE_GRACE_NANOS, deadline - now), () -> endWhenQuiet(l, failure, deadline, bytes));
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
            runStarted = started;
            for (VcpuThread v : vcpus) v.start();
            running = true;
            p.timeline.mark(Timeline.Mark.VCPUS_STARTED, vcpus.isEmpty() ? 0 : vcpus.get(0).readyAt());
            p.loop.run(this::stopping);
            p.loop.hold(false); // a VM stopped while paused: teardown may need the loop's devices
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
        if (restoreNanos >= 0) report.put("restore_ms", Json.Decimal.of(restoreNanos / 1e6, 3));
        return report;
    }

    /** The terminal in raw mode while the VM runs, or null. */
    public Terminal terminal() {
        return terminal;
    }

    /** Kicks every vCPU out of KVM_RUN until all threads have ended (or the join timeout passes). */
    private void stopVcpus() {
        stopping = true;
        synchronized (pauseLock) {
            pauseLock.notifyAll();
        }
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
        closeKvm(p.vmFd, p.kvm);
    }

    /**
     * Closes the VM's and /dev/kvm's descriptors on a short-lived thread ("jvmm vm close"). The last
     * close of a VM tears it down in the kernel, which took 1-2 ms or 14-20 ms on this host (the
     * in-kernel PIT's teardown waits out SRCU grace periods; measured 2026-12-03); the run's report
     * and the JVM's exit go on meanwhile. The VM never outlives jvmm: a process exits only once
     * every thread has left the kernel, so its exit waits for a close in progress.
     */
    private static void closeKvm(VmFd vmFd, Kvm kvm) {
        if (vmFd == null && kvm == null) return;
        Thread.ofPlatform().name("jvmm vm close").daemon(true).start(() -> {
            if (vmFd != null) vmFd.close();
            if (kvm != null) kvm.close();
        });
    }
}
