package dev.jvmm.device.legacy;

import dev.jvmm.device.BusDevice;

/**
 * Ports that are deliberately ignored, such as 0x80 (POST codes, also used by guests as an I/O
 * delay). Registering them keeps such accesses from being logged as unhandled. Reads return 0.
 */
public final class PortSink implements BusDevice, dev.jvmm.device.DeviceState.Stateless {
    @Override
    public long read(long offset, int size) {
        return 0;
    }

    @Override
    public void write(long offset, int size, long value) {
    }
}
