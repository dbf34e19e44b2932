package dev.jvmm.memory;

/** A guest-physical access outside guest RAM. */
public class GuestMemoryException extends RuntimeException {
    public GuestMemoryException(String message) {
        super(message);
    }
}
