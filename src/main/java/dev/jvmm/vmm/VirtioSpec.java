package dev.jvmm.vmm;

import dev.jvmm.device.BusDevice;
import dev.jvmm.device.ByteSink;
import dev.jvmm.device.ConsoleEndpoint;
import dev.jvmm.device.legacy.CommandStatusPort;
import dev.jvmm.device.virtio.VirtioBlock;
import dev.jvmm.device.virtio.VirtioConsole;
import dev.jvmm.device.virtio.VirtioDevice;
import dev.jvmm.device.virtio.VirtioFs;
import dev.jvmm.device.virtio.VirtioNet;
import dev.jvmm.device.virtio.VirtioRng;
import dev.jvmm.device.virtio.VirtioVsock;
import dev.jvmm.event.EventLoop;
import dev.jvmm.host.HelperProcess;
import dev.jvmm.host.PasstLink;
import dev.jvmm.host.TapLink;
import dev.jvmm.host.Virtiofsd;
import dev.jvmm.host.VirtiofsdShare;
import dev.jvmm.host.vhost.VhostUserDevice;
import dev.jvmm.host.vhost.VhostUserException;
import dev.jvmm.host.vhost.VhostUserFrontend;
import dev.jvmm.host.vsock.VsockMuxer;
import dev.jvmm.sys.Tun;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.zip.CRC32;

/**
 * A virtio device the user asked for on the command line: each kind parses its own option syntax
 * ({@code parse} throws {@link IllegalArgumentException} with a message for a usage error) and makes
 * its device ({@link #create}). Adding a device means a spec here, the device, and the CLI option.
 */
public sealed interface VirtioSpec {
    /** What a spec may use to make its device. */
    interface Context {
        /** The guest console's output (stdout or --serial-log). */
        ByteSink console();

        /** Makes {@code endpoint} the console's input: stdin goes there instead of the UART. */
        void consoleInput(ConsoleEndpoint endpoint);

        /** The VM's event loop, for host descriptors a device reads (watch them now, before the run). */
        default EventLoop loop() {
            throw new UnsupportedOperationException("this context has no event loop");
        }

        /** Where a --rootfs command's stdout goes: jvmm's own (never closed by the device). */
        default OutputStream commandStdout() {
            return new FileOutputStream(FileDescriptor.out);
        }

        /** Where a --rootfs command's stderr goes: jvmm's own. */
        default OutputStream commandStderr() {
            return new FileOutputStream(FileDescriptor.err);
        }

        /** Ends the run (any thread; the first stop wins). */
        default void stop(Stop stop) {
            throw new UnsupportedOperationException("this context cannot end a run");
        }

        /** Whether the run is ending. */
        default boolean stopping() {
            return false;
        }

        /** The run's milestones, for devices that see the guest reach some (null: none kept). */
        default Timeline timeline() {
            return null;
        }

        /** Puts {@code device} on the I/O port bus at [{@code port}, {@code port + length}). */
        default void ioPort(String name, int port, int length, BusDevice device) {
            throw new UnsupportedOperationException("this context has no I/O port bus");
        }
    }

    /** The device's short name in stats and logs. */
    default String kind() {
        return switch (this) {
            case Disk d -> "virtio-blk";
            case Rng r -> "virtio-rng";
            case Console c -> "virtio-console";
            case CommandPorts p -> "virtio-serial";
            case Net n -> "virtio-net";
            case UserNet u -> "virtio-net";
            case Vsock v -> "virtio-vsock";
            case Share s -> "virtio-fs";
        };
    }

    /**
     * Whether the device's guest memory must be shared with another process (a vhost-user back end maps
     * it): then the VM's RAM is allocated as shared memory (a memfd) instead of anonymous memory.
     */
    default boolean needsSharedMemory() {
        return false;
    }

    /**
     * Opens the device's host side (a file, a tap) and makes the device.
     * @throws VmmException with the exit status for what failed (4: an image, 6: a host resource)
     */
    VirtioDevice create(Context context) throws VmmException;

