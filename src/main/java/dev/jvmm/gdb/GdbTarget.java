package dev.jvmm.gdb;

/**
 * What the stub debugs: a stopped machine of {@link #cpus()} vCPUs (gdb's threads 1..n). Every call
 * but {@link #interrupt} is made while the target is stopped, from the session's thread. A target
 * reports a stop after {@link #resume} or {@link #interrupt} through the listener given to
 * {@link #attach}, from any thread.
 */
public interface GdbTarget {
    enum Action { STOP, CONTINUE, STEP }

    interface Listener {
        /** Every vCPU has stopped, for this reason. */
        void stopped(StopEvent event);

        /** The machine ended with this exit status (no more calls will work). */
        void exited(int status);
    }

    int cpus();

    /**
     * Whether int3 breakpoints can work here; a KVM that emulates guest code cannot execute int3, so
     * the stub refuses Z0 there (gdb then says it cannot insert the breakpoint) rather than let the
     * guest die on it.
     */
    default boolean softwareBreakpoints() {
        return true;
    }

    /** A debugger attached; whether the machine was running when it did (then stop it). */
    void attach(Listener listener);

    /** Whether every vCPU is stopped now (a stop the listener has reported or will report). */
    boolean stopped();

    /** The register image ({@link X86Registers}) of a vCPU. */
    byte[] readRegisters(int cpu) throws TargetException;

    /** Sets a vCPU's registers from an image; registers whose value did not change are left alone. */
    void writeRegisters(int cpu, byte[] image) throws TargetException;

    /**
     * Reads guest memory at a virtual address, translated through the vCPU's page tables (physical
     * when its paging is off): up to the first byte that does not translate to RAM.
     */
    byte[] readMemory(int cpu, long address, int length);

    /** Writes guest memory at a virtual address; false, writing nothing, if some byte does not translate to RAM. */
    boolean writeMemory(int cpu, long address, byte[] data);

    /**
     * Lets the machine run: each vCPU as its action says, with the debug registers {@code dr}
     * (DR0-DR7) and software breakpoints (int3 exits) enabled on all of them; {@code swBreakpoints}
     * are the addresses of the debugger's int3s (any other int3 is the guest's own, to be delivered to it).
     */
    void resume(Action[] actions, long[] dr, java.util.Set<Long> swBreakpoints);

    /** Stops every vCPU (any thread); the listener hears an {@link StopEvent.Kind#INTERRUPT} stop. */
    void interrupt();

    /**
     * The debugger leaves: with every vCPU stopped (stopping them first if they run), {@code cleanUp}
     * runs (it restores the bytes software breakpoints replaced); then guest debugging is off and
     * every vCPU runs.
     */
    void detach(Runnable cleanUp);

    /** The debugger ends the run. */
    void kill();

    final class TargetException extends Exception {
        public TargetException(String message) {
            super(message);
        }
    }
}
