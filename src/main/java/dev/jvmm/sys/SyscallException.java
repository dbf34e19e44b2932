package dev.jvmm.sys;

/** A failed system call or ioctl: names the call and the errno. */
public class SyscallException extends RuntimeException {
    private final String call;
    private final int errno;

    public SyscallException(String call, int errno) {
        this(call, errno, null);
    }

    public SyscallException(String call, int errno, String detail) {
        super(call + " failed: " + Errno.describe(errno) + (detail == null ? "" : " " + detail));
        this.call = call;
        this.errno = errno;
    }

    public String call() {
        return call;
    }

    public int errno() {
        return errno;
    }
}
