package dev.jvmm.gdb;

import dev.jvmm.gdb.Rsp.RspException;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * One debugger's conversation with a {@link GdbTarget}: decodes its bytes ({@link RspDecoder}),
 * answers its commands, sends stop replies. Single-threaded: its owner feeds it bytes and target
 * events from one thread. Whatever the client sends, the worst outcome is an error reply or the end
 * of the session ({@link #closed()}); every number it sends is checked before use.
 */
public final class GdbSession implements RspDecoder.Listener {
    /**
     * The most memory one m/M/X packet may move: gdb sizes its reads to the advertised PacketSize
     * (hex doubles the bytes), and its writes so that the whole packet fits in it.
     */
    public static final int MAX_MEMORY = Rsp.PACKET_SIZE / 2;
    private static final byte INT3 = (byte) 0xcc;

    private final GdbTarget target;
    private final Consumer<byte[]> out;
    private final RspDecoder decoder = new RspDecoder(Rsp.PACKET_SIZE, this);
    private final DebugRegisters debugRegs = new DebugRegisters();
    /** Software breakpoints inserted: address to the byte the int3 replaced. */
    private final Map<Long, Byte> swBreakpoints = new LinkedHashMap<>();
    private boolean noAck;
    private boolean running;
    private boolean closed;
    private String closeReason;
    private byte[] lastSent;
    private int resends;
    private StopEvent lastStop = StopEvent.of(0, StopEvent.Kind.STEP);
    /** Hg and Hc threads (vCPU index; -1 all, for Hc). */
    private int gCpu = 0, cCpu = -1;

    public GdbSession(GdbTarget target, Consumer<byte[]> out) {
        this.target = target;
        this.out = out;
    }

    public boolean closed() {
        return closed;
    }

    /** Why the session ended ("detached", "killed", ...), or null. */
    public String closeReason() {
        return closeReason;
    }

    public boolean running() {
        return running;
    }

    /** Bytes from the client. */
    public void receive(byte[] data, int off, int len) {
        if (closed) return;
        decoder.feed(data, off, len);
    }

    /** The client went away (EOF or an error): a clean detach, even in the middle of a packet. */
    public void disconnected() {
        if (closed) return;
        detachTarget();
        close("the debugger disconnected" + (decoder.inPacket() ? " in the middle of a packet" : ""));
    }

    /** From the target (through the owner's thread): every vCPU stopped. */
    public void targetStopped(StopEvent e) {
        if (closed || !running) return;
        running = false;
        if (e.kind() == StopEvent.Kind.AWATCH) {
            // x86 has no read-only watchpoints: a read/write slot that gdb asked for as a read watchpoint
            for (int i = 0; i < 4; i++) {
                DebugRegisters.Slot s = debugRegs.slot(i);
                if (s != null && s.address() == e.address() && s.type() == DebugRegisters.Type.READ) {
                    e = new StopEvent(e.cpu(), StopEvent.Kind.RWATCH, e.address());
                    break;
                }
            }
        }
        lastStop = e;
        gCpu = e.cpu();
        send(e.reply());
    }

    /** From the target: the machine ended. */
    public void targetExited(int status) {
        if (closed) return;
        send("W" + Rsp.hexLe(status & 0xff, 1));
        close("the VM ended");
    }

    private void close(String why) {
        closed = true;
        closeReason = why;
    }

    // ---- RspDecoder.Listener ----

    @Override
    public void packet(byte[] data) {
        if (!noAck) out.accept(new byte[] {'+'});
        String p = new String(data, StandardCharsets.ISO_8859_1);
        if (running) {
            // all-stop: while the target runs gdb only sends Ctrl-C; anything else waits for no answer
            return;
        }
        String reply;
        try {
            reply = command(p, data);
        } catch (RspException e) {
            reply = "E22";
        } catch (GdbTarget.TargetException e) {
            reply = "E05";
        } catch (RuntimeException e) {
            // a target failure must not end the VMM: the client hears an error
            reply = "E05";
        }
        if (reply != null && !closed) send(reply);
    }

    @Override
    public void badPacket(String why) {
        if (!noAck) out.accept(new byte[] {'-'});
    }

    @Override
    public void ack(boolean positive) {
        if (positive || noAck || lastSent == null) {
            resends = 0;
            return;
        }
        if (resends++ < 3) out.accept(lastSent);
    }

    @Override
    public void interrupt() {
        if (running) target.interrupt();
    }

    @Override
    public void oversized() {
        // the stream cannot be trusted to resynchronise; detach cleanly rather than buffer without end
        detachTarget();
        close("the debugger sent a packet longer than " + Rsp.PACKET_SIZE + " bytes");
    }

    private void send(String payload) {
        byte[] f = Rsp.frame(payload);
        lastSent = f;
        resends = 0;
        out.accept(f);
    }

    // ---- commands ----

    /** The reply to one packet, or null for none. */
    String command(String p, byte[] raw) throws RspException, GdbTarget.TargetException {
        if (p.isEmpty()) return "";
        char c = p.charAt(0);
        String a = p.substring(1);
        return switch (c) {
            case '?' -> lastStop.reply();
            case 'g' -> Rsp.hex(target.readRegisters(gCpu));
            case 'G' -> writeAll(a);
            case 'p' -> readRegister(a);
            case 'P' -> writeRegister(a);
            case 'm' -> readMemory(a);
            case 'M' -> writeMemoryHex(a);
            case 'X' -> writeMemoryBinary(p, raw);
            case 'c' -> resumeSimple(a, false);
            case 's' -> resumeSimple(a, true);
            case 'H' -> selectThread(a);
            case 'T' -> cpuOf(Rsp.parseThread(a)) >= 0 ? "OK" : "E01";
            case 'Z', 'z' -> breakpoint(c == 'Z', a);
            case 'D' -> {
                detachTarget();
                send("OK");
                close("detached");
                yield null;
            }
            case 'k' -> {
                kill();
                yield null;
            }
            case 'q' -> query(a);
            case 'Q' -> a.equals("StartNoAckMode") ? startNoAck() : "";
            case 'v' -> vPacket(a);
            default -> "";
        };
    }

    private String startNoAck() {
        send("OK");
        noAck = true; // after the OK, which gdb still acknowledges
        return null;
    }

    private void kill() {
        removeSwBreakpoints();
        close("killed");
        target.kill();
    }

    private String query(String a) throws RspException {
        if (a.startsWith("Supported")) {
            return "PacketSize=" + Integer.toHexString(Rsp.PACKET_SIZE)
                    + ";qXfer:features:read+;swbreak+;hwbreak+;vContSupported+;QStartNoAckMode+";
        }
        if (a.startsWith("Xfer:features:read:")) return xferFeatures(a.substring("Xfer:features:read:".length()));
        return switch (a) {
            case "fThreadInfo" -> {
                StringBuilder sb = new StringBuilder("m");
                for (int i = 0; i < target.cpus(); i++) sb.append(i == 0 ? "" : ",").append(Integer.toHexString(i + 1));
                yield sb.toString();
            }
            case "sThreadInfo" -> "l";
            case "C" -> "QC" + Integer.toHexString(gCpu + 1);
            case "Attached" -> "1";
            case "Symbol::" -> "OK";
            default -> {
                if (a.startsWith("ThreadExtraInfo,")) {
                    int cpu = cpuOf(Rsp.parseThread(a.substring("ThreadExtraInfo,".length())));
                    yield cpu < 0 ? "E01" : Rsp.hex("vCPU " + cpu);
                }
                yield "";
            }
        };
    }

    private String xferFeatures(String a) throws RspException {
        int colon = a.indexOf(':');
        if (colon < 0) throw new RspException("bad qXfer");
        String annex = a.substring(0, colon);
        if (!annex.equals("target.xml")) return "E00";
        String[] r = a.substring(colon + 1).split(",", -1);
        if (r.length != 2) throw new RspException("bad qXfer range");
        long offset = Rsp.parseHex(r[0]);
        long length = Rsp.parseHex(r[1]);
        byte[] xml = X86Registers.targetXml().getBytes(StandardCharsets.UTF_8);
        if (offset < 0 || offset > xml.length) return "E00";
        // an escaped byte takes two: keep a reply within the packet size
        int n = (int) Math.min(Math.min(length, xml.length - offset), (Rsp.PACKET_SIZE - 8) / 2);
        byte[] chunk = Arrays.copyOfRange(xml, (int) offset, (int) offset + n);
        boolean last = offset + n >= xml.length;
        return (last ? "l" : "m") + new String(chunk, StandardCharsets.ISO_8859_1);
    }

    private String vPacket(String a) throws RspException {
        if (a.equals("Cont?")) return "vCont;c;C;s;S";
        if (a.startsWith("Cont;")) return vCont(a.substring(5));
        if (a.startsWith("Kill")) {
            send("OK");
            kill();
            return null;
        }
        return ""; // vMustReplyEmpty and everything not supported
    }

    private String vCont(String a) throws RspException {
        int n = target.cpus();
        GdbTarget.Action[] actions = new GdbTarget.Action[n];
        Arrays.fill(actions, GdbTarget.Action.STOP);
        boolean[] set = new boolean[n];
        for (String part : a.split(";", -1)) {
            String[] at = part.split(":", -1);
            if (at.length > 2 || at[0].isEmpty()) throw new RspException("bad vCont action");
            GdbTarget.Action act = switch (at[0].charAt(0)) {
                case 'c', 'C' -> GdbTarget.Action.CONTINUE;
                case 's', 'S' -> GdbTarget.Action.STEP;
                default -> throw new RspException("unsupported vCont action");
            };
            if (at[0].length() > 1) {
                if (at[0].length() != 3 || Character.toLowerCase(at[0].charAt(0)) == at[0].charAt(0)) throw new RspException("bad vCont action");
                Rsp.parseHexInt(at[0].substring(1), 0xff); // the signal is ignored: KVM has nothing to deliver it to
            }
            int thread = at.length == 2 ? Rsp.parseThread(at[1]) : -1;
            if (thread == -1) {
                for (int i = 0; i < n; i++) if (!set[i]) { actions[i] = act; set[i] = true; }
            } else {
                int cpu = cpuOf(thread);
                if (cpu < 0) return "E01";
                if (!set[cpu]) { actions[cpu] = act; set[cpu] = true; }
            }
        }
        resume(actions);
        return null;
    }

    private String resumeSimple(String a, boolean step) throws RspException, GdbTarget.TargetException {
        int cpu = step ? (cCpu >= 0 ? cCpu : gCpu) : -1;
        if (!a.isEmpty()) {
            long pc = Rsp.parseHex(a);
            int at = cpu >= 0 ? cpu : gCpu;
            byte[] regs = target.readRegisters(at);
            X86Registers.set(regs, X86Registers.RIP, pc);
            target.writeRegisters(at, regs);
        }
        GdbTarget.Action[] actions = new GdbTarget.Action[target.cpus()];
        Arrays.fill(actions, GdbTarget.Action.CONTINUE);
        if (step) actions[cpu] = GdbTarget.Action.STEP;
        resume(actions);
        return null;
    }

    private void resume(GdbTarget.Action[] actions) {
        running = true;
        target.resume(actions, debugRegs.values(), java.util.Set.copyOf(swBreakpoints.keySet()));
    }

    private String selectThread(String a) throws RspException {
        if (a.isEmpty()) throw new RspException("bad H");
        char op = a.charAt(0);
        int thread = Rsp.parseThread(a.substring(1));
        int cpu;
        if (thread == 0) cpu = lastStop.cpu();
        else if (thread == -1) cpu = -1;
        else if ((cpu = cpuOf(thread)) < 0) return "E01";
        if (op == 'g') {
            gCpu = cpu < 0 ? lastStop.cpu() : cpu;
        } else if (op == 'c') {
            cCpu = cpu;
        } else {
            throw new RspException("bad H");
        }
        return "OK";
    }

    /** gdb's thread id to a vCPU index, or -1 if there is no such thread. */
    private int cpuOf(int thread) {
        if (thread == 0) return lastStop.cpu();
        return thread >= 1 && thread <= target.cpus() ? thread - 1 : -1;
    }

    private String writeAll(String hex) throws RspException, GdbTarget.TargetException {
        byte[] image = target.readRegisters(gCpu);
        byte[] sent = Rsp.unhex(hex, X86Registers.IMAGE_BYTES);
        // gdb may send fewer registers than the image holds: the rest keep their values
        System.arraycopy(sent, 0, image, 0, sent.length);
        target.writeRegisters(gCpu, image);
        return "OK";
    }

    private String readRegister(String a) throws RspException, GdbTarget.TargetException {
        int n = Rsp.parseHexInt(a, Integer.MAX_VALUE);
        if (n >= X86Registers.REGS.size()) return "E00";
        X86Registers.Reg r = X86Registers.REGS.get(n);
        byte[] image = target.readRegisters(gCpu);
        return Rsp.hex(Arrays.copyOfRange(image, r.offset(), r.offset() + r.size()));
    }

    private String writeRegister(String a) throws RspException, GdbTarget.TargetException {
        int eq = a.indexOf('=');
        if (eq < 0) throw new RspException("bad P");
        int n = Rsp.parseHexInt(a.substring(0, eq), Integer.MAX_VALUE);
        if (n >= X86Registers.REGS.size()) return "E00";
        X86Registers.Reg r = X86Registers.REGS.get(n);
        byte[] v = Rsp.unhex(a.substring(eq + 1), r.size());
        if (v.length != r.size()) throw new RspException("register value of the wrong size");
        byte[] image = target.readRegisters(gCpu);
        System.arraycopy(v, 0, image, r.offset(), v.length);
        target.writeRegisters(gCpu, image);
        return "OK";
    }

    /** "ADDR,LEN" (then, for M and X, ':' and data): the address and a length within bounds. */
    private static long[] addressLength(String s) throws RspException {
        int comma = s.indexOf(',');
        if (comma < 0) throw new RspException("no length");
        long addr = Rsp.parseHex(s.substring(0, comma));
        long len = Rsp.parseHex(s.substring(comma + 1));
        if (len < 0 || len > MAX_MEMORY) throw new RspException("length out of range");
        return new long[] {addr, len};
    }

    private String readMemory(String a) throws RspException {
        long[] al = addressLength(a);
        if (al[1] == 0) return "";
        byte[] data = target.readMemory(gCpu, al[0], (int) al[1]);
        if (data == null || data.length == 0) return "E14";
        return Rsp.hex(data);
    }

    private String writeMemoryHex(String a) throws RspException {
        int colon = a.indexOf(':');
        if (colon < 0) throw new RspException("bad M");
        long[] al = addressLength(a.substring(0, colon));
        byte[] data = Rsp.unhex(a.substring(colon + 1), MAX_MEMORY);
        if (data.length != al[1]) throw new RspException("M: length and data differ");
        return writeMemory(al[0], data);
    }

    private String writeMemoryBinary(String p, byte[] raw) throws RspException {
        int colon = p.indexOf(':');
        if (colon < 0) throw new RspException("bad X");
        long[] al = addressLength(p.substring(1, colon));
        byte[] data = Arrays.copyOfRange(raw, colon + 1, raw.length);
        if (data.length != al[1]) throw new RspException("X: length and data differ");
        if (data.length == 0) return "OK"; // gdb's probe for X support
        return writeMemory(al[0], data);
    }

    private String writeMemory(long addr, byte[] data) {
        if (data.length == 0) return "OK";
        return target.writeMemory(gCpu, addr, data) ? "OK" : "E14";
    }

    private String breakpoint(boolean insert, String a) throws RspException {
        String[] f = a.split(",", -1);
        if (f.length < 3) throw new RspException("bad Z");
        int type = Rsp.parseHexInt(f[0], 4);
        long addr = Rsp.parseHex(f[1]);
        int kind = Rsp.parseHexInt(f[2].contains(";") ? f[2].substring(0, f[2].indexOf(';')) : f[2], 8);
        if (type == 0) return insert ? insertSw(addr) : removeSw(addr);
        DebugRegisters.Type t = switch (type) {
            case 1 -> DebugRegisters.Type.EXEC;
            case 2 -> DebugRegisters.Type.WRITE;
            case 3 -> DebugRegisters.Type.READ;
            default -> DebugRegisters.Type.ACCESS;
        };
        if (!DebugRegisters.valid(t, addr, kind)) return "E22";
        int len = t == DebugRegisters.Type.EXEC ? 1 : kind;
        if (insert) return debugRegs.insert(t, addr, len) >= 0 ? "OK" : "E28";
        debugRegs.remove(t, addr, len);
        return "OK";
    }

    private String insertSw(long addr) {
        if (!target.softwareBreakpoints()) return "E01";
        if (swBreakpoints.containsKey(addr)) return "OK";
        if (swBreakpoints.size() >= 1024) return "E28";
        byte[] old = target.readMemory(gCpu, addr, 1);
        if (old == null || old.length != 1) return "E14";
        if (!target.writeMemory(gCpu, addr, new byte[] {INT3})) return "E14";
        swBreakpoints.put(addr, old[0]);
        return "OK";
    }

    private String removeSw(long addr) {
        Byte old = swBreakpoints.remove(addr);
        if (old == null) return "OK";
        return target.writeMemory(gCpu, addr, new byte[] {old}) ? "OK" : "E14";
    }

    private void removeSwBreakpoints() {
        for (Map.Entry<Long, Byte> e : swBreakpoints.entrySet()) {
            try {
                target.writeMemory(gCpu, e.getKey(), new byte[] {e.getValue()});
            } catch (RuntimeException ignored) {
                // the VM may be gone; nothing else to restore into
            }
        }
        swBreakpoints.clear();
    }

    private void detachTarget() {
        debugRegs.clear();
        running = false;
        target.detach(this::removeSwBreakpoints);
    }

    /** The software breakpoints in place (for tests). */
    Map<Long, Byte> swBreakpoints() {
        return swBreakpoints;
    }

    DebugRegisters debugRegisters() {
        return debugRegs;
    }
}
