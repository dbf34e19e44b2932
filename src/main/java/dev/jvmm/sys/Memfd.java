package dev.jvmm.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Anonymous shared memory files ({@code memfd_create(2)}): memory with a descriptor, so another process
 * (a vhost-user back end) can map the same pages after receiving it over a UNIX socket.
 */
public final class Memfd {
    private Memfd() { }

    public static final int MFD_CLOEXEC = 1;

    /**
     * A new, empty memfd, close-on-exec (children get it only by being handed it).
     * @param name what /proc/PID/fd and /proc/PID/maps show ("memfd:NAME"); no meaning otherwise
     */
    public static int create(String name) {
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            fd = (int) LibC.syscall(LibC.SYS_MEMFD_CREATE, LibC.addr(arena.allocateFrom(name)), MFD_CLOEXEC, 0);
        } catch (Throwable t) {
            throw t instanceof RuntimeException r ? r : new IllegalStateException(t);
        }
        if (fd < 0) throw new SyscallException("memfd_create(" + name + ")", LibC.errno());
        return fd;
    }

    /** Sets the file's size; pages are allocated only when touched. */
    public static void truncate(int fd, long size) {
        int rc;
        try {
            rc = (int) LibC.syscall(LibC.SYS_FTRUNCATE, fd, size, 0);
        } catch (Throwable t) {
            throw t instanceof RuntimeException r ? r : new IllegalStateException(t);
        }
        if (rc < 0) throw new SyscallException("ftruncate(" + size + ")", LibC.errno());
    }
}
