package dev.jvmm.kvm;

import dev.jvmm.sys.Ioctl;
import dev.jvmm.sys.LibC;

import java.lang.foreign.MemorySegment;

/** A KVM ioctl that throws {@link KvmException}, named after the request, when it fails. */
final class KvmIoctl {
    private KvmIoctl() { }

    static int call(int fd, Ioctl.Request request, MemorySegment arg) {
        int rc = LibC.ioctl(fd, request.number(), arg);
        if (rc < 0) throw new KvmException(request.name(), LibC.errno());
        return rc;
    }

    static int call(int fd, Ioctl.Request request, long arg) {
        int rc = LibC.ioctl(fd, request.number(), arg);
        if (rc < 0) throw new KvmException(request.name(), LibC.errno());
        return rc;
    }
}
