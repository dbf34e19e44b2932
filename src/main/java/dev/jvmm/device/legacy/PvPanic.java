package dev.jvmm.device.legacy;

import dev.jvmm.arch.x86.PcPlatform;
import dev.jvmm.device.BusDevice;

import java.util.Objects;

/**
 * QEMU's pvpanic ISA device (one port, {@link PcPlatform#PVPANIC_PORT}; ACPI id QEMU0001, which Linux's
 * pvpanic drivers bind): a read tells the guest which events the device supports, a write reports
 * one. A guest kernel that panics writes {@link #PANICKED}; one that is about to boot a crash kernel
 * (kdump) writes {@link #CRASH_LOADED} first.
 */
public final class PvPanic implements BusDevice, dev.jvmm.device.DeviceState.Stateless {
    public static final int PORT = PcPlatform.PVPANIC_PORT;
    public static final int PANICKED = 1, CRASH_LOADED = 2;

    /** What a panic report does (ends the run). Called on the writing vCPU's thread. */
    @FunctionalInterface
    public interface Listener {
        void panicked(String how);
    }

    private final Listener listener;

    public PvPanic(Listener listener) {
        this.listener = Objects.requireNonNull(listener, "listener");
    }

    @Override
    public long read(long offset, int size) {
        return PANICKED | CRASH_LOADED;
    }

    @Override
    public void write(long offset, int size, long value) {
        if ((value & PANICKED) != 0) listener.panicked("the guest kernel panicked (pvpanic)");
        else if ((value & CRASH_LOADED) != 0) listener.panicked("the guest kernel panicked and loads its crash kernel (pvpanic)");
    }
}
