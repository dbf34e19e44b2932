package dev.jvmm.device.legacy;

import dev.jvmm.arch.x86.PcPlatform;

import dev.jvmm.device.BusDevice;
import dev.jvmm.device.StopRequest;

import java.util.Objects;

/**
 * QEMU's isa-debug-exit, by convention one port at 0xf4: lets a test guest end the run with a
 * status. Writing {@code v} stops the VM with exit status {@code (v << 1) | 1}, so a guest can
 * never produce 0 and a clean shutdown stays distinguishable.
 *
 * <p>Only the low byte of the written value counts, whatever the access size (QEMU would use the
 * full value for a wider iosize; a byte is what every known guest writes, and 8 bits is all a
 * process exit status can carry anyway). Reads return all ones, like an empty ISA bus.
 */
public final class DebugExit implements BusDevice, dev.jvmm.device.DeviceState.Stateless {
    /** The port QEMU's test setups (and this VMM) put it at. */
    public static final int DEFAULT_PORT = PcPlatform.DEBUG_EXIT_PORT;

    private final StopRequest stop;

    public DebugExit(StopRequest stop) {
        this.stop = Objects.requireNonNull(stop, "stop");
    }

    /** The exit status a guest write of {@code value} produces. */
    public static int exitStatus(long value) {
        return (int) ((value & 0xff) << 1) | 1;
    }

    @Override
    public long read(long offset, int size) {
        return size >= 8 ? -1L : (1L << (size * 8)) - 1;
    }

    @Override
    public void write(long offset, int size, long value) {
        int v = (int) (value & 0xff);
        // not String.format: a Formatter's first use, in the interpreter, delayed the end of every such run
        stop.stop(exitStatus(v), "guest wrote 0x" + java.util.HexFormat.of().toHexDigits((byte) v) + " to isa-debug-exit");
    }
}
