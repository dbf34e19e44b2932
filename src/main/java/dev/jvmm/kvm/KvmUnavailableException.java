package dev.jvmm.kvm;

/** /dev/kvm cannot be used at all on this host: missing, no permission, wrong API, missing capability. */
public class KvmUnavailableException extends Exception {
    public KvmUnavailableException(String message) {
        super(message);
    }
}
