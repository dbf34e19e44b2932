package dev.jvmm.vmm;

/**
 * Why a run ended and with which exit status: the first stop requested wins.
 *
 * @param reason one line for the user and the stats
 * @param detail more lines (a register dump), or null; shown with the reason when the run failed
 * @param error  the exception behind a VMM error, or null; its stack trace is shown only with -v
 */
public record Stop(StopCause cause, int exitStatus, String reason, String detail, Throwable error) {
    public Stop(StopCause cause, int exitStatus, String reason) {
        this(cause, exitStatus, reason, null, null);
    }

    public boolean reset() {
        return cause == StopCause.RESET;
    }

    public boolean expectMatched() {
        return cause == StopCause.EXPECT_MATCHED;
    }

    /** Whether the user should be told why (the guest's own verdicts and clean ends are not errors). */
    public boolean worthReporting() {
        return exitStatus != ExitStatus.OK && cause != StopCause.DEBUG_EXIT && cause != StopCause.COMMAND_EXITED;
    }
}
