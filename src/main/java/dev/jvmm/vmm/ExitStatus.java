package dev.jvmm.vmm;

/**
 * jvmm's process exit statuses; the README's "Exit codes" table lists the same. jvmm's own codes are
 * even, so they never collide with isa-debug-exit's odd {@code (v << 1) | 1}.
 */
public final class ExitStatus {
    private ExitStatus() { }

    /** The guest powered off or reset the machine (i8042 reset, ACPI/system event), or the user quit with Ctrl-A x. */
    public static final int OK = 0;
    /** Bad command line: unknown option, malformed size or duration, out-of-range value. */
    public static final int USAGE = 2;
    /** The kernel or an initrd/module cannot be loaded: missing, empty, truncated, too big, wrong format. */
    public static final int BAD_IMAGE = 4;
    /** This host cannot run VMs: no /dev/kvm, no permission, a missing KVM capability, no memory. */
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
    /** --timeout passed before the guest stopped (the value timeout(1) uses). */
    public static final int TIMEOUT = 124;
    /** SIGINT / SIGTERM (128 + signal number). */
    public static final int SIGINT = 130, SIGTERM = 143;

    /** What the isa-debug-exit port makes of a written value v. */
    public static int debugExit(long v) {
        return (int) (((v & 0xff) << 1) | 1);
    }
}
