package dev.jvmm.vmm;

import dev.jvmm.device.DeviceState;
import dev.jvmm.kvm.Kvm;
import dev.jvmm.kvm.VcpuFd;
import dev.jvmm.kvm.VmFd;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.Ioctl;
import dev.jvmm.sys.KvmApi;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Saves a paused VM to a directory: {@code memory}, guest RAM as a sparse file (holes where a page
 * is all zeros: never written by the guest), and {@code state}, a {@link SnapshotFile} with each
 * vCPU's KVM state (registers, special registers, FPU, XSAVE, XCRs, the MSRs KVM lists, LAPIC, MP
 * state, events, debug registers, CPUID), read on the vCPU's own thread while it is parked; the
 * in-kernel PIC and IOAPIC, the PIT (when KVM's), the kvmclock saved at the pause; the host's
 * supported CPUID (for a restore to compare); a {@code meta} JSON section: the configuration,
 * the memory layout, what the snapshot holds; and the same facts a restore needs in binary, the
 * {@code restore} section ({@link RestoreConfig}).
 *
 * <p>Every port device's model state ({@link DeviceState}: the UART's registers and FIFO, the
 * i8042, the CMOS RAM and clock offset) and each virtio-mmio transport's (registers, queues and the
 * device's own state) goes in a {@code device.NAME} section; a VM with a device that cannot save its
 * state (a network or vsock back end, a vhost-user one, jvmm's own PIT with --pit user, a queue with
 * a request in progress) is refused, naming it and why.
 */
final class VmSnapshot {
    private VmSnapshot() { }

    static final int PAGE = 4096;

