package dev.jvmm.device.virtio;

import dev.jvmm.device.BusDevice;
import dev.jvmm.device.DeviceState;
import dev.jvmm.memory.GuestMemory;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.ArrayDeque;

/**
 * The virtio-mmio transport, version 2 (virtio 1.2, 4.2.2): the register window of one device.
 *
 * <p><b>Wiring.</b> Register the transport on the MMIO bus for {@link #WINDOW_SIZE} bytes. Queue
 * notifications should come from an ioeventfd on {@code base + }{@link #QUEUE_NOTIFY} (4 bytes, datamatch
 * = queue index, one per queue) whose handler on the event loop calls {@link #notify(int)}; a plain MMIO
 * write to QueueNotify takes the same path on the vCPU thread. The {@link VirtioInterrupt} is raised when
 * a used-buffer or configuration-change interrupt is due (an irqfd write for an edge line).
 *
 * <p><b>Register semantics.</b> Registers are 32 bits wide: a register access of another size reads 0
 * and its write is ignored; the configuration space (from 0x100) takes any size, reads past its end
 * return 0 and writes there are ignored. Write-only registers read back their last value.
 * Status bits can only be added (a non-zero write never clears bits; 0 resets). FEATURES_OK is refused
 * (it reads back clear) when the driver did not accept VERSION_1 or accepted a feature that was not
 * offered; DRIVER_OK is refused without FEATURES_OK. DRIVER_OK activates the device. Queue registers
 * are writable only while the selected queue is not ready; writing 1 to QueueReady validates the queue
 * (QueueNum a power of 2 no larger than QueueNumMax, rings aligned and in guest RAM): an invalid queue
 * stays not ready and the device sets DEVICE_NEEDS_RESET with a configuration-change interrupt. After
 * DRIVER_OK, writing 0 to QueueReady is ignored (only a device reset stops a queue). A malformed chain
 * in an active queue also sets DEVICE_NEEDS_RESET and sends a configuration-change interrupt.
 *
 * <p><b>Back-end devices.</b> For a device whose rings another process serves
 * ({@link VirtioDevice#interruptsFromBackEnd()}), the transport still decodes the registers and
 * validates the rings the driver sets up, but that process raises the irqfd itself: InterruptStatus
 * then always has INT_USED_BUFFER set while the device is active.
 *
 * <p><b>Snapshots.</b> As a {@link DeviceState} the transport saves its registers (status, feature
 * selections and the accepted features, queue select, interrupt status, config generation), each
 * queue's size, readiness and ring addresses, a ready queue's {@link SplitVirtqueue.RingState}, and
 * the device's own state ({@link VirtioDevice#saveDeviceState}). Loading checks every value as the
 * guest's register writes are checked (known status bits, features offered, queue sizes and rings as
 * at QueueReady), then activates the device again if it was active and raises the interrupt again if
 * InterruptStatus is set (an edge the guest may already have had: a spurious interrupt, which virtio
 * drivers tolerate, rather than a lost one).
 *
 * <p><b>Threads.</b> Every entry point synchronises on the device object, so vCPU threads (registers)
 * and the event loop ({@link #notify(int)}) are serialised; device I/O runs under that lock.
 */
public final class VirtioMmioTransport implements BusDevice, DeviceState {
    /** Bytes of MMIO the transport decodes: registers and up to 256 bytes of device configuration. */
    public static final long WINDOW_SIZE = 0x200;

