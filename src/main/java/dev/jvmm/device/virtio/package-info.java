/**
 * Virtio 1.2 devices over the MMIO transport, plain Java (no {@code kvm}, {@code sys} or {@code vmm}
 * imports): {@link dev.jvmm.device.virtio.VirtioMmioTransport} (register window, feature negotiation,
 * status machine, interrupts), {@link dev.jvmm.device.virtio.SplitVirtqueue} (split rings with every
 * guest-controlled value validated), and the devices {@link dev.jvmm.device.virtio.VirtioBlock},
 * {@link dev.jvmm.device.virtio.VirtioConsole}, {@link dev.jvmm.device.virtio.VirtioSerial} (the
 * MULTIPORT console: named ports) and {@link dev.jvmm.device.virtio.VirtioRng}.
 *
 * <p>Wiring in a VMM: {@code new VirtioMmioTransport(device, guestMemory, interruptLine)} on the MMIO bus
 * for {@code WINDOW_SIZE} bytes; per queue an ioeventfd at {@code base + QUEUE_NOTIFY} (4 bytes,
 * datamatch = queue index) whose event-loop handler calls {@code transport.notify(queue)}; the
 * interrupt line raises an irqfd. One lock per device (its monitor) serialises everything.
 */
package dev.jvmm.device.virtio;
