package dev.jvmm.loader.initramfs;

import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/**
 * The guest's PID 1 for {@code --rootfs} runs (built from {@code guests/rootfs-init.c}, bundled in
 * the jar beside this class) and its contract with the VMM, which must match the C side's
 * constants.
 *
 * <p>What the VMM provides for it:
 * <ul>
 *   <li>a virtio-fs device whose tag is the job's root tag (and one per share);</li>
 *   <li>a virtio-console device with VIRTIO_CONSOLE_F_MULTIPORT (config max_nr_ports &ge; the port
 *       ids used; queues 0/1 port 0, 2/3 control receive/transmit, 2n+2/2n+3 port n &ge; 1)
 *       answering the driver's DEVICE_READY with a PORT_ADD per port, each PORT_READY with a
 *       PORT_NAME ({@link #STDIN_PORT}, {@link #STDOUT_PORT}, {@link #STDERR_PORT}: those the job
 *       names; never CONSOLE_PORT, which would make it an hvc the init cannot open) and with
 *       PORT_OPEN 1 (host connected: until then Linux blocks the guest's writes);</li>
 *   <li>stdin: bytes only after the guest's own PORT_OPEN 1 for that port (Linux discards data a
 *       closed port receives), then PORT_OPEN 0 once the last byte is in a used buffer: the
 *       command's read then returns 0 (EOF). A guest PORT_OPEN 0 means the command closed stdin;</li>
 *   <li>stdout and stderr: the ports' transmit queues, written as they come; a guest PORT_OPEN 0 is
 *       their end (all the command's descriptors closed);</li>
 *   <li>a 32-bit write-only I/O port {@link #STATUS_PORT}: the value is the run's exit status. The
 *       init writes it after the command's last output reached the transmit queues and after
 *       sync(); a VMM that handles queue notifications off the vCPU thread (ioeventfd) must drain
 *       those queues before acting on it;</li>
 *   <li>ACPI S5 (or the reset routine) for the power-off that follows it;</li>
 *   <li>optionally, a write-only I/O port {@link #PHASE_PORT}: one byte per milestone, for the run's
 *       timeline (a VMM without it loses nothing: the writes go nowhere);</li>
 *   <li>for each network interface the job names (a {@code dhcp} record, for {@code --net user}), a
 *       DHCP server on its link (passt);</li>
 *   <li>the modules {@link #MODULES} (and {@link #NET_MODULES} with a network device) where the kernel has them as modules
 *       ({@link ModuleResolver}), and on the command line {@code console=ttyS0} (the init's and
 *       the kernel's messages) and {@code panic=-1} (an init that dies ends the run instead of
 *       hanging: the VMM then has no status, which it should report as a failure).</li>
 * </ul>
 */
public final class RootfsInit {
    private RootfsInit() { }

    /** The classpath resource, relative to this class. */
    public static final String RESOURCE = "rootfs-init";
    /** The init writes the exit status here with one {@code outl}, after sync, before power-off. */
    public static final int STATUS_PORT = 0x520;
    /** One-byte writes of the init's milestones (1 init, 2 root entered, 3 command exec'ed, 4 command ended). */
    public static final int PHASE_PORT = 0x524;
    /** The guest could not be set up (no job, root or share not mountable, a port missing...). */
    public static final int EXIT_SETUP_FAILED = 125;
    /** The command exists but cannot be executed. */
    public static final int EXIT_CANNOT_EXECUTE = 126;
    /** The command was not found. */
    public static final int EXIT_NOT_FOUND = 127;
    public static final String STDIN_PORT = "jvmm.stdin", STDOUT_PORT = "jvmm.stdout", STDERR_PORT = "jvmm.stderr";
    /** The virtio-fs tag jvmm gives the root directory. */
    public static final String ROOT_TAG = "jvmm-root";
    /** The init's PATH when the job sets none; also {@link Job.Builder#standardEnvironment}'s. */
    public static final String DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /**
     * The modules a run on jvmm's devices needs unless built in: the virtio-mmio transport (found
     * through ACPI LNRO0005 or virtio_mmio.device=), virtio-fs (with fuse), overlayfs and
     * virtio-console (with virtio and virtio_ring, by dependency).
     */
    public static final List<String> MODULES = List.of("virtio_mmio", "virtiofs", "overlay", "virtio_console");
    /** What a run with a network device (--net) adds to {@link #MODULES}. */
    public static final List<String> NET_MODULES = List.of("virtio_net");
    /** Loaded when the kernel has them: pvpanic over MMIO, for a VMM that offers the device. */
    public static final List<String> OPTIONAL_MODULES = List.of("pvpanic_mmio");
    /** The same for QEMU's PCI devices (scripts/try-rootfs-init). */
    public static final List<String> QEMU_PCI_MODULES = List.of("virtio_pci", "virtiofs", "overlay", "virtio_console");

    /** The bundled init binary. */
    public static byte[] bundled() throws InitramfsException {
        try (InputStream in = RootfsInit.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new InitramfsException("the guest init (resource dev/jvmm/loader/initramfs/" + RESOURCE
                        + ") is missing from jvmm's class path: build with Maven, which makes it in guests/");
            }
            byte[] b = in.readAllBytes();
            if (b.length < 4 || b[0] != 0x7f || b[1] != 'E' || b[2] != 'L' || b[3] != 'F') {
                throw new InitramfsException("the bundled guest init " + RESOURCE + " is not an ELF program");
            }
            return b;
        } catch (IOException e) {
            throw new InitramfsException("cannot read the bundled guest init: " + e.getMessage(), e);
        }
    }
}
