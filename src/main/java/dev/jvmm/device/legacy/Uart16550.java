package dev.jvmm.device.legacy;

import dev.jvmm.device.BusDevice;
import dev.jvmm.device.ConsoleEndpoint;
import dev.jvmm.device.IrqLine;

import java.util.Objects;
import java.util.function.IntConsumer;

/**
 * A 16550A UART (8 byte registers), as found at COM1-COM4.
 *
 * <p>Model choices, where real hardware depends on time:
 * <ul>
 *   <li>Transmission is instantaneous: a THR write hands the byte to the output sink at once, so
 *       THRE and TEMT are always set. With ETBEI enabled, a THR write clears the THRE interrupt and
 *       immediately raises it again; the line is evaluated once per register access, so there is
 *       no low pulse in between. Guests that acknowledge THRE by reading IIR (as Linux does) see a
 *       fresh edge on the next interrupt.</li>
 *   <li>The character timeout is taken to have elapsed whenever the receive FIFO holds data below
 *       the trigger level: the host delivers input in whole batches ({@link #receive}), so no more
 *       is about to arrive. IIR then reports 0x0c instead of 0x04.</li>
 *   <li>Host input is never dropped: {@link #receive} takes only what fits and the caller keeps the
 *       rest. Overrun (LSR.OE) can only happen in loopback mode. While in loopback the receiver is
 *       disconnected from the host, so {@code receive} takes nothing.</li>
 *   <li>MCR.OUT2 does not gate the interrupt line (the PC board's tri-state buffer is not modelled).</li>
 *   <li>Accesses of any size act on the low byte; reads return one byte, zero-extended.</li>
 * </ul>
 *
 * <p>Threads: vCPU threads access registers while the event loop calls {@link #receive}; every
 * entry point takes this object's monitor. The IRQ line and the output sink are called with the
 * monitor held (keeping interrupt levels and output in order) and must not block; the RX space
 * listener is called without it.
 */
public final class Uart16550 implements BusDevice, ConsoleEndpoint, dev.jvmm.device.DeviceState {
    /** Registers: the UART decodes 8 consecutive ports. */
    public static final int LENGTH = 8;
    // Register offsets.
    private static final int RBR_THR_DLL = 0, IER_DLM = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

    // IER bits.
    static final int IER_ERBFI = 0x01, IER_ETBEI = 0x02, IER_ELSI = 0x04, IER_EDSSI = 0x08;
    // IIR values.
    static final int IIR_NONE = 0x01, IIR_MSR = 0x00, IIR_THRE = 0x02, IIR_RDA = 0x04, IIR_RLS = 0x06,
            IIR_TIMEOUT = 0x0c, IIR_FIFO_ENABLED = 0xc0;
    // FCR bits.
    static final int FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02, FCR_CLEAR_TX = 0x04;
    // LCR bits.
    static final int LCR_DLAB = 0x80;
    // MCR bits.
    static final int MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
    // LSR bits.
    static final int LSR_DR = 0x01, LSR_OE = 0x02, LSR_PE = 0x04, LSR_FE = 0x08, LSR_BI = 0x10,
            LSR_THRE = 0x20, LSR_TEMT = 0x40;
    private static final int LSR_ERRORS = LSR_OE | LSR_PE | LSR_FE | LSR_BI;
    // MSR bits: deltas in the low nibble, input states in the high one.
    static final int MSR_DCTS = 0x01, MSR_DDSR = 0x02, MSR_TERI = 0x04, MSR_DDCD = 0x08,
            MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80;

    static final int FIFO_SIZE = 16;
    private static final int[] TRIGGER_LEVELS = {1, 4, 8, 14};

    private final IrqLine irq;
    private final IntConsumer output;
    private volatile Runnable rxSpaceListener;

    private final byte[] rxFifo = new byte[FIFO_SIZE];
    private int rxHead;
    private int rxCount;

    private int ier;
    private int lcr;
    private int mcr;
    private int scr;
    private int dll = 0x0c;        // 9600 baud with the usual 1.8432 MHz clock; only stored
    private int dlm;
    private boolean fifoEnabled;
    private int rxTrigger = 1;
    private int lsrErrors;
    private int msrDeltas;
    private boolean thrInterrupt;
    /** {@link #receive} was refused some input and has not been told about new space yet. */
    private boolean hostRefused;
    /** The receive FIFO holds loopback data (the host cannot send while loopback is on). */
    private boolean rxFromLoopback;
    /** Set under the monitor when the RX space listener should run once the monitor is released. */
    private boolean notifyRxSpace;
    private boolean irqLevel;