    /**
     * The virtio devices to make for a restore, in slot order, from the snapshot's saved devices
     * ({@link RestoreConfig#devices}): a disk takes the next of {@code disks} (the --disk options of
     * the restore, whose images' capacities the devices' states then check), a virtio-rng or
     * virtio-console is made as it was.
     * @throws VmmException for --disk options that do not match the snapshot's disks (status 2), or a
     *     device kind this jvmm cannot restore (4)
     */
    static List<VirtioSpec> forRestore(List<RestoreConfig.Device> saved, List<Disk> disks) throws VmmException {
        List<VirtioSpec> out = new java.util.ArrayList<>();
        List<String> savedDisks = new java.util.ArrayList<>();
        for (RestoreConfig.Device d : saved) {
            switch (d.kind()) {
                case "virtio-blk" -> {
                    String what = d.slot() + " on " + d.image() + (d.readOnly() ? ",ro" : "");
                    if (savedDisks.size() < disks.size()) out.add(disks.get(savedDisks.size()));
                    savedDisks.add(what);
                }
                case "virtio-rng" -> out.add(new Rng());
                case "virtio-console" -> out.add(new Console());
                default -> throw new VmmException(ExitStatus.BAD_IMAGE, "the snapshot has a device this jvmm cannot restore: " + d.slot());
            }
        }
        if (savedDisks.size() != disks.size()) {
            throw new VmmException(ExitStatus.USAGE, "--restore: the snapshot has " + savedDisks.size() + " disk" + (savedDisks.size() == 1 ? "" : "s")
                    + (savedDisks.isEmpty() ? "" : " (" + String.join("; ", savedDisks) + ")") + ", --disk gives "
                    + (disks.isEmpty() ? "none" : disks.size()) + ": give each disk's image again with --disk, in the same order");
        }
        return out;
    }

    /** {@code --disk PATH[,ro][,id=NAME][,lock=off]}: a virtio-blk device over a raw image file. */
    record Disk(Path image, boolean readOnly, String id, boolean lock) implements VirtioSpec {
        public Disk(Path image, boolean readOnly, String id) {
            this(image, readOnly, id, true);
        }

        public static Disk parse(String spec) {
            String[] parts = spec.split(",");
            if (parts.length == 0 || parts[0].isEmpty()) throw new IllegalArgumentException("--disk '" + spec + "': the image path is missing");
            Path image = Path.of(parts[0]);
            boolean ro = false;
            boolean lock = true;
            String id = image.getFileName() == null ? "disk" : image.getFileName().toString();
            for (int i = 1; i < parts.length; i++) {
                if (parts[i].equals("ro")) ro = true;
                else if (parts[i].startsWith("id=") && parts[i].length() > 3) id = parts[i].substring(3);
                else if (parts[i].equals("lock=off")) lock = false;
                else if (parts[i].equals("lock=on")) lock = true;
                else throw new IllegalArgumentException("--disk '" + spec + "': unknown option '" + parts[i] + "' (use ro, id=NAME or lock=off)");
            }
            if (id.getBytes(StandardCharsets.UTF_8).length > VirtioBlock.ID_BYTES) {
                throw new IllegalArgumentException("--disk '" + spec + "': id '" + id + "' is longer than virtio's " + VirtioBlock.ID_BYTES + " bytes");
            }
            return new Disk(image, ro, id, lock);
        }

        @Override
        public VirtioDevice create(Context context) throws VmmException {
            return opened(ExitStatus.BAD_IMAGE, () -> new VirtioBlock(image, readOnly, id, lock));
        }
    }

    /** {@code --rng}: a virtio-rng device fed from the host's SecureRandom. */
    record Rng() implements VirtioSpec {
        @Override
        public VirtioDevice create(Context context) {
            return new VirtioRng();
        }
    }

    /** {@code --console=virtio}: the console on a virtio-console device (hvc0 in Linux). */
    record Console() implements VirtioSpec {
        @Override
        public VirtioDevice create(Context context) {
            VirtioConsole c = new VirtioConsole(context.console());
            context.consoleInput(c);
            return c;
        }
    }