    /** Saves the paused {@code vm} to {@code dir} (created if missing; must be empty); returns facts for the reply. */
    static Map<String, Object> take(Vm vm, Path dir, Map<String, Object> runInfo) throws IOException, ApiRequest.Error {
        long t0 = System.nanoTime();
        VmConfig config = vm.config();
        if (!vm.pauseDone()) throw new ApiRequest.Error("wrong_state", "the VM is not paused: send pause first", null);
        Map<String, DeviceState> models = deviceModels(vm.parts());
        if (!dir.isAbsolute()) throw new ApiRequest.Error("bad_argument", "dir must be an absolute path, not " + dir, null);
        if (!Files.isDirectory(dir)) Files.createDirectories(dir, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"))); // guest memory: the owner's only
        try (DirectoryStream<Path> d = Files.newDirectoryStream(dir)) {
            if (d.iterator().hasNext()) throw new ApiRequest.Error("bad_argument", dir + " is not empty", null);
        }
        VmBuilder.Parts p = vm.parts();
        Map<String, byte[]> sections = new LinkedHashMap<>();
        List<Map<String, byte[]>> cpus = vm.onParkedVcpus((id, fd) -> vcpuState(p.kvm, fd));
        // VM-wide state: the in-kernel irqchip, PIT and clock (KVM's, safe from this thread)
        try (Arena arena = Arena.ofConfined()) {
            for (int chip = 0; chip < KvmApi.KVM_NR_IRQCHIPS; chip++) {
                MemorySegment c = arena.allocate(KvmApi.KVM_IRQCHIP);
                c.set(JAVA_INT, 0, chip);
                p.vmFd.call(KvmApi.KVM_GET_IRQCHIP, c);
                sections.put("vm.irqchip." + chip, c.toArray(JAVA_BYTE));
            }
            if (config.pit() == VmConfig.PitMode.KERNEL) sections.put("vm.pit2", vmGet(arena, p.vmFd, KvmApi.KVM_GET_PIT2, KvmApi.KVM_PIT_STATE2));
            MemorySegment clock = arena.allocate(KvmApi.KVM_CLOCK_DATA);
            clock.set(JAVA_LONG, KvmApi.offset(KvmApi.KVM_CLOCK_DATA, "clock"), vm.pausedClock());
            sections.put("vm.clock", clock.toArray(JAVA_BYTE));
            MemorySegment cpuid = p.kvm.supportedCpuid(arena);
            sections.put("host.supported_cpuid", cpuid.toArray(JAVA_BYTE));
        }
        for (Map.Entry<String, DeviceState> d : models.entrySet()) sections.put("device." + d.getKey(), d.getValue().saveState());
        for (int i = 0; i < cpus.size(); i++) {
            for (Map.Entry<String, byte[]> e : cpus.get(i).entrySet()) sections.put("vcpu." + i + "." + e.getKey(), e.getValue());
        }
        long[] written = new long[1];
        List<Object> regions = writeMemory(p.memory, dir.resolve("memory"), written);
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("format", SnapshotFile.VERSION);
        meta.put("vcpus", cpus.size());
        meta.put("memory_regions", regions);
        meta.put("run", runInfo);
        meta.put("config", vm.info().get("config"));
        meta.put("devices", List.copyOf(models.keySet()));
        meta.put("virtio_devices", virtioDevices(config.virtio(), p.virtio));
        sections.put("meta", Json.line(meta).getBytes(StandardCharsets.UTF_8));
        sections.put(RestoreConfig.SECTION, restoreConfig(config, regions, config.virtio(), p.virtio).encode());
        SnapshotFile.write(dir.resolve("state"), sections);
        Map<String, Object> reply = new LinkedHashMap<>();
        reply.put("dir", dir.toString());
        reply.put("memory_bytes", Files.size(dir.resolve("memory")));
        reply.put("memory_written_bytes", written[0]);
        reply.put("state_bytes", Files.size(dir.resolve("state")));
        reply.put("sections", sections.size());
        reply.put("ms", (System.nanoTime() - t0) / 1_000_000);
        return reply;
    }

    /**
     * The port and MMIO devices whose state the snapshot saves, by bus name (a device on two ranges,
     * as the i8042 is, once); refuses, naming them, devices that can neither save their state nor
     * have none.
     */
    static Map<String, DeviceState> deviceModels(VmBuilder.Parts p) throws ApiRequest.Error {
        Map<String, DeviceState> models = new LinkedHashMap<>();
        List<String> unsupported = new ArrayList<>(), plain = new ArrayList<>();
        for (dev.jvmm.device.Bus bus : List.of(p.pio, p.mmio)) {
            for (dev.jvmm.device.Bus.Range r : bus.ranges()) {
                if (models.containsKey(r.name())) continue;
                if (r.device() instanceof DeviceState ds && ds.snapshotRefusal() != null) unsupported.add(r.name() + " (" + ds.snapshotRefusal() + ")");
                else if (r.device() instanceof DeviceState ds) models.put(r.name(), ds);
                else if (!(r.device() instanceof DeviceState.Stateless) && !plain.contains(r.name())) plain.add(r.name());
            }
        }
        plain.removeAll(models.keySet()); // the i8042's command port: its state is the controller's
        for (String name : plain) unsupported.add(name + " (its state is not saved yet)");
        if (!unsupported.isEmpty()) {
            throw new ApiRequest.Error("unsupported_device", "cannot snapshot these devices: " + String.join("; ", unsupported), null);
        }
        return models;
    }

    /**
     * What a restore needs to make the virtio devices again, in slot order: each one's slot name and
     * kind, and for a disk the image it was on and whether read-only (the image is given again with
     * --disk; its capacity is checked against the device's state).
     */
    /** The {@code restore} section's content: what the meta section says of the VM's shape, RAM and devices. */
    private static RestoreConfig restoreConfig(VmConfig config, List<Object> regions, List<VirtioSpec> specs, VirtioMmioDevices virtio) {
        List<long[]> layout = new ArrayList<>();
        for (Object o : regions) {
            Map<?, ?> r = (Map<?, ?>) o;
            layout.add(new long[] {((Number) r.get("gpa")).longValue(), ((Number) r.get("size")).longValue(),
                    ((Number) r.get("file_offset")).longValue()});
        }
        List<RestoreConfig.Device> devices = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            VirtioSpec.Disk disk = specs.get(i) instanceof VirtioSpec.Disk d ? d : null;
            devices.add(new RestoreConfig.Device(virtio.slots().get(i).name(), specs.get(i).kind(),
                    disk == null ? "" : disk.image().toAbsolutePath().toString(), disk != null && disk.readOnly()));
        }
        return new RestoreConfig(config.cpus(), config.memBytes(), config.acpi(), config.pit().name().toLowerCase(java.util.Locale.ROOT),
                layout, devices);
    }