    public static final int MAGIC_VALUE = 0x000;
    public static final int VERSION = 0x004;
    public static final int DEVICE_ID = 0x008;
    public static final int VENDOR_ID = 0x00c;
    public static final int DEVICE_FEATURES = 0x010;
    public static final int DEVICE_FEATURES_SEL = 0x014;
    public static final int DRIVER_FEATURES = 0x020;
    public static final int DRIVER_FEATURES_SEL = 0x024;
    public static final int QUEUE_SEL = 0x030;
    public static final int QUEUE_NUM_MAX = 0x034;
    public static final int QUEUE_NUM = 0x038;
    public static final int QUEUE_READY = 0x044;
    public static final int QUEUE_NOTIFY = 0x050;
    public static final int INTERRUPT_STATUS = 0x060;
    public static final int INTERRUPT_ACK = 0x064;
    public static final int STATUS = 0x070;
    public static final int QUEUE_DESC_LOW = 0x080;
    public static final int QUEUE_DESC_HIGH = 0x084;
    public static final int QUEUE_DRIVER_LOW = 0x090;
    public static final int QUEUE_DRIVER_HIGH = 0x094;
    public static final int QUEUE_DEVICE_LOW = 0x0a0;
    public static final int QUEUE_DEVICE_HIGH = 0x0a4;
    public static final int SHM_SEL = 0x0ac;
    public static final int SHM_LEN_LOW = 0x0b0;
    public static final int SHM_LEN_HIGH = 0x0b4;
    public static final int SHM_BASE_LOW = 0x0b8;
    public static final int SHM_BASE_HIGH = 0x0bc;
    public static final int CONFIG_GENERATION = 0x0fc;
    public static final int CONFIG = 0x100;

    public static final int MAGIC = 0x74726976; // "virt"
    public static final int VENDOR = 0x4d564a;  // "JVM"

    public static final int STATUS_ACKNOWLEDGE = 1;
    public static final int STATUS_DRIVER = 2;
    public static final int STATUS_DRIVER_OK = 4;
    public static final int STATUS_FEATURES_OK = 8;
    public static final int STATUS_DEVICE_NEEDS_RESET = 0x40;
    public static final int STATUS_FAILED = 0x80;

    public static final int INT_USED_BUFFER = 1;
    public static final int INT_CONFIG_CHANGE = 2;

    public static final int F_VERSION_1 = 32;
    /** Features the transport and the ring code provide for every device. */
    public static final long TRANSPORT_FEATURES = (1L << F_VERSION_1) | (1L << SplitVirtqueue.F_INDIRECT_DESC)
            | (1L << SplitVirtqueue.F_EVENT_IDX);

    private static final class QueueRegs {
        final int max;
        int num;
        boolean ready;
        long desc;
        long driver;
        long device;
        SplitVirtqueue queue;

        QueueRegs(int max) {
            this.max = max;
            this.num = max;
        }
    }

    private final VirtioDevice device;
    private final GuestMemory memory;
    private final VirtioInterrupt irq;
    private final long offered;
    private final QueueRegs[] queues;
    private final Executor later;
    /** Queues with work left over from a turn, waiting for {@link #later} to run them. */
    private final boolean[] continuing;
    private final ArrayDeque<Integer> continueNow = new ArrayDeque<>();
    private boolean serving;

    private int deviceFeaturesSel;
    private int driverFeaturesSel;
    private long driverFeatures;
    private int queueSel;
    private int status;
    private int interruptStatus;
    private int configGeneration;
    private boolean active;
    private String lastError;

    private final VirtioDevice.Transport host = new VirtioDevice.Transport() {
        @Override
        public void signalUsed(int queue) {
            VirtioMmioTransport.this.signalUsed(queue);
        }

        @Override
        public void continueLater(int queue) {
            VirtioMmioTransport.this.continueLater(queue);
        }

        @Override
        public void queueBroken(VirtqueueException e) {
            needsReset(e.getMessage());
        }

        @Override
        public void configChanged() {
            configGeneration++;
            interrupt(INT_CONFIG_CHANGE);
        }
    };

    /** A transport whose device continues unfinished queue work at once, before notify returns (tests). */
    public VirtioMmioTransport(VirtioDevice device, GuestMemory memory, VirtioInterrupt irq) {
        this(device, memory, irq, null);
    }

    /**
     * @param later runs a device's unfinished queue work in a later turn (the event loop's
     *              {@code execute}); null: continue at once, before {@code notify} returns
     */
    public VirtioMmioTransport(VirtioDevice device, GuestMemory memory, VirtioInterrupt irq, Executor later) {
        this.later = later;
        this.device = device;
        this.memory = memory;
        this.irq = irq;
        this.offered = device.deviceFeatures() | (device.transportFeatures() & TRANSPORT_FEATURES);
        if (device.configSize() < 0 || device.configSize() > WINDOW_SIZE - CONFIG) {
            throw new IllegalArgumentException("device configuration of " + device.configSize() + " bytes does not fit the MMIO window");
        }
        this.queues = new QueueRegs[device.queueCount()];
        this.continuing = new boolean[queues.length];
        for (int i = 0; i < queues.length; i++) {
            int max = device.queueMaxSize(i);
            if (max <= 0 || max > SplitVirtqueue.MAX_SIZE || Integer.bitCount(max) != 1) {
                throw new IllegalArgumentException("queue " + i + " maximum size " + max + " is not a power of 2 up to 32768");
            }
            queues[i] = new QueueRegs(max);
        }
    }

