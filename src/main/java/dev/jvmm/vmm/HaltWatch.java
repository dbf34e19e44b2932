package dev.jvmm.vmm;

import dev.jvmm.event.EventLoop;

import java.util.List;
import java.util.function.Consumer;

/**
 * A guest that halts every vCPU with interrupts off (Linux's "System halted", a poweroff that found
 * no way to power off, a test kernel's final {@code cli; hlt}) never exits to jvmm again: the
 * in-kernel irqchip handles HLT. So the event loop probes the vCPUs once a second, and two probes in
 * a row that find them all halted (or never started) end the run with status 0.
 */
final class HaltWatch {
    /** How often the event loop asks the vCPUs whether the guest has halted for good. */
    static final long PROBE_NANOS = 1_000_000_000L;

    private final List<VcpuThread> vcpus;
    private final EventLoop loop;
    private final Consumer<Stop> stop;
    private final long[] seen;
    private int deadRounds;

    private HaltWatch(List<VcpuThread> vcpus, EventLoop loop, Consumer<Stop> stop) {
        this.vcpus = vcpus;
        this.loop = loop;
        this.stop = stop;
        this.seen = new long[vcpus.size()];
    }

    static void start(List<VcpuThread> vcpus, EventLoop loop, Consumer<Stop> stop) {
        HaltWatch w = new HaltWatch(vcpus, loop, stop);
        loop.schedule(PROBE_NANOS, w::tick);
    }

    private void tick() {
        boolean allAnswered = true, allDead = true;
        for (int i = 0; i < vcpus.size(); i++) {
            VcpuThread v = vcpus.get(i);
            if (v.probeAnswers() == seen[i]) allAnswered = false;
            seen[i] = v.probeAnswers();
            allDead &= v.dead();
        }
        deadRounds = allAnswered && allDead ? deadRounds + 1 : 0;
        if (deadRounds >= 2) {
            stop.accept(new Stop(StopCause.HALTED, ExitStatus.OK, "the guest halted: every vCPU stopped with interrupts off"));
            return;
        }
        for (VcpuThread v : vcpus) v.probe();
        loop.schedule(PROBE_NANOS, this::tick);
    }
}
