package dev.jvmm.vmm;

/** What ended a run; {@code --stats-json} records it, so a script can tell the guest's verdict from jvmm's. */
public enum StopCause {
    /** The guest powered off (ACPI S5, a system event) or the user quit with Ctrl-A x. */
    POWER_OFF,
    /** The guest reset the machine (i8042, ACPI reset, reset vector); --on-reboot decides what follows. */
    RESET,
    /** Every vCPU halted with interrupts off. */
    HALTED,
    /** The guest wrote to isa-debug-exit. */
    DEBUG_EXIT,
    /** A --rootfs run's command ended: the guest init reported its exit status on the command-status port. */
    COMMAND_EXITED,
    /** The console output matched --expect. */
    EXPECT_MATCHED,
    /** --timeout passed. */
    TIMEOUT,
    /** SIGINT or SIGTERM. */
    SIGNAL,
    /** The guest kernel panicked (pvpanic, or the panic line on its console). */
    GUEST_PANIC,
    /** A --fail-on pattern matched the console output. */
    FAIL_ON,
    /** The guest triple-faulted or reported a crash. */
    GUEST_CRASH,
    /** KVM could not enter the guest. */
    FAIL_ENTRY,
    /** KVM reported an internal error (e.g. an instruction it cannot emulate). */
    KVM_INTERNAL_ERROR,
    /** The guest's output could not be written (stdout closed, --serial-log on a full disk). */
    OUTPUT_FAILED,
    /** A device's host side (a tap, a back-end process) failed. */
    BACKEND_FAILED,
    /** A stop request on the control socket (--api-socket). */
    API_STOP,
    /** The debugger attached to --gdb killed the run (gdb's kill, the k packet). */
    GDB_KILL,
    /** jvmm itself failed: a bug or an unexpected KVM error. */
    VMM_ERROR;

    /** The name used in --stats-json, e.g. "debug_exit". */
    public String jsonName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
