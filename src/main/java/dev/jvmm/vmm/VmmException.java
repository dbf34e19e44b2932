package dev.jvmm.vmm;

/** A run that cannot start or go on, with the exit status it maps to and a one-line message. */
public class VmmException extends Exception {
    private final int exitStatus;

    public VmmException(int exitStatus, String message) {
        super(message);
        this.exitStatus = exitStatus;
    }

    public VmmException(int exitStatus, String message, Throwable cause) {
        super(message, cause);
        this.exitStatus = exitStatus;
    }

    public int exitStatus() {
        return exitStatus;
    }
}
