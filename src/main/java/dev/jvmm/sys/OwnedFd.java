package dev.jvmm.sys;

/** A handle that owns one file descriptor: {@link #close} closes it once, and it reads as -1 after. */
public abstract sealed class OwnedFd implements AutoCloseable permits Tun, UnixSocket {
    /** Read without the lock on the data path, so a close is seen at once. */
    volatile int fd;

    OwnedFd(int fd) {
        this.fd = fd;
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
}
