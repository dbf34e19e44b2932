package dev.jvmm.vmm;

import dev.jvmm.arch.x86.Layout;
import dev.jvmm.arch.x86.acpi.VirtioMmioSlot;
import dev.jvmm.device.Bus;
import dev.jvmm.device.DeviceFailure;
import dev.jvmm.device.virtio.VirtioAttachment;
import dev.jvmm.device.virtio.VirtioDevice;
import dev.jvmm.device.virtio.VirtioMmioTransport;
import dev.jvmm.event.EventLoop;
import dev.jvmm.kvm.VmFd;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SyscallException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The VM's virtio-mmio devices, each in a slot: its register window on the MMIO bus, one KVM
 * ioeventfd per queue (a guest's queue notification signals an eventfd inside the kernel, with no
 * exit to jvmm on the vCPU) and one irqfd per device (raising its interrupt is an eventfd write, from
 * any thread). What serves the notifications, and what else a device watches on the host, is the
 * device's own business ({@link VirtioDevice#attach}).
 */
public final class VirtioMmioDevices implements AutoCloseable {
    /** A device in its slot. */
    record Slot(String name, long base, int gsi, VirtioMmioTransport transport, int[] queueFds) { }

    private static final MemorySegment ONE = Arena.global().allocate(JAVA_LONG);
    static {
        ONE.set(JAVA_LONG, 0, 1L);
    }

    private final List<Slot> slots = new ArrayList<>();
    private final List<Integer> eventFds = new ArrayList<>();
    private final List<VirtioDevice> devices;

    /** Where the devices of {@code specs} go: base address, window and GSI, in command-line order. */
    static List<VirtioMmioSlot> layout(List<VirtioSpec> specs) {
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
            sb.append(sb.isEmpty() ? "" : " ").append("virtio_mmio.device=").append(s.size() / 1024).append("K@0x").append(Long.toHexString(s.base()))
                    .append(':').append(s.gsi()); // not String.format: start-up (its Formatter and locale data)
        }
        return sb.toString();
    }

    /**
     * Makes every device (opening disk images and taps, so a bad path or tap fails before anything
     * is wired); on failure closes those already made.
     */
    static List<VirtioDevice> create(List<VirtioSpec> specs, VirtioSpec.Context context) throws VmmException {
        List<VirtioDevice> devices = new ArrayList<>();
        try {
            for (VirtioSpec spec : specs) devices.add(spec.create(context));
        } catch (VmmException | RuntimeException e) {
            for (VirtioDevice d : devices) d.close();
            throw e;
        }
        return devices;
    }

    /** Wires made devices into the VM and attaches them (event-loop thread, before the vCPUs start). */
    VirtioMmioDevices(List<VirtioSpec> specs, List<VirtioDevice> devices, VmFd vm, GuestMemory memory, Bus mmio,
                      EventLoop loop, DeviceFailure failure) {
        this.devices = List.copyOf(devices);
        List<VirtioMmioSlot> layout = layout(specs);
        try {
            for (int i = 0; i < devices.size(); i++) {
                VirtioDevice device = devices.get(i);
                VirtioMmioSlot s = layout.get(i);
                int irqfd = newEventFd();
                vm.irqfd(irqfd, s.gsi());
                VirtioMmioTransport transport = new VirtioMmioTransport(device, memory, () -> LibC.write(irqfd, ONE, 8), loop::execute);
                String name = specs.get(i).kind() + "." + i;
                mmio.register(name, s.base(), VirtioMmioTransport.WINDOW_SIZE, transport);
                int[] queueFds = new int[transport.queueCount()];
                for (int q = 0; q < queueFds.length; q++) {
                    queueFds[q] = newEventFd();
                    vm.ioeventfd(queueFds[q], s.base() + VirtioMmioTransport.QUEUE_NOTIFY, 4, false, (long) q);
                }
                device.attach(new VirtioAttachment(loop, queueFds, transport::notify, transport::resume,
                        why -> failure.failed(name + ": " + why), irqfd, memory));
                slots.add(new Slot(name, s.base(), s.gsi(), transport, queueFds));
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

    List<Slot> slots() {
        return slots;
    }

    /**
     * After a restore: signals every queue's notification eventfd once, so that a notification the
     * guest gave before the snapshot that its device had not served yet (the eventfds are new) is not
     * lost. Each device serves it on its usual thread; a queue with nothing available is a no-op.
     */
    void notifyAllQueues() {
        for (Slot s : slots) {
            for (int fd : s.queueFds()) LibC.write(fd, ONE, 8);
        }
    }

    /** Per-device counters (requests, bytes, errors, notifications, interrupts) by slot name. */
    Map<String, Map<String, Long>> counters() {
        Map<String, Map<String, Long>> m = new LinkedHashMap<>();
        for (Slot s : slots) m.put(s.name(), s.transport().counters());
        return m;
    }

    /** After {@link #close}: whether no device thread can still touch guest memory. */
    boolean quiesced() {
        return devices.stream().allMatch(VirtioDevice::quiesced);
    }

    /** Closes the devices (their disk images, taps, threads) and the eventfds. */
    @Override
    public void close() {
        for (VirtioDevice d : devices) d.close();
        for (int fd : eventFds) LibC.close(fd);
        eventFds.clear();
    }
}
