package dev.jvmm.sys;

/**
 * A handle that owns one file descriptor: {@link #close} closes it once, and it reads as -1 after.
 * Messages (and {@link #toString}) call it by its description.
 */
public abstract sealed class OwnedFd implements AutoCloseable permits Tun, UnixSocket {
    /** Read without the lock on the data path, so a close is seen at once. */
    volatile int fd;
    final String description;

    OwnedFd(int fd, String description) {
        this.fd = fd;
        this.description = description;
    }

    /** What error messages call it: "tap NAME", "socket /path", "socketpair end 0". */
    public String description() {
        return description;
    }

    /** The descriptor, for poll(2); -1 once closed. */
    public synchronized int fd() {
        return fd;
    }

    @Override
    public synchronized void close() {
        if (fd >= 0) {
            LibC.close(fd);
            fd = -1;
        }
    }

    @Override
    public String toString() {
        return description;
    }
}