    /**
     * The command channel of a {@code --rootfs} run ({@link CommandChannel}): a MULTIPORT
     * virtio-console with the ports jvmm.stdin, jvmm.stdout and jvmm.stderr on jvmm's own stdin
     * (when {@code stdin}; else the command reads EOF at once), stdout and stderr
     * ({@link Context#commandStdout()}, {@link Context#commandStderr()}), and the command-status
     * port on the I/O bus. With {@code stdin}, leave {@link VmConfig#stdin()} off: fd 0 is the
     * command's, read without raw mode or escapes.
     */
    record CommandPorts(boolean stdin) implements VirtioSpec {
        @Override
        public VirtioDevice create(Context context) {
            CommandChannel channel = new CommandChannel(context.loop(), context.commandStdout(), context.commandStderr(),
                    context::stop, context::stopping, context.timeline());
            if (stdin) channel.readStdin(0);
            else channel.noStdin();
            context.ioPort("command-status", CommandStatusPort.PORT, CommandStatusPort.LENGTH, channel.statusPort());
            return channel.device();
        }
    }

    /**
     * {@code --net tap=NAME[,mac=MAC]}: a virtio-net device on the host's tap device NAME; {@code mac}
     * (6 bytes) is the guest's address, or null for one derived from the tap name ({@link #defaultMac}).
     */
    record Net(String tap, byte[] mac) implements VirtioSpec {
        public Net {
            if (mac != null && mac.length != 6) throw new IllegalArgumentException("a MAC address has 6 bytes");
            mac = mac == null ? null : mac.clone();
        }

        /** "tap=NAME[,mac=aa:bb:cc:dd:ee:ff]" */
        public static Net parse(String spec) {
            String tap = null;
            byte[] mac = null;
            for (String part : spec.split(",", -1)) {
                if (part.startsWith("tap=")) {
                    if (tap != null) throw new IllegalArgumentException("--net '" + spec + "': tap= is given twice");
                    tap = part.substring(4);
                    String bad = Tun.checkName(tap);
                    if (bad != null) throw new IllegalArgumentException("--net '" + spec + "': " + bad);
                } else if (part.startsWith("mac=")) {
                    if (mac != null) throw new IllegalArgumentException("--net '" + spec + "': mac= is given twice");
                    mac = parseMac(spec, part.substring(4));
                } else {
                    throw new IllegalArgumentException("--net '" + spec + "': unknown option '" + part
                            + "' (use tap=NAME and mac=aa:bb:cc:dd:ee:ff)");
                }
            }
            if (tap == null) throw new IllegalArgumentException("--net '" + spec + "': the tap device is missing (use tap=NAME)");
            return new Net(tap, mac);
        }

        /** Six hex bytes separated by ':' or '-', unicast and not all zeros. */
        static byte[] parseMac(String spec, String text) {
            String[] octets = text.split("[:-]", -1);
            byte[] mac = new byte[6];
            boolean ok = octets.length == 6;
            for (int i = 0; ok && i < 6; i++) {
                ok = octets[i].matches("[0-9a-fA-F]{1,2}");
                if (ok) mac[i] = (byte) Integer.parseInt(octets[i], 16);
            }
            if (!ok) {
                throw new IllegalArgumentException("--net '" + spec + "': invalid MAC address '" + text
                        + "' (use six hex bytes, e.g. 52:54:00:12:34:56)");
            }
            if ((mac[0] & 1) != 0) {
                throw new IllegalArgumentException("--net '" + spec + "': MAC address " + text + " is a multicast address (the first byte must be even)");
            }
            if (Arrays.equals(mac, new byte[6])) throw new IllegalArgumentException("--net '" + spec + "': MAC address " + text + " is all zeros");
            return mac;
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
            CRC32 crc = new CRC32();
            crc.update(tap.getBytes(StandardCharsets.UTF_8));
            long h = crc.getValue();
            return new byte[] {0x52, 0x54, 0x00, (byte) (h >> 16), (byte) (h >> 8), (byte) h};
        }