    public VirtioDevice device() {
        return device;
    }

    public int queueCount() {
        return queues.length;
    }

    /** The device's counters (requests, bytes, errors, notifications, interrupts). */
    public Map<String, Long> counters() {
        return device.counters();
    }

    public int status() {
        synchronized (device) {
            return status;
        }
    }

    public int interruptStatus() {
        synchronized (device) {
            return interruptStatus;
        }
    }

    public long negotiatedFeatures() {
        synchronized (device) {
            return (status & STATUS_FEATURES_OK) != 0 ? driverFeatures : 0;
        }
    }

    /** Why the device last set DEVICE_NEEDS_RESET, or null. */
    public String lastError() {
        synchronized (device) {
            return lastError;
        }
    }

    @Override
    public long read(long offset, int size) {
        synchronized (device) {
            if (offset >= CONFIG) return readConfig(offset - CONFIG, size);
            if (size != 4 || (offset & 3) != 0) return 0;
            return readRegister((int) offset) & 0xffff_ffffL;
        }
    }

    @Override
    public void write(long offset, int size, long value) {
        synchronized (device) {
            if (offset >= CONFIG) {
                if (validConfig(offset - CONFIG, size)) device.writeConfig((int) (offset - CONFIG), size, value);
                return;
            }
            if (size != 4 || (offset & 3) != 0) return;
            writeRegister((int) offset, (int) value);
        }
    }

    private boolean validConfig(long off, int size) {
        return (size == 1 || size == 2 || size == 4 || size == 8) && off >= 0 && off + size <= device.configSize();
    }

    private long readConfig(long off, int size) {
        if (!validConfig(off, size)) return 0;
        return device.readConfig((int) off, size);
    }

    private QueueRegs selected() {
        return queueSel >= 0 && queueSel < queues.length ? queues[queueSel] : null;
    }

    private int readRegister(int offset) {
        QueueRegs q = selected();
        return switch (offset) {
            case MAGIC_VALUE -> MAGIC;
            case VERSION -> 2;
            case DEVICE_ID -> device.deviceId();
            case VENDOR_ID -> VENDOR;
            case DEVICE_FEATURES -> switch (deviceFeaturesSel) {
                case 0 -> (int) offered;
                case 1 -> (int) (offered >>> 32);
                default -> 0;
            };
            case DEVICE_FEATURES_SEL -> deviceFeaturesSel;
            case DRIVER_FEATURES -> switch (driverFeaturesSel) {
                case 0 -> (int) driverFeatures;
                case 1 -> (int) (driverFeatures >>> 32);
                default -> 0;
            };
            case DRIVER_FEATURES_SEL -> driverFeaturesSel;
            case QUEUE_SEL -> queueSel;
            case QUEUE_NUM_MAX -> q == null ? 0 : q.max;
            case QUEUE_NUM -> q == null ? 0 : q.num;
            case QUEUE_READY -> q != null && q.ready ? 1 : 0;
            case INTERRUPT_STATUS -> active && device.interruptsFromBackEnd() ? interruptStatus | INT_USED_BUFFER : interruptStatus;
            case STATUS -> status;
            case QUEUE_DESC_LOW -> q == null ? 0 : (int) q.desc;
            case QUEUE_DESC_HIGH -> q == null ? 0 : (int) (q.desc >>> 32);
            case QUEUE_DRIVER_LOW -> q == null ? 0 : (int) q.driver;
            case QUEUE_DRIVER_HIGH -> q == null ? 0 : (int) (q.driver >>> 32);
            case QUEUE_DEVICE_LOW -> q == null ? 0 : (int) q.device;
            case QUEUE_DEVICE_HIGH -> q == null ? 0 : (int) (q.device >>> 32);
            case SHM_LEN_LOW, SHM_LEN_HIGH -> -1; // no shared memory regions
            case CONFIG_GENERATION -> configGeneration;
            default -> 0;
        };
    }

