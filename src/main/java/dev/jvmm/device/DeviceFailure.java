package dev.jvmm.device;

/** How a device's host side (a tap, a back-end process, a socket) ends the run when it fails for good. */
@FunctionalInterface
public interface DeviceFailure {
    /** @param reason one line for the user, naming the device and what failed */
    void failed(String reason);
}
