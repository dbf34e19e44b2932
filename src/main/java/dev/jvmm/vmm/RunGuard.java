package dev.jvmm.vmm;

import dev.jvmm.host.HelperProcess;

import dev.jvmm.sys.Signals;
import dev.jvmm.sys.Terminal;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.io.PrintStream;
import java.time.Duration;

/**
 * The process's promise that SIGINT, SIGTERM and --timeout end a run within a second of their due
 * time, from the first millisecond of the process to the last, whatever the VM is doing.
 *
 * <p>While a VM runs, a signal or the deadline stops it through its own stop path (output flushed,
 * terminal restored, status reported). Before a VM exists (loading a kernel) or between two boots,
 * the process exits at once with the status. Either way a watchdog then gives the normal path
 * {@link #GRACE_MS} (and {@link #REPORT_GRACE_MS} more once it is reporting the end); if the process
 * is still there it restores the terminal, says why on stderr and halts with the status (quietly, if
 * the normal path already reported the end: {@link #reporting}).
 * Helper processes die with jvmm (they are started with a parent-death signal where util-linux's
 * setpriv is there), and the watchdog kills them itself before it halts, so even a halt leaves none behind.
 */
public final class RunGuard implements AutoCloseable {
    /** How long a requested stop may take before the watchdog ends the process itself. */
    static final long GRACE_MS = 800;
    /**
     * How much longer the watchdog waits once the normal path reports the end ({@link #reporting}: the VM
     * is down, its lines and --stats are being written), so that a slow machine (a JVM under nested
     * emulation, where cold reporting code takes its time) does not get its report cut off mid-way.
     */
    static final long REPORT_GRACE_MS = 2000;

    private static volatile RunGuard current;
    /** What must be done even when the watchdog halts the process (a halt runs no shutdown hooks). */
    private static final java.util.Set<Runnable> AT_HALT = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private final PrintStream err;
    private final SignalHandler previousInt;
    private final SignalHandler previousTerm;
    private final Thread watchdog;
    private long deadline;
    private String timeoutReason;
    private Vm vm;
    private Terminal terminal;
    private Stop pending;
    private long pendingSince;
    private boolean closed;
    /** The normal path is reporting the run's end with this status (-1: not yet). */
    private int reportedStatus = -1;
    /** The watchdog is ending the process: the normal path must not report any more. */
    private boolean halting;

    /**
     * Takes over SIGINT and SIGTERM for this process (the CLI does it first thing), replacing the
     * guard installed before, if any. SIGINT is honoured even when the parent left it ignored (a
     * background job of a non-interactive shell): jvmm is asked to stop only when someone means it.
     */
    public static RunGuard install(PrintStream err) {
        RunGuard old = current;
        if (old != null) old.close();
        RunGuard g = new RunGuard(err);
        current = g;
        return g;
    }

    /** The guard {@link #install} made last, or null. */
    public static RunGuard current() {
        return current;
    }

    private RunGuard(PrintStream err) {
        this.err = err;
        SignalHandler onInt = s -> request(new Stop(StopCause.SIGNAL, ExitStatus.SIGINT, "interrupted (SIGINT)"));
        SignalHandler old = Signal.handle(new Signal("INT"), onInt);
        if (old == SignalHandler.SIG_IGN && Signals.unignore(Signals.SIGINT)) old = Signal.handle(new Signal("INT"), onInt);
        previousInt = old;
        previousTerm = Signal.handle(new Signal("TERM"), s -> request(new Stop(StopCause.SIGNAL, ExitStatus.SIGTERM, "terminated (SIGTERM)")));
        watchdog = Thread.ofPlatform().name("jvmm watchdog").daemon(true).unstarted(this::watch);
        watchdog.start();
    }

    /**
     * --timeout: the run ends at {@code deadline} ({@link System#nanoTime()} terms).
     * @param timeout the --timeout given, for the message
     */
    public synchronized void deadline(long deadline, Duration timeout) {
        this.deadline = deadline;
        this.timeoutReason = "timed out after " + RunReport.duration(timeout);
        notifyAll();
    }

    /** The VM that runs now (null: none). A stop requested before it came ends it at once. */
    public synchronized void attach(Vm vm) {
        this.vm = vm;
        if (vm != null && pending != null) vm.stop(pending);
    }

    /** The terminal in raw mode, for the watchdog to restore before it halts (null: none). */
    public synchronized void terminal(Terminal t) {
        this.terminal = t;
    }

    private void request(Stop stop) {
        Vm current;
        synchronized (this) {
            if (closed || pending != null) return;
            pending = stop;
            pendingSince = System.nanoTime();
            current = vm;
            notifyAll();
        }
        if (current != null) {
            current.stop(stop);
        } else { // no VM to stop: loading a kernel, or between boots
            err.println("jvmm: " + stop.reason());
            err.flush();
            System.exit(stop.exitStatus());
        }
    }

    private void watch() {
        try {
            synchronized (this) {
                while (!closed && pending == null) {
                    long left = deadline == 0 ? 0 : deadline - System.nanoTime();
                    if (deadline != 0 && left <= 0) break;
                    wait(deadline == 0 ? 0 : Math.max(1, (left + 999_999) / 1_000_000));
                }
            }
            boolean timedOut;
            synchronized (this) {
                timedOut = pending == null && !closed && deadline != 0;
            }
            if (timedOut) request(new Stop(StopCause.TIMEOUT, ExitStatus.TIMEOUT, timeoutReason));
            Stop s;
            synchronized (this) {
                while (!closed) {
                    long limit = (reportedStatus >= 0 ? GRACE_MS + REPORT_GRACE_MS : GRACE_MS) * 1_000_000;
                    long since = System.nanoTime() - pendingSince;
                    if (since >= limit) break;
                    wait(Math.max(1, (limit - since) / 1_000_000));
                }
                if (closed) return;
                s = pending;
                halting = true;
                if (terminal != null) terminal.restore();
            }
            // a halt runs no shutdown hooks: the helpers go first (where setpriv could not tie them to jvmm)
            HelperProcess.killAll();
            for (Runnable r : java.util.List.copyOf(AT_HALT)) {
                try {
                    r.run();
                } catch (RuntimeException e) {
                    // best effort: the process ends now either way
                }
            }
            if (reportedStatus >= 0) {
                // the normal path already said why the run ended: end with its status, without a second line
                Runtime.getRuntime().halt(reportedStatus);
            }
            err.println("jvmm: " + s.reason() + " (the VM did not stop within " + GRACE_MS + " ms; ending the process)");
            err.flush();
            Runtime.getRuntime().halt(s.exitStatus());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Registers quick, non-blocking work (removing a socket file) that must happen even when the watchdog
     * halts the process; {@link #removeAtHalt} when it is done the normal way.
     */
    public static void atHalt(Runnable r) {
        AT_HALT.add(r);
    }

    public static void removeAtHalt(Runnable r) {
        AT_HALT.remove(r);
    }

    /**
     * The normal path is about to report the run's end (its lines on stderr) and exit with {@code status}
     * (called again if the status changes while it reports). If the watchdog then has to end the process
     * (a teardown that hangs), it ends it with this status and no line of its own.
     * @return false if the watchdog is already ending the process with its own line: then report nothing
     */
    public synchronized boolean reporting(int status) {
        if (halting) return false;
        reportedStatus = status;
        return true;
    }

    /** The run is over (its status is being reported): signals get their previous handlers back. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
            notifyAll();
        }
        if (current == this) current = null;
        Signal.handle(new Signal("INT"), previousInt);
        Signal.handle(new Signal("TERM"), previousTerm);
    }
}