    private void writeRegister(int offset, int value) {
        QueueRegs q = selected();
        switch (offset) {
            case DEVICE_FEATURES_SEL -> deviceFeaturesSel = value;
            case DRIVER_FEATURES -> {
                if ((status & (STATUS_FEATURES_OK | STATUS_DRIVER_OK)) != 0) return; // negotiation is over
                long v = Integer.toUnsignedLong(value);
                if (driverFeaturesSel == 0) driverFeatures = (driverFeatures & 0xffff_ffff_0000_0000L) | v;
                else if (driverFeaturesSel == 1) driverFeatures = (driverFeatures & 0xffff_ffffL) | (v << 32);
            }
            case DRIVER_FEATURES_SEL -> driverFeaturesSel = value;
            case QUEUE_SEL -> queueSel = value;
            case QUEUE_NUM -> {
                if (q != null && !q.ready) q.num = value;
            }
            case QUEUE_READY -> queueReady(q, value);
            case QUEUE_NOTIFY -> notifyLocked(value);
            case INTERRUPT_ACK -> {
                interruptStatus &= ~value;
                if (interruptStatus == 0) irq.lower();
            }
            case STATUS -> writeStatus(value & 0xff);
            case QUEUE_DESC_LOW -> { if (q != null && !q.ready) q.desc = low(q.desc, value); }
            case QUEUE_DESC_HIGH -> { if (q != null && !q.ready) q.desc = high(q.desc, value); }
            case QUEUE_DRIVER_LOW -> { if (q != null && !q.ready) q.driver = low(q.driver, value); }
            case QUEUE_DRIVER_HIGH -> { if (q != null && !q.ready) q.driver = high(q.driver, value); }
            case QUEUE_DEVICE_LOW -> { if (q != null && !q.ready) q.device = low(q.device, value); }
            case QUEUE_DEVICE_HIGH -> { if (q != null && !q.ready) q.device = high(q.device, value); }
            default -> { } // read-only or unknown registers
        }
    }

    private static long low(long old, int v) {
        return (old & 0xffff_ffff_0000_0000L) | Integer.toUnsignedLong(v);
    }

    private static long high(long old, int v) {
        return (old & 0xffff_ffffL) | (Integer.toUnsignedLong(v) << 32);
    }

    private void queueReady(QueueRegs q, int value) {
        if (q == null) return;
        if (value == 0) {
            if (!active) {
                q.ready = false;
                q.queue = null;
            }
            return;
        }
        if (value != 1 || q.ready) return;
        if (q.num <= 0 || q.num > q.max || Integer.bitCount(q.num) != 1) {
            needsReset("queue " + queueSel + ": size " + q.num + " is not a power of 2 no larger than " + q.max);
            return;
        }
        try {
            q.queue = new SplitVirtqueue(memory, q.num, q.desc, q.driver, q.device, driverFeatures & offered);
            q.ready = true;
        } catch (VirtqueueException e) {
            needsReset("queue " + queueSel + ": " + e.getMessage());
        }
    }

    private void writeStatus(int value) {
        if (value == 0) {
            reset();
            return;
        }
        int add = value & ~status & ~STATUS_DEVICE_NEEDS_RESET;
        if ((add & STATUS_FEATURES_OK) != 0) {
            boolean version1 = (driverFeatures & (1L << F_VERSION_1)) != 0;
            boolean subset = (driverFeatures & ~offered) == 0;
            if (!version1 || !subset) add &= ~STATUS_FEATURES_OK;
        }
        if ((add & STATUS_DRIVER_OK) != 0 && ((status | add) & STATUS_FEATURES_OK) == 0) add &= ~STATUS_DRIVER_OK;
        status |= add;
        if ((add & STATUS_DRIVER_OK) != 0 && (status & STATUS_DEVICE_NEEDS_RESET) == 0 && !active) activate();
    }

    private void activate() {
        List<SplitVirtqueue> list = new ArrayList<>(queues.length);
        for (QueueRegs q : queues) list.add(q.ready ? q.queue : null);
        active = true;
        try {
            device.activate(host, java.util.Collections.unmodifiableList(list), driverFeatures);
        } catch (RuntimeException e) {
            active = false;
            needsReset("device activation failed: " + e);
        }
    }