    private static List<Object> virtioDevices(List<VirtioSpec> specs, VirtioMmioDevices virtio) {
        List<Object> out = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("slot", virtio.slots().get(i).name());
            d.put("kind", specs.get(i).kind());
            if (specs.get(i) instanceof VirtioSpec.Disk disk) {
                d.put("image", disk.image().toAbsolutePath().toString());
                d.put("read_only", disk.readOnly());
            }
            out.add(d);
        }
        return out;
    }

    private static byte[] vmGet(Arena arena, VmFd vm, Ioctl.Request r, MemoryLayout l) {
        MemorySegment s = arena.allocate(l);
        vm.call(r, s);
        return s.toArray(JAVA_BYTE);
    }

    /** One vCPU's state, by section name; on that vCPU's thread. */
    static Map<String, byte[]> vcpuState(Kvm kvm, VcpuFd v) {
        Map<String, byte[]> m = new LinkedHashMap<>();
        try (Arena arena = Arena.ofConfined()) {
            m.put("regs", get(arena, v, KvmApi.KVM_GET_REGS, KvmApi.KVM_REGS));
            m.put("sregs", get(arena, v, KvmApi.KVM_GET_SREGS, KvmApi.KVM_SREGS));
            m.put("fpu", get(arena, v, KvmApi.KVM_GET_FPU, KvmApi.KVM_FPU));
            if (kvm.checkExtension(KvmApi.KVM_CAP_XSAVE) > 0) m.put("xsave", get(arena, v, KvmApi.KVM_GET_XSAVE, KvmApi.KVM_XSAVE));
            if (kvm.checkExtension(KvmApi.KVM_CAP_XCRS) > 0) m.put("xcrs", get(arena, v, KvmApi.KVM_GET_XCRS, KvmApi.KVM_XCRS));
            m.put("msrs", msrs(arena, v, kvm.msrIndexList()));
            m.put("lapic", get(arena, v, KvmApi.KVM_GET_LAPIC, KvmApi.KVM_LAPIC_STATE));
            m.put("mp_state", get(arena, v, KvmApi.KVM_GET_MP_STATE, KvmApi.KVM_MP_STATE));
            m.put("events", get(arena, v, KvmApi.KVM_GET_VCPU_EVENTS, KvmApi.KVM_VCPU_EVENTS));
            m.put("debugregs", get(arena, v, KvmApi.KVM_GET_DEBUGREGS, KvmApi.KVM_DEBUGREGS));
            m.put("cpuid", cpuid(arena, v));
        }
        return m;
    }

    private static byte[] get(Arena arena, VcpuFd v, Ioctl.Request r, MemoryLayout l) {
        MemorySegment s = arena.allocate(l);
        v.call(r, s);
        return s.toArray(JAVA_BYTE);
    }

    /**
     * A {@code struct kvm_msrs} with every MSR of {@code indices} this vCPU has (KVM_GET_MSRS stops at
     * the first it cannot read: that one is left out and the rest read again), ready for KVM_SET_MSRS.
     */
    static byte[] msrs(Arena arena, VcpuFd v, int[] indices) {
        long entry = KvmApi.KVM_MSR_ENTRY.byteSize(), header = KvmApi.KVM_MSRS.byteSize();
        List<long[]> got = new ArrayList<>();
        int from = 0;
        while (from < indices.length) {
            int n = indices.length - from;
            MemorySegment s = arena.allocate(header + n * entry, 8);
            s.set(JAVA_INT, 0, n);
            for (int i = 0; i < n; i++) s.set(JAVA_INT, header + i * entry, indices[from + i]);
            int read = v.call(KvmApi.KVM_GET_MSRS, s);
            for (int i = 0; i < read; i++) {
                got.add(new long[] {Integer.toUnsignedLong(s.get(JAVA_INT, header + i * entry)), s.get(JAVA_LONG, header + i * entry + 8)});
            }
            from += read + 1; // skip the one KVM could not read
        }
        MemorySegment out = arena.allocate(header + got.size() * entry, 8);
        out.set(JAVA_INT, 0, got.size());
        for (int i = 0; i < got.size(); i++) {
            out.set(JAVA_INT, header + i * entry, (int) got.get(i)[0]);
            out.set(JAVA_LONG, header + i * entry + 8, got.get(i)[1]);
        }
        return out.toArray(JAVA_BYTE);
    }

    private static byte[] cpuid(Arena arena, VcpuFd v) {
        for (int n = 64; n <= 4096; n *= 4) {
            MemorySegment s = arena.allocate(KvmApi.KVM_CPUID2.byteSize() + n * KvmApi.KVM_CPUID_ENTRY2.byteSize(), 8);
            s.set(JAVA_INT, 0, n);
            try {
                v.call(KvmApi.KVM_GET_CPUID2, s);
            } catch (RuntimeException e) {
                if (n < 4096 && String.valueOf(e.getMessage()).contains("E2BIG")) continue;
                throw e;
            }
            int got = s.get(JAVA_INT, 0);
            return s.asSlice(0, KvmApi.KVM_CPUID2.byteSize() + got * KvmApi.KVM_CPUID_ENTRY2.byteSize()).toArray(JAVA_BYTE);
        }
        throw new IllegalStateException("KVM_GET_CPUID2: more than 4096 entries");
    }

    /**
     * Guest RAM into {@code file}, the regions one after another: only pages with a non-zero byte
     * are written, so the rest stay holes (the file's size is all of RAM, its blocks what the guest
     * wrote). Returns each region's guest address, size and file offset.
     */
    static List<Object> writeMemory(GuestMemory memory, Path file, long[] written) throws IOException {
        List<Object> regions = new ArrayList<>();
        MemorySegment zero = Arena.ofAuto().allocate(PAGE);
        long offset = 0;
        try (FileChannel ch = FileChannel.open(file, java.util.Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                SnapshotFile.OWNER_ONLY)) {
            for (GuestMemory.Region r : memory.regions()) {
                MemorySegment host = r.host().reinterpret(r.size());
                long page = 0;
                while (page < r.size()) {
                    long len = Math.min(PAGE, r.size() - page);
                    if (host.asSlice(page, len).mismatch(zero.asSlice(0, len)) < 0) {
                        page += len;
                        continue;
                    }
                    long run = page + len; // a run of non-zero pages: one write
                    while (run < r.size() && run - page < (8 << 20)) {
                        long l = Math.min(PAGE, r.size() - run);
                        if (host.asSlice(run, l).mismatch(zero.asSlice(0, l)) < 0) break;
                        run += l;
                    }
                    ByteBuffer b = host.asSlice(page, run - page).asByteBuffer();
                    long at = offset + page;
                    while (b.hasRemaining()) at += ch.write(b, at);
                    written[0] += run - page;
                    page = run;
                }
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("gpa", r.gpa());
                m.put("size", r.size());
                m.put("file_offset", offset);
                regions.add(m);
                offset += r.size();
            }
            ch.force(true);
        }
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(offset); // the size of RAM, the rest a hole
        }
        return regions;
    }
}
