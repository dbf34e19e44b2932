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

    private static final class Calls {
        static final MethodHandle MEMFD_CREATE = LibC.withErrno("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle FTRUNCATE = LibC.withErrno("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    }

    /**
     * A new, empty memfd, close-on-exec (children get it only by being handed it).
     * @param name what /proc/PID/fd and /proc/PID/maps show ("memfd:NAME"); no meaning otherwise
     */
    public static int create(String name) {
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            fd = (int) Calls.MEMFD_CREATE.invokeExact(LibC.capture(), arena.allocateFrom(name), MFD_CLOEXEC);
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
            rc = (int) Calls.FTRUNCATE.invokeExact(LibC.capture(), fd, size);
        } catch (Throwable t) {
            throw t instanceof RuntimeException r ? r : new IllegalStateException(t);
        }
        if (rc < 0) throw new SyscallException("ftruncate(" + size + ")", LibC.errno());
    }
}
