package dev.jvmm.loader;

/** A kernel image that cannot be loaded. The message is one line, fit for the user, naming the file. */
public class LoadException extends Exception {
    public LoadException(String message) {
        super(message);
    }

    public LoadException(String message, Throwable cause) {
        super(message, cause);
    }
}
