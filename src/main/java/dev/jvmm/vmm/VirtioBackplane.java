package dev.jvmm.vmm;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.arch.x86.acpi.VirtioMmioSlot;
import dev.jvmm.device.Bus;
import dev.jvmm.device.virtio.VirtioBlock;
import dev.jvmm.device.virtio.VirtioConsole;
import dev.jvmm.device.virtio.VirtioDevice;
import dev.jvmm.device.virtio.VirtioMmioTransport;
import dev.jvmm.device.virtio.VirtioNet;
import dev.jvmm.device.virtio.VirtioRng;
import dev.jvmm.kvm.VmFd;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SyscallException;
import dev.jvmm.sys.Tun;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The virtio-mmio devices of one VM and their plumbing: each device's register window on the MMIO
 * bus, one KVM ioeventfd per queue (a guest's queue notification signals an eventfd inside the kernel;
 * the event loop reads it and lets the device work, with no exit to jvmm on the vCPU), and one irqfd
 * per device (raising its interrupt is an eventfd write, from any thread). A virtio-net device's tap
 * descriptor is watched by the event loop too ({@link TapLink}).
 */
public final class VirtioBackplane implements AutoCloseable {
    /** A device in its slot. */
    public record Slot(String name, long base, int gsi, VirtioMmioTransport transport) { }

    private static final MemorySegment ONE = Arena.global().allocate(JAVA_LONG);
    static {
        ONE.set(JAVA_LONG, 0, 1L);
    }

    private final List<Slot> slots = new ArrayList<>();
    private final List<Integer> eventFds = new ArrayList<>();
    private final List<VirtioDevice> devices = new ArrayList<>();
    private VirtioConsole console;

    /** Where the devices of {@code specs} go: base address, window and GSI, in command-line order. */
    public static List<VirtioMmioSlot> layout(List<VirtioSpec> specs) {
        if (specs.size() > Layout.VIRTIO_MAX_DEVICES) {
            throw new IllegalArgumentException("at most " + Layout.VIRTIO_MAX_DEVICES + " virtio devices, not " + specs.size());
        }
        List<VirtioMmioSlot> out = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            out.add(new VirtioMmioSlot(Layout.VIRTIO_MMIO_BASE + i * Layout.VIRTIO_MMIO_SLOT, Layout.VIRTIO_MMIO_SLOT,
                    Layout.virtioGsi(i)));
        }
        return out;
    }

    /** The kernel command-line words that announce the devices to Linux (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES). */
    public static String cmdlineDevices(List<VirtioSpec> specs) {
        StringBuilder sb = new StringBuilder();
        for (VirtioMmioSlot s : layout(specs)) {
            sb.append(sb.isEmpty() ? "" : " ").append(String.format("virtio_mmio.device=%dK@0x%x:%d", s.size() / 1024, s.base(), s.gsi()));
        }
        return sb.toString();
    }

    /**
     * Opens every device: disk images, tap devices (attached to, or created), so a bad path or tap fails
     * before anything is wired.
     * @throws Tun.TapException when a tap device cannot be opened (an {@link IOException}, but a host
     *         problem rather than a bad image)
     */
    public static List<VirtioDevice> open(List<VirtioSpec> specs, VirtioConsole.Output consoleOutput) throws IOException {
        List<VirtioDevice> devices = new ArrayList<>();
        try {
            for (VirtioSpec spec : specs) {
                devices.add(switch (spec) {
                    case VirtioSpec.Disk d -> new VirtioBlock(d.image(), d.readOnly(), d.id());
                    case VirtioSpec.Rng r -> new VirtioRng();
                    case VirtioSpec.Console c -> new VirtioConsole(consoleOutput);
                    case VirtioSpec.Net n -> new VirtioNet(n.effectiveMac(), new TapLink(Tun.open(n.tap())));
                });
            }
        } catch (IOException | RuntimeException e) {
            for (VirtioDevice d : devices) closeQuietly(d);
            throw e;
        }
        return devices;
    }

    /** Wires opened devices into the VM. */
    public VirtioBackplane(List<VirtioSpec> specs, List<VirtioDevice> devices, VmFd vm, GuestMemory memory, Bus mmio,
                           EventLoop loop) {
        List<VirtioMmioSlot> layout = layout(specs);
        try {
            for (int i = 0; i < devices.size(); i++) {
                VirtioDevice device = devices.get(i);
                VirtioMmioSlot s = layout.get(i);
                this.devices.add(device);
                if (device instanceof VirtioConsole c) console = c;
                if (device instanceof VirtioNet n && n.port() instanceof TapLink link) link.start(n, loop);
                int irqfd = newEventFd();
                vm.irqfd(irqfd, s.gsi());
                VirtioMmioTransport transport = new VirtioMmioTransport(device, memory, () -> LibC.write(irqfd, ONE, 8));
                String name = specs.get(i).kind() + "." + i;
                mmio.register(name, s.base(), VirtioMmioTransport.WINDOW_SIZE, transport);
                for (int q = 0; q < transport.queueCount(); q++) {
                    int efd = newEventFd();
                    vm.ioeventfd(efd, s.base() + VirtioMmioTransport.QUEUE_NOTIFY, 4, false, (long) q);
                    int queue = q;
                    MemorySegment drain = Arena.ofAuto().allocate(JAVA_LONG);
                    loop.watch(efd, (fd, revents) -> {
                        LibC.read(fd, drain, 8);
                        transport.notify(queue);
                    });
                }
                slots.add(new Slot(name, s.base(), s.gsi(), transport));
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private int newEventFd() {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (fd < 0) throw new SyscallException("eventfd", LibC.errno());
        eventFds.add(fd);
        return fd;
    }

    public List<Slot> slots() {
        return slots;
    }

    /** The virtio console, if there is one. */
    public VirtioConsole console() {
        return console;
    }

    /** Per-device counters (requests, bytes, errors, notifications, interrupts) by slot name. */
    public Map<String, Map<String, Long>> counters() {
        Map<String, Map<String, Long>> m = new LinkedHashMap<>();
        for (Slot s : slots) m.put(s.name(), s.transport().counters());
        return m;
    }

    private static void closeQuietly(VirtioDevice d) {
        if (d instanceof VirtioNet n && n.port() instanceof TapLink link) link.close();
        if (d instanceof VirtioBlock b) {
            try {
                b.close();
            } catch (IOException e) {
                // closing a read-only or already failed image: nothing left to lose
            }
        }
    }

    /** Closes the disk images (their data is already in the file: writes are not buffered), taps and eventfds. */
    @Override
    public void close() {
        for (VirtioDevice d : devices) closeQuietly(d);
        for (int fd : eventFds) LibC.close(fd);
        eventFds.clear();
    }
}