    private void reset() {
        if (active) device.reset();
        active = false;
        for (int i = 0; i < queues.length; i++) queues[i] = new QueueRegs(queues[i].max);
        deviceFeaturesSel = 0;
        driverFeaturesSel = 0;
        driverFeatures = 0;
        queueSel = 0;
        status = 0;
        interruptStatus = 0;
        lastError = null;
        irq.lower();
    }

    private void needsReset(String why) {
        device.stats().errors.incrementAndGet();
        lastError = why;
        if ((status & STATUS_DEVICE_NEEDS_RESET) != 0) return;
        status |= STATUS_DEVICE_NEEDS_RESET;
        if (status != STATUS_DEVICE_NEEDS_RESET) interrupt(INT_CONFIG_CHANGE); // only once a driver is there
    }

    private void interrupt(int bit) {
        interruptStatus |= bit;
        device.stats().interrupts.incrementAndGet();
        irq.raise();
    }

    private void signalUsed(int queue) {
        if (queue < 0 || queue >= queues.length || queues[queue].queue == null) return;
        if (device.interruptsFromBackEnd()) return; // the back end owns the rings and the interrupt
        if (queues[queue].queue.takeNotification()) interrupt(INT_USED_BUFFER);
    }

    /**
     * The driver notified queue {@code queue}: the ioeventfd handler on the event loop calls this (and a
     * QueueNotify register write does too). Ignored unless the device is active, the queue is ready and
     * the device does not need a reset. Never throws for guest-controlled data.
     */
    public void notify(int queue) {
        synchronized (device) {
            notifyLocked(queue);
        }
    }

    private void notifyLocked(int queue) {
        device.stats().notifications.incrementAndGet();
        serving = true;
        try {
            serve(queue);
        } finally {
            serving = false;
        }
        notifyLockedContinue();
    }

    /** Serves queue {@code queue} again after a device stopped with work left (not a notification). */
    public void resume(int queue) {
        synchronized (device) {
            if (queue >= 0 && queue < queues.length) continuing[queue] = false;
            serve(queue);
        }
    }

    private void continueLater(int queue) {
        if (queue < 0 || queue >= queues.length || continuing[queue]) return;
        continuing[queue] = true;
        if (later == null) { // continue at once: after the current turn, or now if there is none
            continueNow.add(queue);
            if (!serving) notifyLockedContinue();
            return;
        }
        later.execute(() -> resume(queue));
    }

    private void notifyLockedContinue() {
        serving = true;
        try {
            Integer next;
            while ((next = continueNow.poll()) != null) {
                continuing[next] = false;
                serve(next);
            }
        } finally {
            serving = false;
        }
    }

    private void serve(int queue) {
        if (!active || (status & STATUS_DEVICE_NEEDS_RESET) != 0) return;
        if (queue < 0 || queue >= queues.length || !queues[queue].ready) return;
        try {
            device.notify(queue);
        } catch (VirtqueueException e) {
            needsReset("queue " + queue + ": " + e.getMessage());
        } catch (RuntimeException e) { // a device bug must not take the VMM down
            needsReset("queue " + queue + ": internal error: " + e);
        }
        signalUsed(queue);
    }

    // ---- snapshots ----

    /** The transport's state format ({@link #saveState}); a load refuses any other. */
    static final int STATE_VERSION = 1;
    /** Status bits a driver can set, and DEVICE_NEEDS_RESET. */
    private static final int STATUS_BITS = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK | STATUS_FEATURES_OK
            | STATUS_DEVICE_NEEDS_RESET | STATUS_FAILED;
    /** The longest reason (why a queue broke, why the device needs a reset) a state may hold, in bytes. */
    static final int MAX_REASON = 4096;
    private static final int NO_REASON = 0xffff;

    @Override
    public String snapshotRefusal() {
        synchronized (device) {
            String why = device.snapshotRefusal();
            if (why != null) return why;
            for (int i = 0; i < queues.length; i++) {
                SplitVirtqueue q = queues[i].queue;
                if (q != null && q.inFlight() > 0) return "queue " + i + " has " + q.inFlight() + " requests in progress";
            }
            return null;
        }
    }

