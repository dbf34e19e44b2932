package dev.jvmm.host.vhost;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Numbers and payload layouts of the vhost-user protocol (QEMU's docs/interop/vhost-user.rst). Every
 * number is in the machine's byte order (little-endian here). A message is a 12-byte header
 * ({@code request u32, flags u32, size u32}) followed by {@code size} payload bytes; the payload starts
 * right after the header (the C struct is packed), so 64-bit fields in it are unaligned on the wire.
 *
 * <p>The payload structs are the kernel's vhost structs of {@code <linux/vhost_types.h>}; the header test
 * checks these layouts, {@link #VIRTIO_F_VERSION_1} and {@link #VHOST_F_LOG_ALL} against it. The other
 * numbers exist only in the specification.
 */
public final class VhostUserProtocol {
    private VhostUserProtocol() { }

    public static final int HEADER_BYTES = 12;
    /** Flags: the low two bits are the protocol version. */
    public static final int VERSION = 0x1, VERSION_MASK = 0x3;
    /** Set by the back end on every reply. */
    public static final int FLAG_REPLY = 0x4;
    /** With REPLY_ACK negotiated: asks for a u64 reply, 0 for success. */
    public static final int FLAG_NEED_REPLY = 0x8;

    /** SET_VRING_KICK/CALL/ERR u64 payload: bits 0-7 the queue index, bit 8 "no descriptor attached". */
    public static final long VRING_INDEX_MASK = 0xff, VRING_NOFD = 0x100;
    /** SET_MEM_TABLE carries at most this many regions (VHOST_MEMORY_BASELINE_NREGIONS). */
    public static final int MAX_MEM_REGIONS = 8;
    /** GET_CONFIG: the most config-space bytes one message asks for (QEMU's VHOST_USER_MAX_CONFIG_SIZE). */
    public static final int MAX_CONFIG_BYTES = 256;

    // ---- virtio feature bits (bit numbers) ----
    public static final int VIRTIO_F_VERSION_1 = 32;
    public static final int VHOST_F_LOG_ALL = 26;
    /** A reserved virtio bit reused by vhost-user: the back end speaks GET/SET_PROTOCOL_FEATURES. */
    public static final int VHOST_USER_F_PROTOCOL_FEATURES = 30;

    // ---- protocol feature bits (bit numbers) ----
    public static final int PROTOCOL_F_MQ = 0, PROTOCOL_F_LOG_SHMFD = 1, PROTOCOL_F_REPLY_ACK = 3,
            PROTOCOL_F_BACKEND_REQ = 5, PROTOCOL_F_CONFIG = 9, PROTOCOL_F_INBAND_NOTIFICATIONS = 14,
            PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15;

    /** The protocol features this front end implements, and so accepts when offered. */
    public static final long SUPPORTED_PROTOCOL_FEATURES =
            1L << PROTOCOL_F_MQ | 1L << PROTOCOL_F_REPLY_ACK | 1L << PROTOCOL_F_CONFIG;

    /** {@code struct vhost_vring_state}: SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE. */
    public static final StructLayout VHOST_VRING_STATE = MemoryLayout.structLayout(
            JAVA_INT.withName("index"), JAVA_INT.withName("num")).withName("vhost_vring_state");

    /** {@code struct vhost_vring_addr}: SET_VRING_ADDR; ring addresses are front-end virtual addresses. */
    public static final StructLayout VHOST_VRING_ADDR = MemoryLayout.structLayout(
            JAVA_INT.withName("index"), JAVA_INT.withName("flags"),
            JAVA_LONG.withName("desc_user_addr"), JAVA_LONG.withName("used_user_addr"),
            JAVA_LONG.withName("avail_user_addr"), JAVA_LONG.withName("log_guest_addr")).withName("vhost_vring_addr");

    /** A SET_MEM_TABLE region: the kernel's {@code vhost_memory_region}, whose flags_padding vhost-user uses as mmap offset. */
    public static final StructLayout VHOST_MEMORY_REGION = MemoryLayout.structLayout(
            JAVA_LONG.withName("guest_phys_addr"), JAVA_LONG.withName("memory_size"),
            JAVA_LONG.withName("userspace_addr"), JAVA_LONG.withName("mmap_offset")).withName("vhost_memory_region");

    /**
     * The SET_MEM_TABLE header, {@code struct vhost_memory} without its region array (which makes the C
     * struct 8-aligned, hence the explicit alignment).
     */
    public static final StructLayout VHOST_MEMORY = MemoryLayout.structLayout(
            JAVA_INT.withName("nregions"), JAVA_INT.withName("padding")).withByteAlignment(8).withName("vhost_memory");

    /** GET_CONFIG/SET_CONFIG header (QEMU's VhostUserConfig, not a kernel struct): then {@code size} bytes. */
    public static final StructLayout VHOST_USER_CONFIG = MemoryLayout.structLayout(
            JAVA_INT.withName("offset"), JAVA_INT.withName("size"), JAVA_INT.withName("flags")).withName("vhost_user_config");

    public static boolean has(long features, int bit) {
        return (features & (1L << bit)) != 0;
    }
}
