package dev.jvmm.sys;

/** A failed system call or ioctl: its message names the call; {@link #errno} says why. */
public class SyscallException extends RuntimeException {
    private final int errno;

    public SyscallException(String call, int errno) {
        this(call, errno, null);
    }

    public SyscallException(String call, int errno, String detail) {
        super(call + " failed: " + Errno.describe(errno) + (detail == null ? "" : " " + detail));
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }
}
