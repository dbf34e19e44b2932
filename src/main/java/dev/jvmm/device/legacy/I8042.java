package dev.jvmm.device.legacy;

import dev.jvmm.arch.x86.PcPlatform;

import dev.jvmm.device.BusDevice;
import dev.jvmm.device.StopRequest;

import java.util.Objects;

/**
 * Just enough of the i8042 keyboard controller for guests to reset the machine through it and for
 * Linux to probe it without hanging. There is no keyboard or mouse behind it: writes to the
 * devices are swallowed and never answered, so the guest's driver times out and moves on.
 *
 * <p>Register it at base 0x60, length 5: offset 0 is the data port (0x60), offset 4 the
 * status/command port (0x64); offsets 1-3 (ports 0x61-0x63, not ours) read all ones.
 *
 * <p>The machine is reset by command 0xfe (or any other even command in 0xf0-0xfe, which pulse
 * output lines including the reset line) or by writing the output port (command 0xd1) with bit 0
 * clear. Either calls the {@link StopRequest} with status 0, without this object's lock held.
 */
public final class I8042 implements BusDevice, dev.jvmm.device.DeviceState {
    /** Where a PC has it, and how long to register it. */
    public static final int BASE_PORT = PcPlatform.I8042_DATA_PORT;
    public static final int LENGTH = 5;

    static final int DATA = 0, STATUS_COMMAND = 4;

    // Status register bits.
    static final int STATUS_OBF = 0x01, STATUS_IBF = 0x02, STATUS_SYS = 0x04, STATUS_CMD = 0x08,
            STATUS_UNLOCKED = 0x10;
    // Command byte bits the enable/disable commands change.
    static final int CB_KBD_DISABLED = 0x10, CB_AUX_DISABLED = 0x20;

    static final int CMD_READ_CB = 0x20, CMD_WRITE_CB = 0x60, CMD_AUX_DISABLE = 0xa7, CMD_AUX_ENABLE = 0xa8,
            CMD_SELF_TEST = 0xaa, CMD_KBD_TEST = 0xab, CMD_KBD_DISABLE = 0xad, CMD_KBD_ENABLE = 0xae,
            CMD_WRITE_OUTPUT_PORT = 0xd1, CMD_WRITE_AUX_OBUF = 0xd3, CMD_WRITE_AUX = 0xd4, CMD_PULSE_RESET = 0xfe;

    static final String RESET_REASON = "guest reset the machine via the i8042";

    private final StopRequest stop;

    /** Keyboard interrupt enabled, system flag set, translation on: what firmware leaves behind. */
    private int commandByte = 0x45;
    private int status = STATUS_SYS | STATUS_UNLOCKED;
    private int outputBuffer;
    /** The command whose data byte the next data-port write is, or 0. */
    private int pendingCommand;

    public I8042(StopRequest stop) {
        this.stop = Objects.requireNonNull(stop, "stop");
    }

    /**
     * The controller's status/command port (0x64) as a device of its own, for a bus where port 0x61
     * (between the two) belongs to someone else: offset 0 there is {@link #STATUS_COMMAND} here.
     */
    public BusDevice commandPort() {
        return new BusDevice() {
            @Override
            public long read(long offset, int size) {
                return I8042.this.read(offset + STATUS_COMMAND, size);
            }

            @Override
            public void write(long offset, int size, long value) {
                I8042.this.write(offset + STATUS_COMMAND, size, value);
            }
        };
    }

    @Override
    public long read(long offset, int size) {
        synchronized (this) {
            if (offset == DATA) {
                status &= ~STATUS_OBF;
                return outputBuffer;
            }
            if (offset == STATUS_COMMAND) {
                return status;
            }
        }
        return size >= 8 ? -1L : (1L << (size * 8)) - 1;
    }

    @Override
    public void write(long offset, int size, long value) {
        int v = (int) (value & 0xff);
        boolean reset;
        synchronized (this) {
            if (offset == DATA) {
                reset = writeData(v);
            } else if (offset == STATUS_COMMAND) {
                reset = command(v);
            } else {
                reset = false;
            }
        }
        if (reset) {
            stop.stop(0, RESET_REASON);
        }
    }

    /** Returns whether the write resets the machine. */
    private boolean command(int cmd) {
        status |= STATUS_CMD;
        pendingCommand = 0;
        switch (cmd) {
            case CMD_READ_CB -> output(commandByte);
            case CMD_WRITE_CB, CMD_WRITE_OUTPUT_PORT, CMD_WRITE_AUX_OBUF, CMD_WRITE_AUX -> pendingCommand = cmd;
            case CMD_AUX_DISABLE -> commandByte |= CB_AUX_DISABLED;
            case CMD_AUX_ENABLE -> commandByte &= ~CB_AUX_DISABLED;
            case CMD_SELF_TEST -> {
                status |= STATUS_SYS;
                output(0x55);
            }
            case CMD_KBD_TEST -> output(0x00);
            case CMD_KBD_DISABLE -> commandByte |= CB_KBD_DISABLED;
            case CMD_KBD_ENABLE -> commandByte &= ~CB_KBD_DISABLED;
            default -> {
                // 0xf0-0xff pulse the output lines whose bits are clear; bit 0 is the reset line.
                return (cmd & 0xf0) == 0xf0 && (cmd & 1) == 0;
            }
        }
        return false;
    }

    private boolean writeData(int v) {
        status &= ~STATUS_CMD;
        int cmd = pendingCommand;
        pendingCommand = 0;
        switch (cmd) {
            case CMD_WRITE_CB -> {
                commandByte = v;
                status = (status & ~STATUS_SYS) | (v & STATUS_SYS);   // the SYS flag mirrors bit 2
            }
            case CMD_WRITE_OUTPUT_PORT -> {
                return (v & 1) == 0;
            }
            default -> { }   // aux data, aux loopback or keyboard data: nobody is there
        }
        return false;
    }

    private void output(int b) {
        outputBuffer = b;
        status |= STATUS_OBF;
    }

    // ---- snapshot state ----

    private static final int STATE_VERSION = 1;

    @Override
    public synchronized byte[] saveState() {
        return java.nio.ByteBuffer.allocate(1 + 4 * 4).put((byte) STATE_VERSION).putInt(commandByte).putInt(status).putInt(outputBuffer)
                .putInt(pendingCommand).array();
    }

    @Override
    public void loadState(byte[] state) {
        int[] v = new int[4];
        dev.jvmm.device.DeviceState.read("i8042", state, STATE_VERSION, b -> {
            for (int i = 0; i < v.length; i++) v[i] = b.getInt();
        });
        for (int i = 0; i < v.length; i++) dev.jvmm.device.DeviceState.check("i8042", "register " + i, v[i], 0, 0xff);
        synchronized (this) {
            commandByte = v[0];
            status = v[1];
            outputBuffer = v[2];
            pendingCommand = v[3];
        }
    }
}
