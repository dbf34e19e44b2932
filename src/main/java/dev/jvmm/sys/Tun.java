package dev.jvmm.sys;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A Linux tap device ({@code /dev/net/tun}, {@code <linux/if_tun.h>}) opened for Ethernet frames with
 * a 12-byte {@code virtio_net_hdr_v1} in front of each one (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
 * TUNSETVNETHDRSZ 12) and no offloads (TUNSETOFFLOAD 0: the host stack hands over complete frames with
 * checksums filled in, and accepts only such frames). One {@code read} returns one header and frame,
 * one {@code write} sends one. The descriptor is non-blocking and close-on-exec.
 *
 * <p>{@link #open} attaches to an existing tap of that name (one a user made with
 * {@code ip tuntap add NAME mode tap}) or creates one (which needs CAP_NET_ADMIN); a created tap goes
 * away when the descriptor is closed.
 */
public final class Tun extends OwnedFd {
    public static final int IFNAMSIZ = 16;
    public static final int IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000, IFF_MULTI_QUEUE = 0x0100;
    /** {@code sizeof(struct ifreq)}: the name, then a 24-byte union whose first member here is ifr_flags. */
    static final long IFREQ_BYTES = 40;
    static final long IFR_FLAGS = 16;
    /** {@code sizeof(struct virtio_net_hdr_v1)}, what VERSION_1 drivers always use. */
    public static final int VNET_HDR_BYTES = 12;

    public static final long TUNSETIFF = Ioctl.iow('T', 202, JAVA_INT.byteSize());
    public static final long TUNSETOFFLOAD = Ioctl.iow('T', 208, JAVA_INT.byteSize());
    public static final long TUNSETVNETHDRSZ = Ioctl.iow('T', 216, JAVA_INT.byteSize());

    private static final String DEVICE = "/dev/net/tun";

    /** A tap device that cannot be opened; the message is one line saying why and what to do. */
    public static final class TapException extends IOException {
        public TapException(String message) {
            super(message);
        }
    }

    private final String name;

    private Tun(String name, int fd) {
        super(fd, "tap " + name);
        this.name = name;
    }

    /** Null if {@code name} can name a network interface, else why not. */
    public static String checkName(String name) {
        if (name == null || name.isEmpty()) return "the tap device name is empty";
        byte[] b = name.getBytes(StandardCharsets.UTF_8);
        if (b.length >= IFNAMSIZ) return "tap device name '" + name + "' is longer than " + (IFNAMSIZ - 1) + " bytes";
        if (name.equals(".") || name.equals("..")) return "'" + name + "' is not a valid interface name";
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c == '/' || c == ':' || Character.isWhitespace(c) || c < 0x20) {
                return "tap device name '" + name + "' contains '" + (Character.isWhitespace(c) ? "a space" : String.valueOf(c)) + "'";
            }
        }
        return null;
    }

    /** Attaches to tap device {@code name}, creating it if it does not exist. */
    public static Tun open(String name) throws TapException {
        String bad = checkName(name);
        if (bad != null) throw new TapException(bad);
        int fd = LibC.open(DEVICE, LibC.O_RDWR | LibC.O_CLOEXEC | LibC.O_NONBLOCK);
        if (fd < 0) {
            int errno = LibC.errno();
            throw new TapException(switch (errno) {
                case Errno.ENOENT -> DEVICE + " is missing: no tap support in this kernel (modprobe tun)";
                case Errno.ENODEV, Errno.ENXIO -> DEVICE + " has no driver behind it: no tap support in this kernel (modprobe tun)";
                case Errno.EACCES, Errno.EPERM -> "no permission to open " + DEVICE + ": run as root, or give your user access to it"
                        + " and pre-create the tap with 'ip tuntap add " + name + " mode tap user $USER'";
                default -> "cannot open " + DEVICE + ": " + Errno.describe(errno);
            });
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ifr = arena.allocate(IFREQ_BYTES, 8);
            byte[] b = name.getBytes(StandardCharsets.UTF_8);
            MemorySegment.copy(b, 0, ifr, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, b.length);
            ifr.set(JAVA_SHORT, IFR_FLAGS, (short) (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR));
            if (LibC.ioctl(fd, TUNSETIFF, ifr) < 0) {
                int errno = LibC.errno();
                throw new TapException(switch (errno) {
                    case Errno.EPERM, Errno.EACCES -> "no permission to create tap device " + name
                            + ": run as root or pre-create it with 'ip tuntap add " + name + " mode tap user $USER'";
                    case Errno.EBUSY -> "tap device " + name + " is in use by another process (a tap has one user"
                            + " unless it was made with multi_queue)";
                    case Errno.EINVAL -> "network interface " + name + " exists but is not a single-queue tap device"
                            + " (a tun device, a multi_queue tap or another kind of interface)";
                    default -> "cannot attach to tap device " + name + ": TUNSETIFF failed: " + Errno.describe(errno);
                });
            }
            MemorySegment arg = arena.allocate(JAVA_INT);
            arg.set(JAVA_INT, 0, VNET_HDR_BYTES);
            if (LibC.ioctl(fd, TUNSETVNETHDRSZ, arg) < 0) {
                throw new TapException("tap device " + name + ": TUNSETVNETHDRSZ failed: " + Errno.describe(LibC.errno()));
            }
            // TUNSETOFFLOAD takes its flags by value, not through a pointer
            if (LibC.ioctl(fd, TUNSETOFFLOAD, 0L) < 0) {
                throw new TapException("tap device " + name + ": TUNSETOFFLOAD failed: " + Errno.describe(LibC.errno()));
            }
        } catch (TapException | RuntimeException | Error e) {
            LibC.close(fd);
            throw e;
        }
        return new Tun(name, fd);
    }

    public String name() {
        return name;
    }

    /**
     * Reads one header and frame into {@code buf}; returns its length, or -1 with nothing to read
     * (EAGAIN), or throws for other failures. A frame longer than {@code len} is truncated by the kernel.
     */
    public long read(MemorySegment buf, long len) {
        long n = LibC.read(fd, buf, len);
        if (n < 0) {
            int errno = LibC.errno();
            if (errno == Errno.EAGAIN || errno == Errno.EINTR) return -1;
            throw new SyscallException("read from tap " + name, errno);
        }
        return n;
    }

    /**
     * Writes one header and frame; returns the bytes written, or -errno when the kernel did not take it
     * (EAGAIN when its queue is full, EIO when the interface is down, EINVAL for a malformed frame).
     */
    public long write(MemorySegment buf, long len) {
        long n = LibC.write(fd, buf, len);
        return n < 0 ? -LibC.errno() : n;
    }
}