    /**
     * @param irq the line the UART drives as a level
     * @param output receives each transmitted byte (0..255), with the UART's monitor held
     */
    public Uart16550(IrqLine irq, IntConsumer output) {
        this.irq = Objects.requireNonNull(irq, "irq");
        this.output = Objects.requireNonNull(output, "output");
    }

    /**
     * Sets what to run when input refused by {@link #receive} may now fit: after a guest read that
     * empties the receive FIFO, after any guest read while the host had been refused, and when
     * loopback ends or the FIFO is cleared or grown. Runs on a vCPU thread without the monitor
     * held, so it must be quick (signal an eventfd, say) and may call back into the UART.
     */
    public void setRxSpaceListener(Runnable listener) {
        this.rxSpaceListener = listener;
    }

    /**
     * Queues host input for the guest.
     *
     * @return how many bytes of {@code buf[off, off + len)} were taken; the caller keeps the rest
     *     and retries once the RX space listener has run
     */
    public int receive(byte[] buf, int off, int len) {
        Objects.checkFromIndexSize(off, len, buf.length);
        synchronized (this) {
            int n = (mcr & MCR_LOOP) != 0 ? 0 : Math.min(len, Math.max(0, capacity() - rxCount));
            for (int i = 0; i < n; i++) {
                rxFifo[(rxHead + rxCount + i) % FIFO_SIZE] = buf[off + i];
            }
            rxCount += n;
            if (n < len) {
                hostRefused = true;
            }
            updateIrq();
            return n;
        }
    }

    @Override
    public int offer(byte[] buf, int off, int len) {
        return receive(buf, off, len);
    }

    @Override
    public void onInputSpace(Runnable listener) {
        setRxSpaceListener(listener);
    }

    /** How many bytes {@link #receive} would take now. */
    public synchronized int rxSpace() {
        return (mcr & MCR_LOOP) != 0 ? 0 : Math.max(0, capacity() - rxCount);
    }

    /** The level last driven on the IRQ line. */
    public synchronized boolean irqLevel() {
        return irqLevel;
    }

    @Override
    public long read(long offset, int size) {
        int value;
        boolean notify;
        synchronized (this) {
            value = readRegister(register(offset));
            updateIrq();
            notify = notifyRxSpace;
            notifyRxSpace = false;
        }
        if (notify) {
            runListener();
        }
        return value;
    }

    @Override
    public void write(long offset, int size, long value) {
        boolean notify;
        synchronized (this) {
            writeRegister(register(offset), (int) value & 0xff);
            updateIrq();
            notify = notifyRxSpace;
            notifyRxSpace = false;
        }
        if (notify) {
            runListener();
        }
    }

    /** The register number, or -1 (reads as 0xff, writes ignored) outside the 8-byte window. */
    private static int register(long offset) {
        return offset >= 0 && offset < 8 ? (int) offset : -1;
    }

    private int readRegister(int offset) {
        switch (offset) {
            case RBR_THR_DLL:
                return (lcr & LCR_DLAB) != 0 ? dll : popRx();
            case IER_DLM:
                return (lcr & LCR_DLAB) != 0 ? dlm : ier;
            case IIR_FCR: {
                int iir = pendingInterrupt();
                if (iir == IIR_THRE) {
                    thrInterrupt = false;     // reading IIR acknowledges THRE when it is the source
                }
                return iir | (fifoEnabled ? IIR_FIFO_ENABLED : 0);
            }
            case LCR:
                return lcr;
            case MCR:
                return mcr;
            case LSR: {
                int lsr = lsr();
                lsrErrors = 0;
                return lsr;
            }
            case MSR: {
                int msr = modemInputs(mcr) | msrDeltas;
                msrDeltas = 0;
                return msr;
            }
            case SCR:
                return scr;
            default:
                return 0xff;
        }
    }

