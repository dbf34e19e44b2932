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

    /**
     * {@code --net tap=NAME[,mac=MAC]}: a virtio-net device on the host's tap device NAME; {@code mac}
     * (6 bytes) is the guest's address, or null for one derived from the tap name ({@link #defaultMac}).
     */
    record Net(String tap, byte[] mac) implements VirtioSpec {
        public Net {
            if (mac != null && mac.length != 6) throw new IllegalArgumentException("a MAC address has 6 bytes");
            mac = mac == null ? null : mac.clone();
        }

        @Override
        public byte[] mac() {
            return mac == null ? null : mac.clone();
        }

        /** The MAC the guest gets: the given one, else {@code 52:54:00:xx:xx:xx} from a CRC-32 of the tap name. */
        public byte[] effectiveMac() {
            return mac != null ? mac.clone() : defaultMac(tap);
        }

        /** A locally administered unicast address (52:54:00 as QEMU and libvirt use) stable for a tap name. */
        public static byte[] defaultMac(String tap) {
            java.util.zip.CRC32 crc = new java.util.zip.CRC32();
            crc.update(tap.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            long h = crc.getValue();
            return new byte[] {0x52, 0x54, 0x00, (byte) (h >> 16), (byte) (h >> 8), (byte) h};
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Net n && tap.equals(n.tap) && java.util.Arrays.equals(mac, n.mac);
        }

        @Override
        public int hashCode() {
            return tap.hashCode() * 31 + java.util.Arrays.hashCode(mac);
        }

        @Override
        public String toString() {
            return "Net[tap=" + tap + ", mac=" + (mac == null ? "default" : formatMac(mac)) + "]";
        }
    }

    /** "52:54:00:12:34:56" */
    static String formatMac(byte[] mac) {
        StringBuilder sb = new StringBuilder();
        for (byte b : mac) sb.append(sb.isEmpty() ? "" : ":").append(String.format("%02x", b & 0xff));
        return sb.toString();
    }

    /** The device's short name in stats and logs. */
    default String kind() {
        return switch (this) {
            case Disk d -> "virtio-blk";
            case Rng r -> "virtio-rng";
            case Console c -> "virtio-console";
            case Net n -> "virtio-net";
        };
    }
}
