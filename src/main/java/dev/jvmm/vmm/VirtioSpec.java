package dev.jvmm.vmm;

import java.nio.file.Path;

/** A virtio device the user asked for on the command line. */
public sealed interface VirtioSpec {
    /** {@code --disk PATH[,ro][,id=NAME]}: a virtio-blk device over a raw image file. */
    record Disk(Path image, boolean readOnly, String id) implements VirtioSpec { }

    /** {@code --rng}: a virtio-rng device fed from the host's SecureRandom. */
    record Rng() implements VirtioSpec { }

    /** {@code --console=virtio}: the console on a virtio-console device (hvc0 in Linux). */
    record Console() implements VirtioSpec { }

    /** The device's short name in stats and logs. */
    default String kind() {
        return switch (this) {
            case Disk d -> "virtio-blk";
            case Rng r -> "virtio-rng";
            case Console c -> "virtio-console";
        };
    }
}