    private void writeRegister(int offset, int value) {
        switch (offset) {
            case RBR_THR_DLL -> {
                if ((lcr & LCR_DLAB) != 0) {
                    dll = value;
                } else {
                    transmit(value);
                }
            }
            case IER_DLM -> {
                if ((lcr & LCR_DLAB) != 0) {
                    dlm = value;
                } else {
                    int old = ier;
                    ier = value & 0x0f;
                    // THR is always empty, so enabling ETBEI raises THRE; disabling it drops it.
                    if ((ier & IER_ETBEI) == 0) {
                        thrInterrupt = false;
                    } else if ((old & IER_ETBEI) == 0) {
                        thrInterrupt = true;
                    }
                }
            }
            case IIR_FCR -> writeFcr(value);
            case LCR -> lcr = value;
            case MCR -> writeMcr(value & 0x1f);
            case SCR -> scr = value;
            default -> { }    // LSR and MSR are read-only
        }
    }

    private void transmit(int b) {
        thrInterrupt = false;
        if ((mcr & MCR_LOOP) != 0) {
            loopbackReceive(b);
        } else {
            output.accept(b);
        }
        // The THR is empty again at once.
        thrInterrupt = (ier & IER_ETBEI) != 0;
    }

    private void loopbackReceive(int b) {
        if (rxCount < capacity()) {
            rxFifo[(rxHead + rxCount) % FIFO_SIZE] = (byte) b;
            rxCount++;
            rxFromLoopback = true;
        } else {
            lsrErrors |= LSR_OE;
            if (!fifoEnabled) {
                rxFifo[rxHead] = (byte) b;    // without FIFOs, the new character overwrites RBR
            }
        }
    }

    private int popRx() {
        if (rxCount == 0) {
            return 0;
        }
        int b = rxFifo[rxHead] & 0xff;
        rxHead = (rxHead + 1) % FIFO_SIZE;
        rxCount--;
        if (rxCount == 0) rxFromLoopback = false;
        if (rxCount == 0 || hostRefused) {
            requestRxSpaceNotify();
        }
        return b;
    }

    private void writeFcr(int value) {
        boolean enable = (value & FCR_ENABLE) != 0;
        boolean hadData = rxCount > 0;
        if (enable != fifoEnabled) {
            fifoEnabled = enable;
            clearRx();                          // changing the FIFO mode resets both FIFOs
        }
        if (enable) {
            if ((value & FCR_CLEAR_RX) != 0) {
                clearRx();
            }
            // FCR_CLEAR_TX: the transmitter never holds anything.
            rxTrigger = TRIGGER_LEVELS[(value >> 6) & 3];
        } else {
            rxTrigger = 1;
        }
        if ((hadData && rxCount == 0) || (hostRefused && rxSpace() > 0)) {
            requestRxSpaceNotify();
        }
    }

    /**
     * Clearing the receive FIFO (FCR, or a FIFO mode change) discards only what loopback put there.
     * Host input is never discarded: on real hardware the bytes a clear throws away are line noise
     * or input that came too early, but here every byte is something a user typed or piped, and a
     * guest clears the FIFO while setting the port up, after input may already have arrived.
     */
    private void clearRx() {
        if (rxFromLoopback) {
            rxHead = 0;
            rxCount = 0;
            rxFromLoopback = false;
        }
    }

    private void writeMcr(int value) {
        int oldInputs = modemInputs(mcr);
        boolean wasLoop = (mcr & MCR_LOOP) != 0;
        mcr = value;
        int inputs = modemInputs(mcr);
        int changed = oldInputs ^ inputs;
        if ((changed & MSR_CTS) != 0) {
            msrDeltas |= MSR_DCTS;
        }
        if ((changed & MSR_DSR) != 0) {
            msrDeltas |= MSR_DDSR;
        }
        if ((oldInputs & MSR_RI) != 0 && (inputs & MSR_RI) == 0) {
            msrDeltas |= MSR_TERI;            // trailing edge only
        }
        if ((changed & MSR_DCD) != 0) {
            msrDeltas |= MSR_DDCD;
        }
        if (wasLoop && (mcr & MCR_LOOP) == 0 && hostRefused && rxSpace() > 0) {
            requestRxSpaceNotify();
        }
    }

    /** The MSR input bits: MCR outputs looped back, or CTS, DSR and DCD asserted by the host side. */
    private static int modemInputs(int mcr) {
        if ((mcr & MCR_LOOP) == 0) {
            return MSR_CTS | MSR_DSR | MSR_DCD;
        }
        int v = 0;
        if ((mcr & MCR_RTS) != 0) {
            v |= MSR_CTS;
        }
        if ((mcr & MCR_DTR) != 0) {
            v |= MSR_DSR;
        }
        if ((mcr & MCR_OUT1) != 0) {
            v |= MSR_RI;
        }
        if ((mcr & MCR_OUT2) != 0) {
            v |= MSR_DCD;
        }
        return v;
    }