        @Override
        public VirtioDevice create(Context context) throws VmmException {
            return opened(ExitStatus.HOST_UNSUITABLE, () -> new VirtioNet(effectiveMac(), new TapLink(Tun.open(tap))));
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Net n && tap.equals(n.tap) && Arrays.equals(mac, n.mac);
        }

        @Override
        public int hashCode() {
            return tap.hashCode() * 31 + Arrays.hashCode(mac);
        }

        @Override
        public String toString() {
            return "Net[tap=" + tap + ", mac=" + (mac == null ? "default" : formatMac(mac)) + "]";
        }
    }

    /**
     * {@code --net user[,fwd=PROTO:[ADDR:]HOSTPORT:GUESTPORT]...[,mac=MAC][,optional]}: a virtio-net
     * device whose back end is a passt process jvmm starts ({@link PasstLink}): DHCP, DNS and NAT for
     * the guest, no root needed. {@code fwd} forwards a host TCP or UDP port (on every address, or on
     * ADDR, an IPv4 address) to a guest port; {@code optional} takes the link down instead of ending
     * the run when passt goes away. {@code passt} is the program ({@code --passt}), null for PATH's.
     */
    record UserNet(List<PasstLink.Forward> forwards, byte[] mac, boolean optional, Path passt) implements VirtioSpec {
        public UserNet {
            forwards = List.copyOf(forwards);
            if (mac == null || mac.length != 6) throw new IllegalArgumentException("a MAC address has 6 bytes");
            mac = mac.clone();
        }

        /** Whether {@code spec} is a --net user one (else it is a tap's). */
        public static boolean isUser(String spec) {
            return spec.equals("user") || spec.startsWith("user,");
        }

        /** "user[,fwd=tcp:8080:80][,fwd=udp:127.0.0.1:5353:53][,mac=MAC][,optional]"; the {@code index}th --net user (default MACs differ). */
        public static UserNet parse(String spec, int index) {
            if (!isUser(spec)) throw new IllegalArgumentException("--net '" + spec + "': not a user network (use user,...)");
            List<PasstLink.Forward> fwds = new java.util.ArrayList<>();
            byte[] mac = null;
            boolean optional = false;
            Set<String> hostPorts = new HashSet<>();
            String[] parts = spec.split(",", -1);
            for (int i = 1; i < parts.length; i++) {
                String part = parts[i];
                if (part.startsWith("fwd=")) {
                    PasstLink.Forward f = parseForward(spec, part.substring(4));
                    if (!hostPorts.add(f.protocol() + ":" + f.hostPort())) {
                        throw new IllegalArgumentException("--net '" + spec + "': host " + f.protocol() + " port " + f.hostPort() + " is forwarded twice");
                    }
                    fwds.add(f);
                } else if (part.startsWith("mac=")) {
                    if (mac != null) throw new IllegalArgumentException("--net '" + spec + "': mac= is given twice");
                    mac = Net.parseMac(spec, part.substring(4));
                } else if (part.equals("optional")) {
                    optional = true;
                } else {
                    throw new IllegalArgumentException("--net '" + spec + "': unknown option '" + part
                            + "' (use fwd=tcp:HOSTPORT:GUESTPORT, mac=aa:bb:cc:dd:ee:ff and optional)");
                }
            }
            // QEMU's user-mode default, one apart for each further --net user
            if (mac == null) mac = new byte[] {0x52, 0x54, 0x00, 0x12, 0x34, (byte) (0x56 + index)};
            return new UserNet(fwds, mac, optional, null);
        }

