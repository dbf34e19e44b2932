package dev.jvmm.vmm;

import java.util.List;

/**
 * jvmm's process exit statuses, and their descriptions for {@code jvmm run --help} (the README's
 * "Exit codes" table says the same). jvmm's own codes are even, so they never collide with
 * isa-debug-exit's odd {@code (v << 1) | 1}.
 */
public final class ExitStatus {
    private ExitStatus() { }

    /** The guest powered off or reset the machine (i8042 reset, ACPI/system event), or the user quit with Ctrl-A x. */
    public static final int OK = 0;
    /** Bad command line: unknown option, malformed size or duration, out-of-range value. */
    public static final int USAGE = 2;
    /** The kernel, an initrd/module or a disk image cannot be loaded: missing, empty, truncated, too big, wrong format, in use. */
    public static final int BAD_IMAGE = 4;
    /**
     * This host cannot run VMs: no /dev/kvm, no permission, a missing KVM capability, no memory; or a device's host side
     * fails, at the start or mid-run: a tap, a vhost-user back end (virtiofsd), passt for --net user (missing, not
     * starting, killed or closing its socket, unless the net is optional), a --vsock socket that cannot be made.
     */
    public static final int HOST_UNSUITABLE = 6;
    /** The guest triple-faulted (KVM_EXIT_SHUTDOWN) or reported a crash. */
    public static final int GUEST_SHUTDOWN = 8;
    /** KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY). */
    public static final int FAIL_ENTRY = 10;
    /** KVM reported an internal error (KVM_EXIT_INTERNAL_ERROR), e.g. an instruction it could not emulate. */
    public static final int INTERNAL_ERROR = 12;
    /** jvmm itself failed: an unexpected ioctl failure, an exit it does not handle, a bug. */
    public static final int VMM_ERROR = 14;
    /** --expect was given and the guest stopped (with status 0) before its output matched. */
    public static final int EXPECT_UNMATCHED = 16;
    /** The guest's output could not be written: stdout closed (EPIPE), --serial-log on a full disk (ENOSPC), ... */
    public static final int OUTPUT_FAILED = 18;
    /** The guest kernel panicked (pvpanic, or its "Kernel panic - not syncing" line), even if it then rebooted. */
    public static final int GUEST_PANIC = 20;
    /** A --fail-on pattern matched a line of the console output. */
    public static final int FAIL_ON_MATCHED = 22;
    /** The debugger attached to --gdb killed the run (gdb's {@code kill}). */
    public static final int GDB_KILL = 24;
    /** --timeout passed before the guest stopped (the value timeout(1) uses). */
    public static final int TIMEOUT = 124;
    /** SIGINT / SIGTERM (128 + signal number). */
    public static final int SIGINT = 130, SIGTERM = 143;

    /** One line per status for the help text: "  CODE  meaning". */
    public static final List<String> HELP = List.of(
            "  0    the guest powered off or reset the machine, or Ctrl-A x",
            "  odd  isa-debug-exit: the guest wrote v to port 0xf4: (v << 1) | 1",
            "  " + pad(USAGE) + "bad command line",
            "  " + pad(BAD_IMAGE) + "the kernel, an initrd or a disk image cannot be loaded (or is in use)",
            "  " + pad(HOST_UNSUITABLE) + "this host cannot run VMs (no /dev/kvm, permission, capability), or a tap, virtiofsd,",
            "       passt (--net user) or the --vsock socket fails, at the start or mid-run",
            "  " + pad(GUEST_SHUTDOWN) + "the guest triple-faulted (KVM_EXIT_SHUTDOWN)",
            "  " + pad(FAIL_ENTRY) + "KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY)",
            "  " + pad(INTERNAL_ERROR) + "KVM internal error, e.g. an instruction it cannot emulate",
            "  " + pad(VMM_ERROR) + "jvmm failed (a bug or an unexpected KVM error)",
            "  " + pad(EXPECT_UNMATCHED) + "--expect: the guest stopped before its output matched",
            "  " + pad(OUTPUT_FAILED) + "the guest's output could not be written (stdout closed, disk full)",
            "  " + pad(GUEST_PANIC) + "the guest kernel panicked (even if it rebooted after)",
            "  " + pad(FAIL_ON_MATCHED) + "--fail-on matched a line of the console output",
            "  " + pad(GDB_KILL) + "the debugger attached with --gdb killed the run",
            "  " + pad(TIMEOUT) + "--timeout passed",
            "  " + pad(SIGINT) + "SIGINT, " + SIGTERM + " SIGTERM",
            "With --rootfs and a COMMAND, jvmm's status is the command's (0-255, 128+n for a signal);",
            "  125  the guest could not run it (no root, a module missing, the guest stopped first),",
            "  126  it cannot be executed, 127 it was not found. --stats-json's ended_by tells them from jvmm's own.");

    private static String pad(int status) {
        return (status + "     ").substring(0, 5); // not String.format: its Formatter and locale data cost start-up time
    }
}
