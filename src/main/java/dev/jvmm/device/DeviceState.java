package dev.jvmm.device;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * A device model whose state a snapshot saves: {@link #saveState} gives it as bytes in the device's
 * own versioned format, {@link #loadState} sets it back. Loading never trusts the bytes: a state
 * of another version, a truncated one, or one with a value the model cannot hold is an
 * {@link IllegalArgumentException} naming the device, and the device is left as it was.
 *
 * <p>A device with no state of its own (a port that only stops the run, a sink) is {@link Stateless}.
 */
public interface DeviceState {
    byte[] saveState();

    void loadState(byte[] state);

    /**
     * Why the device's state cannot be saved now (a back end outside jvmm, work in progress), or null
     * when {@link #saveState} can: a snapshot is then refused, naming the device and this reason.
     */
    default String snapshotRefusal() {
        return null;
    }

    /** A device with nothing to save: the snapshot records it and moves on. */
    interface Stateless { }

    /**
     * Reads {@code state} with {@code read}, after checking its version byte; a short buffer or bytes
     * left over become an {@link IllegalArgumentException} naming {@code device}.
     */
    static void read(String device, byte[] state, int version, Consumer<ByteBuffer> read) {
        if (state == null || state.length == 0) throw new IllegalArgumentException(device + ": empty state");
        if (state[0] != version) throw new IllegalArgumentException(device + ": state version " + state[0] + ", this jvmm reads " + version);
        ByteBuffer b = ByteBuffer.wrap(state, 1, state.length - 1);
        try {
            read.accept(b);
        } catch (BufferUnderflowException e) {
            throw new IllegalArgumentException(device + ": state truncated (" + state.length + " bytes)");
        }
        if (b.hasRemaining()) throw new IllegalArgumentException(device + ": " + b.remaining() + " bytes after the state");
    }

    /** {@code v}, checked to be in [{@code min}, {@code max}]. */
    static int check(String device, String field, int v, int min, int max) {
        if (v < min || v > max) throw new IllegalArgumentException(device + ": " + field + " " + v + " is outside " + min + ".." + max);
        return v;
    }
}
