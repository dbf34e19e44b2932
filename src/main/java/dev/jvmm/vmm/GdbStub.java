package dev.jvmm.vmm;

import dev.jvmm.gdb.DebugRegisters;
import dev.jvmm.gdb.GdbServer;
import dev.jvmm.gdb.GdbTarget;
import dev.jvmm.gdb.StopEvent;
import dev.jvmm.gdb.X86Registers;
import dev.jvmm.kvm.KvmRun;
import dev.jvmm.kvm.VcpuFd;
import dev.jvmm.memory.GuestMemory;
import dev.jvmm.sys.KvmApi;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * {@code --gdb}: the {@link GdbTarget} of a {@link Vm}. Stopping is the VM's pause: a debug exit (an
 * int3 of the debugger's, a debug-register hit, a single step) or an interrupt asks every vCPU to
 * park, and once the pause is complete the stop is reported. Register and memory access runs on the
 * parked vCPU's own thread; memory goes through KVM_TRANSLATE on that vCPU, so addresses are the
 * guest's virtual ones (physical where its paging is off).
 */
public final class GdbStub implements GdbTarget {
    private final Vm vm;
    private final GuestMemory memory;
    private final int cpus;
    private GdbServer server;
    private volatile Listener listener;
    /** Per vCPU, the KVM_SET_GUEST_DEBUG it runs with (read on its own thread at a debug exit). */
    private final int[] control;
    private volatile long[] dr = new long[8];
    private volatile Set<Long> swBreakpoints = Set.of();
    /** The stop to report once the pause completes; the first debug exit wins. */
    private final AtomicReference<StopEvent> pending = new AtomicReference<>();
    private final Object waiterLock = new Object();

    private GdbStub(Vm vm) {
        this.vm = vm;
        this.memory = vm.memory();
        this.cpus = vm.vcpuCount();
        this.control = new int[cpus];
    }

    /**
     * Binds the address and serves it for {@code vm}; with {@code wait}, the vCPUs stay stopped until
     * a debugger continues them.
     * @throws VmmException with status 2 if the address cannot be listened on
     */
    public static GdbStub start(Vm vm, GdbServer.Address address, boolean wait) throws VmmException {
        GdbStub stub = new GdbStub(vm);
        try {
            stub.server = GdbServer.open(address, stub, m -> System.err.println("jvmm: " + m));
        } catch (IOException | RuntimeException e) {
            throw new VmmException(ExitStatus.USAGE, "--gdb " + address + ": cannot listen: " + e.getMessage());
        }
        vm.attachGdb(stub);
        if (wait) vm.startPaused();
        System.err.println("jvmm: gdb stub listening on " + stub.server.boundTo()
                + (wait ? "; the vCPUs wait for a debugger (--gdb-wait)" : ""));
        stub.server.start();
        Thread.ofPlatform().name("gdb stop waiter").daemon(true).start(stub::waiter);
        return stub;
    }

    /** Whether a debugger is attached now. */
    boolean attached() {
        return listener != null;
    }

    public String boundTo() {
        return server.boundTo();
    }

    public void close() {
        server.close();
    }

    /** The run ends: the debugger hears the status. */
    void vmStopped(int status) {
        server.targetExited(status);
    }

    // ---- GdbTarget ----

    @Override
    public int cpus() {
        return cpus;
    }

    /** Not on a host whose KVM emulates guest code: its emulator cannot execute int3 (the guest would stop with status 12). */
    @Override
    public boolean softwareBreakpoints() {
        return dev.jvmm.host.HostInfo.virtualization() == dev.jvmm.host.HostInfo.Virtualization.HARDWARE;
    }

    @Override
    public void attach(Listener l) {
        listener = l;
        awaitPause();
    }