    /**
     * Version, status, device and driver feature selections, accepted features, queue select,
     * interrupt status, config generation, active, last error; per queue its size, readiness, ring
     * addresses and, when ready, its ring state; then the device's own state.
     * @throws IllegalStateException when {@link #snapshotRefusal} says no
     */
    @Override
    public byte[] saveState() {
        synchronized (device) {
            String refused = snapshotRefusal();
            if (refused != null) throw new IllegalStateException(refused);
            ByteBuffer b = ByteBuffer.allocate(64 + MAX_REASON + queues.length * (64 + MAX_REASON)); // at most
            b.put((byte) STATE_VERSION).putInt(status).putInt(deviceFeaturesSel).putInt(driverFeaturesSel).putLong(driverFeatures)
                    .putInt(queueSel).putInt(interruptStatus).putInt(configGeneration).put((byte) (active ? 1 : 0));
            putReason(b, lastError);
            b.putInt(queues.length);
            for (QueueRegs q : queues) {
                b.putInt(q.num).put((byte) (q.ready ? 1 : 0)).putLong(q.desc).putLong(q.driver).putLong(q.device);
                if (!q.ready) continue;
                SplitVirtqueue.RingState r = q.queue.ringState();
                b.putShort((short) r.nextAvail()).putShort((short) r.usedIdx()).putShort((short) r.signalledUsed())
                        .put((byte) ((r.indirect() ? 1 : 0) | (r.eventIdx() ? 2 : 0)));
                putReason(b, r.broken());
            }
            byte[] own = device.saveDeviceState();
            ByteBuffer out = ByteBuffer.allocate(b.position() + 4 + own.length);
            out.put(b.flip()).putInt(own.length).put(own);
            return out.array();
        }
    }

    private static void putReason(ByteBuffer b, String reason) {
        if (reason == null) {
            b.putShort((short) NO_REASON);
            return;
        }
        byte[] u = reason.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(u.length, MAX_REASON);
        b.putShort((short) n).put(u, 0, n);
    }

    private static String reason(ByteBuffer b) {
        int n = Short.toUnsignedInt(b.getShort());
        if (n == NO_REASON) return null;
        DeviceState.check(NAME, "reason length", n, 0, MAX_REASON);
        byte[] u = new byte[n];
        b.get(u);
        return new String(u, StandardCharsets.UTF_8);
    }

    private static final String NAME = "virtio-mmio";

    /** A queue's registers and ring as a state file has them, before they are checked. */
    private record SavedQueue(int num, boolean ready, long desc, long driver, long device, SplitVirtqueue.RingState ring) { }

