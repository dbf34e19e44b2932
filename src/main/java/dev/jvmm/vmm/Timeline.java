package dev.jvmm.vmm;

import java.io.FileInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * When the milestones of a run happened, for --stats and --stats-json: milliseconds since the jvmm
 * process started, so a slow start-up or boot can be placed without a profiler. Marks are
 * {@link System#nanoTime()} values; the first mark of each milestone wins (a restarted guest keeps
 * its first boot's), and any thread may mark.
 *
 * <p>The process start comes from the kernel ({@code starttime} in {@code /proc/self/stat}, counted in
 * clock ticks, against {@code /proc/uptime}), so it is known to about 10 ms; the other marks are exact.
 */
public final class Timeline {
    /** The milestones, in the order a run normally reaches them. */
    public enum Mark {
        MAIN("main", "jvmm's main entered (JVM started)"),
        COMMAND("command", "options parsed, command running"),
        INITRAMFS_READY("initramfs_ready", "--rootfs: the initramfs made or found in the cache, and the job written"),
        KERNEL_LOADED("kernel_loaded", "kernel image read and parsed"),
        VM_CREATED("vm_created", "VM, memory, devices and vCPUs set up"),
        VCPUS_STARTED("vcpus_started", "vCPUs running: the guest's first instruction"),
        FIRST_CONSOLE_BYTE("first_console_byte", "the guest's first console byte"),
        GUEST_INIT("guest_init", "--rootfs: jvmm's init started in the guest (the kernel's boot is over)"),
        ROOT_MOUNTED("root_mounted", "--rootfs: the init mounted the root and the shares and entered them"),
        COMMAND_STARTED("command_started", "--rootfs: the command was exec'ed"),
        COMMAND_EXITED("command_exited", "--rootfs: the command ended (then sync and power-off)"),
        STOP_REQUESTED("stop_requested", "the guest ended (or the run was stopped)"),
        EXIT("exit", "the report, just before jvmm exits");

        final String json;
        final String what;

        Mark(String json, String what) {
            this.json = json;
            this.what = what;
        }
    }

    private static volatile long mainEntered;

    /** Main calls this first thing; a Timeline made later takes it as its {@link Mark#MAIN}. */
    public static void mainEntered() {
        if (mainEntered == 0) mainEntered = System.nanoTime();
    }

    private final long processStart;
    private final long created = System.nanoTime();
    private final AtomicLongArray at = new AtomicLongArray(Mark.values().length);

    private Timeline(long processStart) {
        this.processStart = processStart;
        long m = mainEntered;
        if (m != 0) at.set(Mark.MAIN.ordinal(), m);
    }

    /** A timeline measured from this process's start (or from now, if the OS does not say when that was). */
    public static Timeline sinceProcessStart() {
        long now = System.nanoTime();
        long age = processAgeNanos();
        return new Timeline(age < 0 ? now : now - age);
    }

    /** A timeline whose start is {@code startNanos} (tests). */
    public static Timeline startingAt(long startNanos) {
        return new Timeline(startNanos);
    }

    /** The process start as a {@link System#nanoTime()} value. */
    public long processStart() {
        return processStart;
    }

    /**
     * Where --timeout counts from: the process start when jvmm's main started this process (a run
     * from the command line, as timeout(1) would count), else this timeline's creation (a caller
     * inside a longer-lived JVM, such as a test, whose process start says nothing about the run).
     */
    public long timeoutOrigin() {
        return at.get(Mark.MAIN.ordinal()) != 0 ? processStart : created;
    }

    /** Records {@code m} now, unless it was recorded before. */
    public void mark(Mark m) {
        mark(m, System.nanoTime());
    }

    /** Records {@code m} at {@code nanoTime} (a time kept elsewhere), unless it was recorded before; 0 is ignored. */
    public void mark(Mark m, long nanoTime) {
        if (nanoTime != 0) at.compareAndSet(m.ordinal(), 0, nanoTime);
    }

    /** Milliseconds from the process start to {@code m}, or -1 if the run never got there. */
    public double millis(Mark m) {
        long t = at.get(m.ordinal());
        return t == 0 ? -1 : (t - processStart) / 1e6;
    }

    /** The milestones reached, in order, in milliseconds since the process start. */
    public Map<Mark, Double> reached() {
        Map<Mark, Double> m = new LinkedHashMap<>();
        for (Mark k : Mark.values()) {
            double ms = millis(k);
            if (ms >= 0) m.put(k, ms);
        }
        return m;
    }

    /** One line for --stats: {@code main 41.2, kernel_loaded 60.0, ...}. */
    public String line() {
        StringBuilder sb = new StringBuilder();
        reached().forEach((k, ms) -> sb.append(sb.isEmpty() ? "" : ", ").append(k.json).append(' ').append(Json.Decimal.format(ms, 1)));
        return sb.toString();
    }

    /**
     * The milestones reached as a map for a JSON writer: {@code process_start} 0, then each milestone's
     * milliseconds since the process start, with three decimals, in order.
     */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("process_start", 0);
        reached().forEach((k, ms) -> m.put(k.json, Json.Decimal.of(ms, 3)));
        return m;
    }

    /** A JSON object: {@code {"process_start": 0, "main": 41.2, ...}}. */
    public String json() {
        StringBuilder sb = new StringBuilder("{\"process_start\": 0");
        reached().forEach((k, ms) -> sb.append(", \"").append(k.json).append("\": ").append(Json.Decimal.format(ms, 3)));
        return sb.append('}').toString();
    }

    /**
     * How long ago this process started, from {@code /proc/self/stat}'s starttime (clock ticks since
     * boot) and {@code /proc/uptime}; -1 if they cannot be read. (ProcessHandle's start instant adds the
     * boot time, which the kernel gives in whole seconds: it can be a second early.)
     */
    static long processAgeNanos() {
        try {
            return processAgeNanos(readProcFile("/proc/self/stat"), readProcFile("/proc/uptime"));
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /**
     * A small /proc file as text. java.io, not Files.readString: on start-up's path, before anything
     * else in the run has used NIO's channels and decoders, that was a few ms of interpreted set-up (a
     * profile of 2026-12-04).
     */
    private static String readProcFile(String path) throws IOException {
        try (FileInputStream in = new FileInputStream(path)) {
            return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
        }
    }

    /** The Linux user-visible clock tick (USER_HZ): 100 on every architecture jvmm runs on. */
    static final long USER_HZ = 100;

    static long processAgeNanos(String stat, String uptime) {
        // the command name (field 2) is in parentheses and may hold spaces: count fields after its ')'
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).trim().split(" ");
        long startTicks = Long.parseLong(f[19]); // field 22, starttime
        String up = uptime.substring(0, uptime.indexOf(' '));
        int dot = up.indexOf('.');
        long upNanos = Long.parseLong(up.substring(0, dot)) * 1_000_000_000L
                + Long.parseLong((up.substring(dot + 1) + "000000000").substring(0, 9));
        return Math.max(0, upNanos - startTicks * (1_000_000_000L / USER_HZ));
    }
}