    /** Stops every vCPU (if they run) and waits until they have; false if the VM ends first. */
    private boolean awaitPause() {
        while (!vm.pauseDone()) {
            if (vm.stopping()) return false;
            vm.requestPause(); // "not running yet" until Vm.run started the vCPUs: keep asking
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }

    @Override
    public boolean stopped() {
        return vm.pauseDone();
    }

    @Override
    public byte[] readRegisters(int cpu) throws TargetException {
        check(cpu);
        return vm.onParkedVcpu(cpu, GdbStub::image);
    }

    @Override
    public void writeRegisters(int cpu, byte[] image) throws TargetException {
        check(cpu);
        if (image.length != X86Registers.IMAGE_BYTES) throw new TargetException("bad register image");
        String why = vm.onParkedVcpu(cpu, fd -> setImage(fd, image));
        if (why != null) throw new TargetException(why);
    }

    private void check(int cpu) throws TargetException {
        if (cpu < 0 || cpu >= cpus) throw new TargetException("no vCPU " + cpu);
        if (!vm.pauseDone()) throw new TargetException("the VM is not stopped");
    }

    @Override
    public byte[] readMemory(int cpu, long address, int length) {
        if (cpu < 0 || cpu >= cpus || !vm.pauseDone() || length <= 0) return new byte[0];
        return vm.onParkedVcpu(cpu, fd -> {
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(length);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment t = arena.allocate(KvmApi.KVM_TRANSLATION);
                long va = address;
                int left = length;
                while (left > 0) {
                    int chunk = (int) Math.min(left, 4096 - (va & 4095));
                    long pa = translate(fd, t, va);
                    if (pa < 0 || !memory.contains(pa, chunk)) break;
                    out.writeBytes(memory.read(pa, chunk));
                    va += chunk;
                    left -= chunk;
                }
            }
            return out.toByteArray();
        });
    }

