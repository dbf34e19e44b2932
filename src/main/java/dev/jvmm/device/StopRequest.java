package dev.jvmm.device;

/** How a device asks the VMM to end the run (debug-exit port, i8042 reset, ...). */
@FunctionalInterface
public interface StopRequest {
    /**
     * @param exitStatus the process exit status jvmm should end with
     * @param reason one line for the log and stats, e.g. "guest wrote 0x10 to isa-debug-exit"
     */
    void stop(int exitStatus, String reason);
}