        /** "tcp:8080:80", "udp:127.0.0.1:5353:53" */
        static PasstLink.Forward parseForward(String spec, String text) {
            String[] f = text.split(":", -1);
            String usage = "--net '" + spec + "': fwd=" + text + " is not PROTO:[ADDR:]HOSTPORT:GUESTPORT (e.g. fwd=tcp:8080:80)";
            if (f.length != 3 && f.length != 4) throw new IllegalArgumentException(usage);
            String proto = f[0].toLowerCase(java.util.Locale.ROOT);
            if (!proto.equals("tcp") && !proto.equals("udp")) {
                throw new IllegalArgumentException("--net '" + spec + "': fwd=" + text + ": protocol '" + f[0] + "' is not tcp or udp");
            }
            String address = f.length == 4 ? f[1] : null;
            if (address != null && !address.matches("((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")) {
                throw new IllegalArgumentException("--net '" + spec + "': fwd=" + text + ": '" + address + "' is not an IPv4 address");
            }
            int host = port(spec, text, f[f.length - 2]);
            int guest = port(spec, text, f[f.length - 1]);
            return new PasstLink.Forward(proto, address, host, guest);
        }

        private static int port(String spec, String fwd, String text) {
            if (!text.matches("[0-9]{1,5}") || Integer.parseInt(text) < 1 || Integer.parseInt(text) > 65535) {
                throw new IllegalArgumentException("--net '" + spec + "': fwd=" + fwd + ": port '" + text + "' is not 1 to 65535");
            }
            return Integer.parseInt(text);
        }

        /** The same network, with passt from {@code program} (--passt; null: PATH's). */
        public UserNet withPasst(Path program) {
            return new UserNet(forwards, mac, optional, program);
        }

        @Override
        public byte[] mac() {
            return mac.clone();
        }

        @Override
        public VirtioDevice create(Context context) throws VmmException {
            try {
                return new VirtioNet(mac, PasstLink.launch(passt, forwards, optional));
            } catch (HelperProcess.HelperException e) {
                throw new VmmException(ExitStatus.HOST_UNSUITABLE, "--net user: " + e.getMessage());
            }
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof UserNet u && forwards.equals(u.forwards) && Arrays.equals(mac, u.mac) && optional == u.optional
                    && java.util.Objects.equals(passt, u.passt);
        }

        @Override
        public int hashCode() {
            return forwards.hashCode() * 31 + Arrays.hashCode(mac);
        }

        @Override
        public String toString() {
            return "UserNet[forwards=" + forwards + ", mac=" + formatMac(mac) + ", optional=" + optional + ", passt=" + passt + "]";
        }
    }

    /**
     * {@code --vsock cid=N,uds=PATH}: a virtio-vsock device for guest CID N (3 and up) whose host side
     * is Firecracker's UNIX-socket protocol ({@link VsockMuxer}): jvmm listens on PATH for host
     * programs (CONNECT PORT), and the guest's connections to CID 2 port P go to the socket PATH_P.
     */
    record Vsock(long cid, Path uds) implements VirtioSpec {
        public Vsock {
            if (cid < VirtioVsock.MIN_GUEST_CID || cid > VirtioVsock.MAX_GUEST_CID) throw new IllegalArgumentException("cid " + cid);
        }

        /** "cid=3,uds=/tmp/vm.sock" */
        public static Vsock parse(String spec) {
            Long cid = null;
            Path uds = null;
            for (String part : spec.split(",", -1)) {
                if (part.startsWith("cid=")) {
                    if (cid != null) throw new IllegalArgumentException("--vsock '" + spec + "': cid= is given twice");
                    String n = part.substring(4);
                    if (!n.matches("[0-9]{1,10}") || Long.parseLong(n) < VirtioVsock.MIN_GUEST_CID || Long.parseLong(n) > VirtioVsock.MAX_GUEST_CID) {
                        throw new IllegalArgumentException("--vsock '" + spec + "': cid '" + n + "' is not a guest CID (3 to "
                                + VirtioVsock.MAX_GUEST_CID + "; 0-2 are the hypervisor's, loopback's and the host's)");
                    }
                    cid = Long.parseLong(n);
                } else if (part.startsWith("uds=")) {
                    if (uds != null) throw new IllegalArgumentException("--vsock '" + spec + "': uds= is given twice");
                    if (part.length() == 4) throw new IllegalArgumentException("--vsock '" + spec + "': uds= needs a path");
                    try {
                        uds = Path.of(part.substring(4));
                    } catch (java.nio.file.InvalidPathException e) {
                        throw new IllegalArgumentException("--vsock '" + spec + "': invalid path '" + part.substring(4) + "'");
                    }
                    String bad = VsockMuxer.checkPath(uds);
                    if (bad != null) throw new IllegalArgumentException("--vsock '" + spec + "': " + bad);
                } else {
                    throw new IllegalArgumentException("--vsock '" + spec + "': unknown option '" + part + "' (use cid=N,uds=PATH)");
                }
            }
            if (cid == null) throw new IllegalArgumentException("--vsock '" + spec + "': the guest's CID is missing (cid=N, 3 or more)");
            if (uds == null) throw new IllegalArgumentException("--vsock '" + spec + "': the socket path is missing (uds=PATH)");
            return new Vsock(cid, uds);
        }