    @Override
    public boolean writeMemory(int cpu, long address, byte[] data) {
        if (cpu < 0 || cpu >= cpus || !vm.pauseDone() || data.length == 0) return data.length == 0;
        return vm.onParkedVcpu(cpu, fd -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment t = arena.allocate(KvmApi.KVM_TRANSLATION);
                // translate every page first: a write that cannot be done whole is not begun
                long[] pas = new long[(data.length + 8191) / 4096 + 1];
                int pages = 0;
                long va = address;
                int left = data.length;
                while (left > 0) {
                    int chunk = (int) Math.min(left, 4096 - (va & 4095));
                    long pa = translate(fd, t, va);
                    if (pa < 0 || !memory.contains(pa, chunk)) return false;
                    pas[pages++] = pa;
                    va += chunk;
                    left -= chunk;
                }
                va = address;
                int done = 0;
                for (int i = 0; i < pages; i++) {
                    int chunk = (int) Math.min(data.length - done, 4096 - (va & 4095));
                    memory.write(pas[i], java.util.Arrays.copyOfRange(data, done, done + chunk));
                    va += chunk;
                    done += chunk;
                }
                return true;
            }
        });
    }

    /** The guest physical address of {@code va} on this vCPU, or -1. */
    private static long translate(VcpuFd fd, MemorySegment t, long va) {
        t.fill((byte) 0);
        t.set(JAVA_LONG, KvmApi.offset(KvmApi.KVM_TRANSLATION, "linear_address"), va);
        try {
            fd.call(KvmApi.KVM_TRANSLATE, t);
        } catch (RuntimeException e) {
            return -1;
        }
        if (t.get(JAVA_BYTE, KvmApi.offset(KvmApi.KVM_TRANSLATION, "valid")) == 0) return -1;
        return t.get(JAVA_LONG, KvmApi.offset(KvmApi.KVM_TRANSLATION, "physical_address"));
    }

    @Override
    public void resume(Action[] actions, long[] debugRegs, Set<Long> sw) {
        if (!vm.pauseDone()) return;
        dr = debugRegs.clone();
        swBreakpoints = Set.copyOf(sw);
        boolean hw = (debugRegs[7] & 0xff) != 0;
        // #BP is intercepted only while the debugger has a software breakpoint: otherwise every int3
        // of the guest's own (Linux patches its text through int3s, many of them while a CPU comes up)
        // would be an exit to jvmm and a reinjection, for nothing the debugger asked for
        boolean swBp = !sw.isEmpty();
        for (int i = 0; i < cpus && i < actions.length; i++) {
            boolean step = actions[i] == Action.STEP;
            // with no breakpoint, watchpoint or step, guest debugging is off altogether: the guest runs
            // as it would without a debugger (with it on, KVM intercepts the guest's every debug-register
            // access); an interrupt from gdb stops the vCPUs by kicking them, not through it
            int c = !swBp && !hw && !step ? 0
                    : KvmApi.KVM_GUESTDBG_ENABLE | (swBp ? KvmApi.KVM_GUESTDBG_USE_SW_BP : 0)
                    | (hw ? KvmApi.KVM_GUESTDBG_USE_HW_BP : 0)
                    | (step ? KvmApi.KVM_GUESTDBG_SINGLESTEP : 0);
            control[i] = c;
            long[] d = dr;
            vm.onParkedVcpu(i, fd -> {
                setGuestDebug(fd, c, d);
                return null;
            });
            vm.holdVcpu(i, actions[i] == Action.STOP);
        }
        pending.set(null);
        vm.resume(false);
    }

    private static void setGuestDebug(VcpuFd fd, int control, long[] dr) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment g = arena.allocate(KvmApi.KVM_GUEST_DEBUG);
            g.set(JAVA_INT, KvmApi.offset(KvmApi.KVM_GUEST_DEBUG, "control"), control);
            long base = KvmApi.offset(KvmApi.KVM_GUEST_DEBUG, "arch", "debugreg");
            for (int i = 0; i < 8; i++) g.set(JAVA_LONG, base + 8L * i, dr[i]);
            fd.call(KvmApi.KVM_SET_GUEST_DEBUG, g);
        }
    }

    @Override
    public void interrupt() {
        stopWith(StopEvent.of(0, StopEvent.Kind.INTERRUPT));
    }

    private void stopWith(StopEvent e) {
        if (pending.compareAndSet(null, e)) {
            vm.requestPause();
            synchronized (waiterLock) {
                waiterLock.notifyAll();
            }
        }
    }

    @Override
    public void detach(Runnable cleanUp) {
        Listener l = listener;
        listener = null;
        if (l == null && !vm.pauseDone()) return;
        if (!awaitPause()) return;
        cleanUp.run();
        for (int i = 0; i < cpus; i++) {
            control[i] = 0;
            vm.onParkedVcpu(i, fd -> {
                setGuestDebug(fd, 0, new long[8]);
                return null;
            });
            vm.holdVcpu(i, false);
        }
        dr = new long[8];
        swBreakpoints = Set.of();
        pending.set(null);
        vm.resume(false);
    }

    @Override
    public void kill() {
        listener = null;
        vm.stop(new Stop(StopCause.GDB_KILL, ExitStatus.GDB_KILL, "the debugger killed the VM"));
    }

    // ---- the vCPU side ----

    /** On the vCPU's thread: a KVM_EXIT_DEBUG. Always taken while the stub exists. */
    boolean debugExit(VcpuFd fd, KvmRun run) {
        int id = fd.id();
        int exception = run.debugException();
        long pc = run.debugPc();
        if (exception == KvmApi.BP_VECTOR && !swBreakpoints.contains(pc)) {
            // the guest's own int3 (Linux patches code with them): deliver it to the guest
            setGuestDebug(fd, control[id] | KvmApi.KVM_GUESTDBG_INJECT_BP, dr);
            return true;
        }
        StopEvent e = exception == KvmApi.BP_VECTOR ? StopEvent.of(id, StopEvent.Kind.SW_BREAK)
                : DebugRegisters.classify(id, run.debugDr6(), dr);
        if (listener == null) return true; // a late exit after a detach: carry on
        stopWith(e);
        return true; // the vCPU parks at the top of its loop: the pause is requested
    }

    /** Reports a pending stop once every vCPU has parked (the VM's pause is complete). */
    private void waiter() {
        while (!vm.stopping()) {
            try {
                synchronized (waiterLock) {
                    if (pending.get() == null) waiterLock.wait(100);
                }
                if (pending.get() == null) continue;
                while (!vm.pauseDone() && !vm.stopping()) Thread.sleep(1);
                StopEvent e = pending.get();
                Listener l = listener;
                if (e != null && vm.pauseDone() && l != null) {
                    l.stopped(e);
                    // stay reported until the next resume clears it; wait for that
                    while (pending.get() == e && !vm.stopping()) {
                        synchronized (waiterLock) {
                            waiterLock.wait(100);
                        }
                    }
                } else if (l == null) {
                    pending.compareAndSet(e, null);
                }
            } catch (InterruptedException ex) {
                return;
            }
        }
    }

    // ---- registers ----

    private static byte[] image(VcpuFd fd) {
        byte[] img = new byte[X86Registers.IMAGE_BYTES];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment regs = arena.allocate(KvmApi.KVM_REGS);
            MemorySegment sregs = arena.allocate(KvmApi.KVM_SREGS);
            MemorySegment fpu = arena.allocate(KvmApi.KVM_FPU);
            fd.call(KvmApi.KVM_GET_REGS, regs);
            fd.call(KvmApi.KVM_GET_SREGS, sregs);
            fd.call(KvmApi.KVM_GET_FPU, fpu);
            for (int i = 0; i < GPR.length; i++) X86Registers.set(img, i, regs.get(JAVA_LONG, off(KvmApi.KVM_REGS, GPR[i])));
            X86Registers.set(img, X86Registers.RIP, regs.get(JAVA_LONG, off(KvmApi.KVM_REGS, "rip")));
            X86Registers.set(img, X86Registers.EFLAGS, regs.get(JAVA_LONG, off(KvmApi.KVM_REGS, "rflags")));
            for (int i = 0; i < SEGS.length; i++) {
                X86Registers.set(img, X86Registers.CS + i, sregs.get(JAVA_SHORT, off(KvmApi.KVM_SREGS, SEGS[i], "selector")) & 0xffff);
            }
            X86Registers.set(img, X86Registers.FS_BASE, sregs.get(JAVA_LONG, off(KvmApi.KVM_SREGS, "fs", "base")));
            X86Registers.set(img, X86Registers.GS_BASE, sregs.get(JAVA_LONG, off(KvmApi.KVM_SREGS, "gs", "base")));
            for (int i = 0; i < CRS.length; i++) X86Registers.set(img, X86Registers.CR0 + i, sregs.get(JAVA_LONG, off(KvmApi.KVM_SREGS, CRS[i])));
            long fpr = off(KvmApi.KVM_FPU, "fpr");
            for (int i = 0; i < 8; i++) {
                int o = X86Registers.REGS.get(X86Registers.ST0 + i).offset();
                for (int b = 0; b < 10; b++) img[o + b] = fpu.get(JAVA_BYTE, fpr + 16L * i + b);
            }
            X86Registers.set(img, X86Registers.FCTRL, fpu.get(JAVA_SHORT, off(KvmApi.KVM_FPU, "fcw")) & 0xffff);
            X86Registers.set(img, X86Registers.FSTAT, fpu.get(JAVA_SHORT, off(KvmApi.KVM_FPU, "fsw")) & 0xffff);
            int ftwx = fpu.get(JAVA_BYTE, off(KvmApi.KVM_FPU, "ftwx")) & 0xff;
            int tag = 0;
            for (int i = 0; i < 8; i++) tag |= ((ftwx >> i & 1) != 0 ? 0 : 3) << (2 * i); // abridged: valid, or empty
            X86Registers.set(img, X86Registers.FTAG, tag);
            X86Registers.set(img, X86Registers.FIOFF, fpu.get(JAVA_LONG, off(KvmApi.KVM_FPU, "last_ip")) & 0xffffffffL);
            X86Registers.set(img, X86Registers.FOOFF, fpu.get(JAVA_LONG, off(KvmApi.KVM_FPU, "last_dp")) & 0xffffffffL);
            X86Registers.set(img, X86Registers.FOP, fpu.get(JAVA_SHORT, off(KvmApi.KVM_FPU, "last_opcode")) & 0x7ff);
            long xmm = off(KvmApi.KVM_FPU, "xmm");
            for (int i = 0; i < 16; i++) {
                int o = X86Registers.REGS.get(X86Registers.XMM0 + i).offset();
                for (int b = 0; b < 16; b++) img[o + b] = fpu.get(JAVA_BYTE, xmm + 16L * i + b);
            }
            X86Registers.set(img, X86Registers.MXCSR, fpu.get(JAVA_INT, off(KvmApi.KVM_FPU, "mxcsr")) & 0xffffffffL);
        }
        return img;
    }

    /** Writes what changed; null, or why it cannot. */
    private static String setImage(VcpuFd fd, byte[] img) {
        byte[] old = image(fd);
        try (Arena arena = Arena.ofConfined()) {
            if (changed(old, img, 0, X86Registers.EFLAGS)) {
                MemorySegment regs = arena.allocate(KvmApi.KVM_REGS);
                fd.call(KvmApi.KVM_GET_REGS, regs);
                for (int i = 0; i < GPR.length; i++) regs.set(JAVA_LONG, off(KvmApi.KVM_REGS, GPR[i]), X86Registers.get(img, i));
                regs.set(JAVA_LONG, off(KvmApi.KVM_REGS, "rip"), X86Registers.get(img, X86Registers.RIP));
                regs.set(JAVA_LONG, off(KvmApi.KVM_REGS, "rflags"), X86Registers.get(img, X86Registers.EFLAGS) | 2);
                fd.call(KvmApi.KVM_SET_REGS, regs);
            }
            if (changed(old, img, X86Registers.CS, X86Registers.GS) || changed(old, img, X86Registers.FS_BASE, X86Registers.EFER)) {
                MemorySegment sregs = arena.allocate(KvmApi.KVM_SREGS);
                fd.call(KvmApi.KVM_GET_SREGS, sregs);
                boolean real = (sregs.get(JAVA_LONG, off(KvmApi.KVM_SREGS, "cr0")) & 1) == 0;
                for (int i = 0; i < SEGS.length; i++) {
                    if (!changed(old, img, X86Registers.CS + i, X86Registers.CS + i)) continue;
                    long sel = X86Registers.get(img, X86Registers.CS + i);
                    if (sel > 0xffff) return "a segment selector is 16 bits";
                    sregs.set(JAVA_SHORT, off(KvmApi.KVM_SREGS, SEGS[i], "selector"), (short) sel);
                    if (real) sregs.set(JAVA_LONG, off(KvmApi.KVM_SREGS, SEGS[i], "base"), sel << 4);
                }
                sregs.set(JAVA_LONG, off(KvmApi.KVM_SREGS, "fs", "base"), X86Registers.get(img, X86Registers.FS_BASE));
                sregs.set(JAVA_LONG, off(KvmApi.KVM_SREGS, "gs", "base"), X86Registers.get(img, X86Registers.GS_BASE));
                for (int i = 0; i < CRS.length; i++) sregs.set(JAVA_LONG, off(KvmApi.KVM_SREGS, CRS[i]), X86Registers.get(img, X86Registers.CR0 + i));
                try {
                    fd.call(KvmApi.KVM_SET_SREGS, sregs);
                } catch (RuntimeException e) {
                    return "KVM refused the system registers: " + e.getMessage();
                }
            }
            if (changed(old, img, X86Registers.ST0, X86Registers.MXCSR)) {
                MemorySegment fpu = arena.allocate(KvmApi.KVM_FPU);
                fd.call(KvmApi.KVM_GET_FPU, fpu);
                long fpr = off(KvmApi.KVM_FPU, "fpr");
                for (int i = 0; i < 8; i++) {
                    int o = X86Registers.REGS.get(X86Registers.ST0 + i).offset();
                    for (int b = 0; b < 10; b++) fpu.set(JAVA_BYTE, fpr + 16L * i + b, img[o + b]);
                }
                fpu.set(JAVA_SHORT, off(KvmApi.KVM_FPU, "fcw"), (short) X86Registers.get(img, X86Registers.FCTRL));
                fpu.set(JAVA_SHORT, off(KvmApi.KVM_FPU, "fsw"), (short) X86Registers.get(img, X86Registers.FSTAT));
                long tag = X86Registers.get(img, X86Registers.FTAG);
                int ftwx = 0;
                for (int i = 0; i < 8; i++) if ((tag >> (2 * i) & 3) != 3) ftwx |= 1 << i;
                fpu.set(JAVA_BYTE, off(KvmApi.KVM_FPU, "ftwx"), (byte) ftwx);
                long xmm = off(KvmApi.KVM_FPU, "xmm");
                for (int i = 0; i < 16; i++) {
                    int o = X86Registers.REGS.get(X86Registers.XMM0 + i).offset();
                    for (int b = 0; b < 16; b++) fpu.set(JAVA_BYTE, xmm + 16L * i + b, img[o + b]);
                }
                fpu.set(JAVA_INT, off(KvmApi.KVM_FPU, "mxcsr"), (int) X86Registers.get(img, X86Registers.MXCSR));
                fd.call(KvmApi.KVM_SET_FPU, fpu);
            }
        }
        return null;
    }

    private static boolean changed(byte[] a, byte[] b, int first, int last) {
        int from = X86Registers.REGS.get(first).offset();
        X86Registers.Reg l = X86Registers.REGS.get(last);
        return !java.util.Arrays.equals(a, from, l.offset() + l.size(), b, from, l.offset() + l.size());
    }

    /** gdb's GPR order (rbp before rsp), as kvm_regs names them. */
    private static final String[] GPR = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};
    private static final String[] SEGS = {"cs", "ss", "ds", "es", "fs", "gs"};
    private static final String[] CRS = {"cr0", "cr2", "cr3", "cr4", "cr8", "efer"};

    private static long off(java.lang.foreign.MemoryLayout l, String... path) {
        return KvmApi.offset(l, path);
    }
}
