package dev.jvmm.device;

/** An interrupt line as a device sees it: the device sets its level; the VM decides how to deliver it. */
@FunctionalInterface
public interface IrqLine {
    void set(boolean high);

    /** A line connected to nothing, for tests and devices without an interrupt. */
    IrqLine NONE = high -> { };
}