        @Override
        public VirtioDevice create(Context context) throws VmmException {
            try {
                return new VirtioVsock(cid, VsockMuxer.open(uds, cid));
            } catch (IOException e) {
                throw new VmmException(ExitStatus.HOST_UNSUITABLE, "--vsock: " + e.getMessage());
            }
        }
    }

    /**
     * {@code --share HOSTDIR[,tag=TAG][,ro]}: a virtio-fs device sharing a host directory through a
     * virtiofsd that jvmm starts (and stops); the guest mounts it with {@code mount -t virtiofs TAG DIR}.
     * {@code --share socket=PATH,tag=TAG}: a virtio-fs device on a vhost-user back end someone else
     * started, listening at PATH. The tag defaults to the directory's name; at most 36 bytes of UTF-8.
     *
     * @param directory the shared directory (absolute), or null for {@code socket=}
     * @param readOnly  share it read-only (only with a directory)
     * @param socket    the back end's socket, or null to start virtiofsd
     * @param virtiofsd the virtiofsd to run ({@code --virtiofsd}), or null to look for one
     */
    record Share(Path directory, String tag, boolean readOnly, Path socket, Path virtiofsd) implements VirtioSpec {
        public Share {
            if ((directory == null) == (socket == null)) throw new IllegalArgumentException("a share has a directory or a socket");
            String bad = VirtioFs.checkTag(tag);
            if (bad != null) throw new IllegalArgumentException(bad);
            if (readOnly && socket != null) throw new IllegalArgumentException("ro is the back end's business with socket=");
        }

        /** "DIR[,tag=TAG][,ro]" or "socket=PATH,tag=TAG" */
        public static Share parse(String spec) {
            String[] parts = spec.split(",", -1);
            Path dir = null;
            Path socket = null;
            String tag = null;
            boolean ro = false;
            int first = 0;
            if (!parts[0].startsWith("socket=") && !parts[0].startsWith("tag=") && !parts[0].equals("ro")) {
                if (parts[0].isEmpty()) throw new IllegalArgumentException("--share '" + spec + "': the directory is missing");
                dir = path(spec, parts[0]).toAbsolutePath().normalize();
                first = 1;
            }
            for (int i = first; i < parts.length; i++) {
                String p = parts[i];
                if (p.equals("ro")) {
                    ro = true;
                } else if (p.startsWith("tag=")) {
                    if (tag != null) throw new IllegalArgumentException("--share '" + spec + "': tag= is given twice");
                    tag = p.substring(4);
                } else if (p.startsWith("socket=")) {
                    if (socket != null) throw new IllegalArgumentException("--share '" + spec + "': socket= is given twice");
                    if (p.length() == 7) throw new IllegalArgumentException("--share '" + spec + "': socket= needs a path");
                    socket = path(spec, p.substring(7));
                } else {
                    throw new IllegalArgumentException("--share '" + spec + "': unknown option '" + p + "' (use DIR[,tag=TAG][,ro] or socket=PATH,tag=TAG)");
                }
            }
            if (socket != null && dir != null) {
                throw new IllegalArgumentException("--share '" + spec + "': give a directory or socket=PATH, not both");
            }
            if (socket != null && ro) {
                throw new IllegalArgumentException("--share '" + spec + "': ro cannot be used with socket=: the back end at "
                        + socket + " decides whether the share is writable");
            }
            if (socket != null && tag == null) throw new IllegalArgumentException("--share '" + spec + "': socket= needs tag=TAG");
            if (socket == null && dir == null) throw new IllegalArgumentException("--share '" + spec + "': the directory is missing");
            if (tag == null) {
                if (dir.getFileName() == null) throw new IllegalArgumentException("--share '" + spec + "': " + dir + " has no name to use as tag; give tag=TAG");
                tag = dir.getFileName().toString();
            }
            String bad = VirtioFs.checkTag(tag);
            if (bad != null) throw new IllegalArgumentException("--share '" + spec + "': " + bad + (spec.contains("tag=") ? "" : " (the directory's name; give tag=TAG)"));
            return new Share(dir, tag, ro, socket, null);
        }