    /**
     * Sets the state {@link #saveState} gave, after checking every value as the guest's writes are
     * checked; anything out of range is an {@link IllegalArgumentException} and leaves the transport
     * and its device as they were.
     */
    @Override
    public void loadState(byte[] state) {
        int[] regs = new int[6];
        long[] features = new long[1];
        boolean[] wasActive = new boolean[1];
        String[] error = new String[1];
        List<SavedQueue> saved = new ArrayList<>();
        byte[][] own = new byte[1][];
        DeviceState.read(NAME, state, STATE_VERSION, b -> {
            regs[0] = b.getInt();                 // status
            regs[1] = b.getInt();                 // device features select
            regs[2] = b.getInt();                 // driver features select
            features[0] = b.getLong();
            regs[3] = b.getInt();                 // queue select
            regs[4] = b.getInt();                 // interrupt status
            regs[5] = b.getInt();                 // config generation
            wasActive[0] = flag(b.get(), "active");
            error[0] = reason(b);
            int n = b.getInt();
            if (n != queues.length) throw new IllegalArgumentException(NAME + ": " + n + " queues saved, the device has " + queues.length);
            for (int i = 0; i < n; i++) {
                int num = b.getInt();
                boolean ready = flag(b.get(), "queue " + i + " ready");
                long desc = b.getLong(), driver = b.getLong(), dev = b.getLong();
                SplitVirtqueue.RingState ring = null;
                if (ready) {
                    int nextAvail = Short.toUnsignedInt(b.getShort()), usedIdx = Short.toUnsignedInt(b.getShort());
                    int signalled = Short.toUnsignedInt(b.getShort());
                    int flags = DeviceState.check(NAME, "queue " + i + " ring features", b.get(), 0, 3);
                    ring = new SplitVirtqueue.RingState(nextAvail, usedIdx, signalled, (flags & 1) != 0, (flags & 2) != 0, reason(b));
                }
                saved.add(new SavedQueue(num, ready, desc, driver, dev, ring));
            }
            int len = b.getInt();
            DeviceState.check(NAME, "device state length", len, 0, b.remaining());
            own[0] = new byte[len];
            b.get(own[0]);
        });
        int st = regs[0];
        if ((st & ~STATUS_BITS) != 0) throw new IllegalArgumentException(NAME + String.format(": status 0x%x has bits no driver can set", st));
        if ((st & STATUS_FEATURES_OK) != 0) {
            if ((features[0] & (1L << F_VERSION_1)) == 0) throw new IllegalArgumentException(NAME + ": FEATURES_OK without VERSION_1");
            if ((features[0] & ~offered) != 0) {
                throw new IllegalArgumentException(NAME + String.format(": accepted features 0x%x that were not offered (0x%x)", features[0] & ~offered, features[0]));
            }
        }
        if ((st & STATUS_DRIVER_OK) != 0 && (st & STATUS_FEATURES_OK) == 0) throw new IllegalArgumentException(NAME + ": DRIVER_OK without FEATURES_OK");
        if (wasActive[0] && (st & STATUS_DRIVER_OK) == 0) throw new IllegalArgumentException(NAME + ": active without DRIVER_OK");
        if (wasActive[0] && device.interruptsFromBackEnd()) throw new IllegalArgumentException(NAME + ": its queues are a back end's");
        DeviceState.check(NAME, "interrupt status", regs[4], 0, INT_USED_BUFFER | INT_CONFIG_CHANGE);
        QueueRegs[] loaded = new QueueRegs[queues.length];
        for (int i = 0; i < loaded.length; i++) loaded[i] = loadQueue(i, saved.get(i));
        synchronized (device) {
            device.loadDeviceState(own[0]); // checks first: a refusal leaves everything as it was
            if (active) device.reset();
            System.arraycopy(loaded, 0, queues, 0, queues.length);
            Arrays.fill(continuing, false);
            continueNow.clear();
            status = st;
            deviceFeaturesSel = regs[1];
            driverFeaturesSel = regs[2];
            driverFeatures = features[0];
            queueSel = regs[3];
            interruptStatus = regs[4];
            configGeneration = regs[5];
            lastError = error[0];
            active = false;
            if (wasActive[0]) activate();
            if (interruptStatus != 0) irq.raise();
            else irq.lower();
        }
    }

    private static boolean flag(byte b, String what) {
        return DeviceState.check(NAME, what, b, 0, 1) == 1;
    }

    /** A queue's registers from a state, checked as QueueNum and QueueReady writes are. */
    private QueueRegs loadQueue(int i, SavedQueue s) {
        QueueRegs q = new QueueRegs(queues[i].max);
        q.num = s.num();
        q.desc = s.desc();
        q.driver = s.driver();
        q.device = s.device();
        if (!s.ready()) return q;
        if (s.num() <= 0 || s.num() > q.max || Integer.bitCount(s.num()) != 1) {
            throw new IllegalArgumentException(NAME + ": queue " + i + ": size " + s.num() + " is not a power of 2 no larger than " + q.max);
        }
        if ((s.ring().features() & ~offered) != 0) throw new IllegalArgumentException(NAME + ": queue " + i + ": ring features not offered");
        try {
            q.queue = SplitVirtqueue.restored(memory, s.num(), s.desc(), s.driver(), s.device(), s.ring());
        } catch (VirtqueueException e) {
            throw new IllegalArgumentException(NAME + ": queue " + i + ": " + e.getMessage());
        }
        q.ready = true;
        return q;
    }

    @Override
    public String toString() {
        return "virtio-mmio[device " + device.deviceId() + ", status 0x" + Integer.toHexString(status) + ", queues "
                + Arrays.stream(queues).map(q -> q.ready ? "ready" : "off").toList() + "]";
    }
}
