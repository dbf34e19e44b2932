package dev.jvmm.kvm;

import dev.jvmm.sys.SyscallException;

/** A failed KVM ioctl; the message names the ioctl and the errno, e.g. "KVM_CREATE_VCPU failed: ...". */
public class KvmException extends SyscallException {
    public KvmException(String ioctl, int errno) {
        super(ioctl, errno);
    }

    public KvmException(String ioctl, int errno, String detail) {
        super(ioctl, errno, detail);
    }
}