        private static Path path(String spec, String text) {
            try {
                return Path.of(text);
            } catch (java.nio.file.InvalidPathException e) {
                throw new IllegalArgumentException("--share '" + spec + "': invalid path '" + text + "': " + e.getReason());
            }
        }

        /** The same share, started with {@code program} (--virtiofsd) instead of the virtiofsd found on the system. */
        public Share withVirtiofsd(Path program) {
            return new Share(directory, tag, readOnly, socket, program);
        }

        /** @throws IllegalArgumentException when two shares have the same tag (the guest could mount only one) */
        public static void checkTagsUnique(List<Share> shares) {
            Set<String> tags = new HashSet<>();
            for (Share s : shares) {
                if (!tags.add(s.tag())) {
                    throw new IllegalArgumentException("--share: tag '" + s.tag() + "' is used twice; give each share its own tag=TAG");
                }
            }
        }

        @Override
        public boolean needsSharedMemory() {
            return true;
        }

        private String what() {
            return "--share " + (socket != null ? "socket=" + socket : directory) + " (tag " + tag + ")";
        }

        @Override
        public VirtioDevice create(Context context) throws VmmException {
            try {
                if (socket != null) {
                    return VhostUserDevice.virtioFs(tag, VhostUserFrontend.connect(socket, VhostUserFrontend.DEFAULT_TIMEOUT), null);
                }
                if (!Files.isDirectory(directory)) throw new VmmException(ExitStatus.USAGE, what() + ": " + directory + " is not a directory");
                Virtiofsd.Binary binary;
                if (virtiofsd != null) {
                    if (!Files.isRegularFile(virtiofsd) || !Files.isExecutable(virtiofsd)) {
                        throw new VmmException(ExitStatus.USAGE, "--virtiofsd " + virtiofsd + " is not an executable file");
                    }
                    binary = Virtiofsd.identify(virtiofsd);
                } else {
                    binary = Virtiofsd.find();
                }
                HelperProcess h = VirtiofsdShare.start(binary, directory, readOnly, VirtiofsdShare.START_TIMEOUT);
                VhostUserFrontend frontEnd;
                try {
                    frontEnd = VhostUserFrontend.connect(Virtiofsd.socket(h), VhostUserFrontend.DEFAULT_TIMEOUT);
                } catch (VhostUserException | RuntimeException e) {
                    h.close();
                    throw e;
                }
                return VhostUserDevice.virtioFs(tag, frontEnd, VhostUserDevice.BackEndProcess.of(h));
            } catch (HelperProcess.HelperException | VhostUserException e) {
                throw new VmmException(ExitStatus.HOST_UNSUITABLE, what() + ": " + e.getMessage());
            }
        }
    }

    /** Opens a device's host side: an IOException (its message is one line) ends the run with {@code status}. */
    interface Opener {
        VirtioDevice open() throws IOException;
    }

    static VirtioDevice opened(int status, Opener opener) throws VmmException {
        try {
            return opener.open();
        } catch (IOException e) {
            throw new VmmException(status, e.getMessage());
        }
    }

    /** "52:54:00:12:34:56" */
    static String formatMac(byte[] mac) {
        return HexFormat.ofDelimiter(":").formatHex(mac);
    }
}
