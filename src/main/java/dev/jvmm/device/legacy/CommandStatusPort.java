package dev.jvmm.device.legacy;

import dev.jvmm.device.BusDevice;

import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The command-status port of {@code --rootfs} runs: four write-only bytes at {@link #PORT} (the
 * rootfs init's {@code STATUS_PORT}), where the guest init reports how the command ended with one
 * 32-bit {@code outl}, after sync and before it powers off.
 *
 * <p>The value is the command's exit status: 0-255, 128+N when signal N killed it, or the init's own
 * 125 (the guest could not be set up), 126 (cannot execute), 127 (not found). The init never writes
 * more than 255, so a larger value is a guest gone wrong: it is reported as {@link #INVALID_STATUS}
 * (125, the init's own "the guest failed"), never masked to its low byte, which could turn garbage
 * such as 0x100 into a success.
 *
 * <p>Only the first 32-bit write at offset 0 counts: the init writes once, and the run's verdict is
 * the first one. Writes of another size or at another offset, and later writes, are ignored (and
 * counted). Reads return all ones, like an empty ISA port.
 *
 * <p>Offset {@link #PHASE_OFFSET} (port 0x524) takes one-byte writes of the init's milestones, for the
 * run's timeline: {@link #PHASE_INIT} .. {@link #PHASE_COMMAND_EXITED}. Each counts once, when it comes;
 * any other value is ignored (and counted).
 */
public final class CommandStatusPort implements BusDevice {
    /** I/O port 0x520, RootfsInit.STATUS_PORT. */
    public static final int PORT = 0x520;
    public static final int LENGTH = 8;
    /** The phase byte's offset: port 0x524, RootfsInit.PHASE_PORT. */
    public static final int PHASE_OFFSET = 4;
    /** The init started; its new root is mounted and entered; the command was exec'ed; it ended. */
    public static final int PHASE_INIT = 1, PHASE_ROOT = 2, PHASE_COMMAND_STARTED = 3, PHASE_COMMAND_EXITED = 4;
    /** The largest exit status a process can have. */
    public static final int MAX_STATUS = 255;
    /** What a value above {@link #MAX_STATUS} is reported as: RootfsInit.EXIT_SETUP_FAILED. */
    public static final int INVALID_STATUS = 125;

    /** Hears the command's end. */
    @FunctionalInterface
    public interface Listener {
        /**
         * The guest reported {@code status} (0-255), {@code reason} says it in words. Called once, on
         * the writing vCPU's thread; the guest waits until it returns, so the VMM may hold the vCPU
         * here (checking for the run's end) until the command's last output is out.
         */
        void exited(int status, String reason);
    }

    private final Listener listener;
    private final java.util.function.IntConsumer phases;
    private final AtomicBoolean reported = new AtomicBoolean();
    private final AtomicLong ignored = new AtomicLong();

    public CommandStatusPort(Listener listener) {
        this(listener, phase -> { });
    }

    /** @param phases hears each milestone the init reports (1-4), on the writing vCPU's thread; it must be quick */
    public CommandStatusPort(Listener listener, java.util.function.IntConsumer phases) {
        this.listener = Objects.requireNonNull(listener, "listener");
        this.phases = Objects.requireNonNull(phases, "phases");
    }

    /** Whether the guest has reported a status. */
    public boolean reported() {
        return reported.get();
    }

    /** Writes that did not count: wrong size or offset, or after the first. */
    public long ignoredWrites() {
        return ignored.get();
    }

    @Override
    public long read(long offset, int size) {
        return size >= 8 ? -1L : (1L << (size * 8)) - 1;
    }

    @Override
    public void write(long offset, int size, long value) {
        if (offset == PHASE_OFFSET && size == 1 && value >= PHASE_INIT && value <= PHASE_COMMAND_EXITED) {
            phases.accept((int) value);
            return;
        }
        if (offset != 0 || size != 4 || !reported.compareAndSet(false, true)) {
            ignored.incrementAndGet();
            return;
        }
        long v = value & 0xffff_ffffL;
        if (v > MAX_STATUS) {
            listener.exited(INVALID_STATUS, String.format("the guest reported exit status %d (0x%x), more than %d: counted as %d",
                    v, v, MAX_STATUS, INVALID_STATUS));
            return;
        }
        listener.exited((int) v, describe((int) v));
    }

    /** "the command exited with status 137 (128 + signal 9)" */
    public static String describe(int status) {
        String what = switch (status) {
            case 125 -> " (the guest could not be set up)";
            case 126 -> " (the command cannot be executed)";
            case 127 -> " (the command was not found)";
            default -> status > 128 && status < 128 + 65 ? " (128 + signal " + (status - 128) + ")" : "";
        };
        return "the command exited with status " + status + what;
    }
}
