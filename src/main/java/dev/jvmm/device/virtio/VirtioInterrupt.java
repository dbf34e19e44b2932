package dev.jvmm.device.virtio;

import dev.jvmm.device.IrqLine;

/**
 * How a virtio transport interrupts the guest. {@link #raise()} is called every time a used-buffer or
 * configuration-change notification is due: for an edge-triggered line (an irqfd), one write to the
 * eventfd. {@link #lower()} is called when the driver has acknowledged every pending interrupt bit
 * (or the device was reset): only level-triggered lines need it.
 * Called with the transport's lock held, on whichever thread caused the interrupt: it must not block.
 */
public interface VirtioInterrupt {
    void raise();

    default void lower() {
    }

    /** No interrupt at all (tests). */
    VirtioInterrupt NONE = () -> { };

    /** An edge: {@code raise} pulses the line (high then low). */
    static VirtioInterrupt edge(IrqLine line) {
        return () -> {
            line.set(true);
            line.set(false);
        };
    }

    /** A level: high while InterruptStatus is non-zero. */
    static VirtioInterrupt level(IrqLine line) {
        return new VirtioInterrupt() {
            @Override
            public void raise() {
                line.set(true);
            }

            @Override
            public void lower() {
                line.set(false);
            }
        };
    }
}