    private int lsr() {
        return (rxCount > 0 ? LSR_DR : 0) | lsrErrors | LSR_THRE | LSR_TEMT;
    }

    private int capacity() {
        return fifoEnabled ? FIFO_SIZE : 1;
    }

    /** The IIR identification bits (without the FIFO bits), highest-priority source first. */
    private int pendingInterrupt() {
        if ((ier & IER_ELSI) != 0 && lsrErrors != 0) {
            return IIR_RLS;
        }
        if ((ier & IER_ERBFI) != 0 && rxCount > 0) {
            return rxCount >= rxTrigger ? IIR_RDA : IIR_TIMEOUT;
        }
        if ((ier & IER_ETBEI) != 0 && thrInterrupt) {
            return IIR_THRE;
        }
        if ((ier & IER_EDSSI) != 0 && msrDeltas != 0) {
            return IIR_MSR;
        }
        return IIR_NONE;
    }

    private void updateIrq() {
        boolean level = pendingInterrupt() != IIR_NONE;
        if (level != irqLevel) {
            irqLevel = level;
            irq.set(level);
        }
    }

    private void requestRxSpaceNotify() {
        hostRefused = false;
        notifyRxSpace = true;
    }

    private void runListener() {
        Runnable r = rxSpaceListener;
        if (r != null) {
            r.run();
        }
    }

    // ---- snapshot state ----

    private static final int STATE_VERSION = 1;

    /** Registers, FIFO contents and interrupt conditions (version 1). */
    @Override
    public synchronized byte[] saveState() {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 + FIFO_SIZE + 14 * 4);
        b.put((byte) STATE_VERSION).put(rxFifo);
        for (int v : new int[] {rxHead, rxCount, ier, lcr, mcr, scr, dll, dlm, fifoEnabled ? 1 : 0, rxTrigger, lsrErrors, msrDeltas,
                thrInterrupt ? 1 : 0, (hostRefused ? 1 : 0) | (rxFromLoopback ? 2 : 0)}) {
            b.putInt(v);
        }
        return b.array();
    }

    @Override
    public void loadState(byte[] state) {
        byte[] fifo = new byte[FIFO_SIZE];
        int[] v = new int[14];
        dev.jvmm.device.DeviceState.read("uart", state, STATE_VERSION, b -> {
            b.get(fifo);
            for (int i = 0; i < v.length; i++) v[i] = b.getInt();
        });
        String d = "uart";
        dev.jvmm.device.DeviceState.check(d, "rx head", v[0], 0, FIFO_SIZE - 1);
        dev.jvmm.device.DeviceState.check(d, "rx count", v[1], 0, FIFO_SIZE);
        for (int i = 2; i <= 7; i++) dev.jvmm.device.DeviceState.check(d, "register " + i, v[i], 0, 0xff);
        dev.jvmm.device.DeviceState.check(d, "fifo enabled", v[8], 0, 1);
        if (java.util.Arrays.stream(TRIGGER_LEVELS).noneMatch(t -> t == v[9])) {
            throw new IllegalArgumentException(d + ": rx trigger " + v[9] + " is not 1, 4, 8 or 14");
        }
        dev.jvmm.device.DeviceState.check(d, "line errors", v[10], 0, LSR_ERRORS);
        dev.jvmm.device.DeviceState.check(d, "modem deltas", v[11], 0, 0x0f);
        dev.jvmm.device.DeviceState.check(d, "thr interrupt", v[12], 0, 1);
        dev.jvmm.device.DeviceState.check(d, "flags", v[13], 0, 3);
        synchronized (this) {
            System.arraycopy(fifo, 0, rxFifo, 0, FIFO_SIZE);
            rxHead = v[0];
            rxCount = v[1];
            ier = v[2];
            lcr = v[3];
            mcr = v[4];
            scr = v[5];
            dll = v[6];
            dlm = v[7];
            fifoEnabled = v[8] != 0;
            rxTrigger = v[9];
            lsrErrors = v[10];
            msrDeltas = v[11];
            thrInterrupt = v[12] != 0;
            hostRefused = (v[13] & 1) != 0;
            rxFromLoopback = (v[13] & 2) != 0;
            notifyRxSpace = false;
            irqLevel = pendingInterrupt() != IIR_NONE;
            irq.set(irqLevel); // drive the line as the state says, whatever it was
        }
    }
}
