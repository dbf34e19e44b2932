package dev.jvmm.kvm;

import dev.jvmm.sys.Errno;
import dev.jvmm.sys.Ioctl;
import dev.jvmm.sys.LibC;

import java.lang.foreign.MemorySegment;

/**
 * A KVM ioctl that throws {@link KvmException}, named after the request, when it fails. One that a
 * signal interrupted (EINTR) is made again: it did nothing, and the signal was someone else's business
 * (KVM_CREATE_VM, for one, gives up with EINTR whenever a signal is pending while it registers with the
 * memory manager: a profiler's or a debugger's, SIGCHLD from a helper). KVM_RUN, whose EINTR is the
 * kick that stops a vCPU, does not come here.
 */
final class KvmIoctl {
    private KvmIoctl() { }

    static int call(int fd, Ioctl.Request request, MemorySegment arg) {
        while (true) {
            int rc = LibC.ioctl(fd, request.number(), arg);
            if (rc >= 0) return rc;
            int errno = LibC.errno();
            if (errno != Errno.EINTR) throw new KvmException(request.name(), errno);
        }
    }

    static int call(int fd, Ioctl.Request request, long arg) {
        while (true) {
            int rc = LibC.ioctl(fd, request.number(), arg);
            if (rc >= 0) return rc;
            int errno = LibC.errno();
            if (errno != Errno.EINTR) throw new KvmException(request.name(), errno);
        }
    }
}
