package dev.jvmm.gdb;

import java.util.Arrays;

/**
 * The four x86 debug-register slots as gdb's Z1-Z4 packets fill them: DR0-DR3 hold the addresses,
 * DR7 enables each (its G bit) with a type (execute, write, read/write) and a length (1, 2, 4 or 8
 * bytes, the address aligned to it). x86 has no read-only watchpoint: Z3 uses read/write, so it
 * also fires on writes (gdb then reports an rwatch hit).
 */
public final class DebugRegisters {
    public enum Type { EXEC, WRITE, READ, ACCESS }

    public record Slot(Type type, long address, int length) { }

    private final Slot[] slots = new Slot[4];

    /** The slot's index, or -1 when all four are in use. Inserting one that exists returns its slot. */
    public int insert(Type type, long address, int length) {
        if (!valid(type, address, length)) throw new IllegalArgumentException("bad debug-register breakpoint");
        Slot s = new Slot(type, address, length);
        for (int i = 0; i < 4; i++) if (s.equals(slots[i])) return i;
        for (int i = 0; i < 4; i++) {
            if (slots[i] == null) {
                slots[i] = s;
                return i;
            }
        }
        return -1;
    }

    /** Whether a slot like this was there (and is now free). */
    public boolean remove(Type type, long address, int length) {
        Slot s = new Slot(type, address, length);
        for (int i = 0; i < 4; i++) {
            if (s.equals(slots[i])) {
                slots[i] = null;
                return true;
            }
        }
        return false;
    }

    public static boolean valid(Type type, long address, int length) {
        if (type == Type.EXEC) return length == 1 || length == 0; // gdb's kind for x86 is 1
        return (length == 1 || length == 2 || length == 4 || length == 8) && (address & (length - 1)) == 0;
    }

    public void clear() {
        Arrays.fill(slots, null);
    }

    public boolean empty() {
        for (Slot s : slots) if (s != null) return false;
        return true;
    }

    public Slot slot(int i) {
        return slots[i];
    }

    /** DR0-DR7 for KVM_SET_GUEST_DEBUG (DR4, DR5 and DR6 zero). */
    public long[] values() {
        long[] dr = new long[8];
        long dr7 = 0;
        for (int i = 0; i < 4; i++) {
            Slot s = slots[i];
            if (s == null) continue;
            dr[i] = s.address();
            long rw = switch (s.type()) {
                case EXEC -> 0;
                case WRITE -> 1;
                case READ, ACCESS -> 3;
            };
            long len = s.type() == Type.EXEC ? 0 : switch (s.length()) {
                case 1 -> 0;
                case 2 -> 1;
                case 8 -> 2;
                default -> 3;
            };
            dr7 |= 2L << (2 * i);                 // Gn
            dr7 |= (rw | len << 2) << (16 + 4 * i);
        }
        if (dr7 != 0) dr7 |= 1L << 9;            // GE
        dr[7] = dr7;
        return dr;
    }

    /**
     * What a #DB means from DR6 and the DR0-DR7 it ran with: a watchpoint hit (read/write slots report
     * an access; {@link GdbSession} knows which it asked for), an instruction breakpoint, or a step.
     */
    public static StopEvent classify(int cpu, long dr6, long[] dr) {
        for (int i = 0; i < 4; i++) {
            if ((dr6 & (1L << i)) == 0 || (dr[7] & (3L << (2 * i))) == 0) continue;
            long rw = dr[7] >>> (16 + 4 * i) & 3;
            if (rw == 0) return StopEvent.of(cpu, StopEvent.Kind.HW_BREAK);
            return new StopEvent(cpu, rw == 1 ? StopEvent.Kind.WATCH : StopEvent.Kind.AWATCH, dr[i]);
        }
        return StopEvent.of(cpu, StopEvent.Kind.STEP);
    }

    /** What a #DB with this DR6 means: the stop for the lowest triggered slot, or a single step. */
    public StopEvent classify(int cpu, long dr6) {
        for (int i = 0; i < 4; i++) {
            if ((dr6 & (1L << i)) != 0 && slots[i] != null) {
                Slot s = slots[i];
                return switch (s.type()) {
                    case EXEC -> StopEvent.of(cpu, StopEvent.Kind.HW_BREAK);
                    case WRITE -> new StopEvent(cpu, StopEvent.Kind.WATCH, s.address());
                    case READ -> new StopEvent(cpu, StopEvent.Kind.RWATCH, s.address());
                    case ACCESS -> new StopEvent(cpu, StopEvent.Kind.AWATCH, s.address());
                };
            }
        }
        return StopEvent.of(cpu, StopEvent.Kind.STEP);
    }
}
