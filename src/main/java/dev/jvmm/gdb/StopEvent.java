package dev.jvmm.gdb;

/**
 * Why the target stopped, for the stop reply: {@code cpu} is the vCPU index (gdb's thread cpu + 1),
 * {@code address} the watched address of a watchpoint hit.
 */
public record StopEvent(int cpu, Kind kind, long address) {
    public enum Kind { INTERRUPT, SW_BREAK, HW_BREAK, STEP, WATCH, RWATCH, AWATCH }

    public static StopEvent of(int cpu, Kind kind) {
        return new StopEvent(cpu, kind, 0);
    }

    /** {@code T05thread:N;} plus the reason gdb's swbreak/hwbreak/watch features define; SIGINT for an interrupt. */
    public String reply() {
        String sig = kind == Kind.INTERRUPT ? "02" : "05";
        String t = "T" + sig + "thread:" + Integer.toHexString(cpu + 1) + ";";
        return t + switch (kind) {
            case SW_BREAK -> "swbreak:;";
            case HW_BREAK -> "hwbreak:;";
            case WATCH -> "watch:" + Long.toHexString(address) + ";";
            case RWATCH -> "rwatch:" + Long.toHexString(address) + ";";
            case AWATCH -> "awatch:" + Long.toHexString(address) + ";";
            default -> "";
        };
    }
}
