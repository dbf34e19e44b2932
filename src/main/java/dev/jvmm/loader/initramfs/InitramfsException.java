package dev.jvmm.loader.initramfs;

import dev.jvmm.loader.LoadException;

/**
 * The initramfs of a {@code --rootfs} run cannot be made: a kernel without a readable release, a
 * missing or malformed module, an unwritable archive. The message is one line, fit for the user,
 * naming the file or directory at fault.
 */
public final class InitramfsException extends LoadException {
    public InitramfsException(String message) {
        super(message);
    }

    public InitramfsException(String message, Throwable cause) {
        super(message, cause);
    }
}
