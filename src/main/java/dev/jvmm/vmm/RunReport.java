package dev.jvmm.vmm;

import dev.jvmm.device.Bus;
import dev.jvmm.sys.KvmApi;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What a run did, gathered when it ends: why it stopped, exits per vCPU by reason, the busiest ports
 * and MMIO addresses, wall time. Printed for --stats, written as JSON for --stats-json.
 */
public final class RunReport {
    static final int TOP = 10;

    /** One vCPU's exits by reason name. */
    public record VcpuSummary(int id, Map<String, Long> exits, long total) { }

    /** Accesses to one port or MMIO address, with the device that owns it ("unclaimed" if none). */
    public record Hotspot(String kind, long address, String device, long count) { }

    private final Timeline timeline;
    private Stop stop;
    private final List<VcpuSummary> vcpus = new ArrayList<>();
    private final List<Hotspot> hotspots = new ArrayList<>();
    private long unclaimedPio, unclaimedMmio, consoleBytes, wallNanos;
    private final Map<String, Map<String, Long>> devices = new java.util.LinkedHashMap<>();

    /** @param timeline the run's milestones; the report shows them as they are when it is printed */
    public RunReport(Timeline timeline) {
        this.timeline = timeline;
    }

    public Timeline timeline() {
        return timeline;
    }

    void finish(Stop stop, List<VcpuThread> threads, Bus pio, Bus mmio, Map<String, Map<String, Long>> devices,
                long consoleBytes, long wallNanos) {
        this.stop = stop;
        this.devices.putAll(devices);
        this.consoleBytes = consoleBytes;
        this.wallNanos = wallNanos;
        Map<Long, Long> pioCounts = new HashMap<>();
        Map<Long, Long> mmioCounts = new HashMap<>();
        for (int i = 0; i < threads.size(); i++) {
            VcpuStats s = threads.get(i).stats();
            Map<String, Long> byName = new java.util.TreeMap<>();
            for (int r = 0; r < VcpuStats.REASONS; r++) {
                if (s.exitsByReason[r] > 0) byName.put(KvmApi.exitName(r), s.exitsByReason[r]);
            }
            if (s.kicks > 0) byName.merge("KICK (EINTR)", s.kicks, Long::sum);
            vcpus.add(new VcpuSummary(i, byName, s.totalExits()));
            for (AddressCounts.Entry e : s.pio.entries()) pioCounts.merge(e.address(), e.count(), Long::sum);
            for (AddressCounts.Entry e : s.mmio.entries()) mmioCounts.merge(e.address(), e.count(), Long::sum);
            unclaimedPio += s.unclaimedPio;
            unclaimedMmio += s.unclaimedMmio;
        }
        List<Hotspot> all = new ArrayList<>();
        pioCounts.forEach((a, c) -> {
            Bus.Range r = pio.find(a);
            all.add(new Hotspot("pio", a, r == null ? "unclaimed" : r.name(), c));
        });
        mmioCounts.forEach((a, c) -> {
            Bus.Range r = mmio.find(a);
            all.add(new Hotspot("mmio", a, r == null ? "unclaimed" : r.name(), c));
        });
        all.sort(Comparator.comparingLong(Hotspot::count).reversed().thenComparingLong(Hotspot::address));
        hotspots.addAll(all.subList(0, Math.min(TOP, all.size())));
    }

    public Stop stop() {
        return stop;
    }

    public List<VcpuSummary> vcpus() {
        return vcpus;
    }

    public List<Hotspot> hotspots() {
        return hotspots;
    }

    public static String duration(Duration d) {
        long ms = d.toMillis();
        return ms % 60_000 == 0 && ms > 0 ? ms / 60_000 + "m" : ms % 1000 == 0 ? ms / 1000 + "s" : ms + "ms";
    }

    /**
     * The human-readable table --stats prints on stderr, written at once (stderr is unbuffered) and
     * without String.format (its first use costs tens of milliseconds).
     */
    public void print(PrintStream out) {
        StringBuilder sb = new StringBuilder();
        sb.append("jvmm stats: ").append(stop.reason()).append(" (exit status ").append(stop.exitStatus()).append("), wall time ")
                .append(decimal(wallNanos / 1e9, 3)).append(" s\n");
        for (VcpuSummary v : vcpus) {
            sb.append("  vCPU ").append(v.id()).append(": ").append(v.total()).append(" exits:");
            v.exits().forEach((k, c) -> sb.append(' ').append(k).append('=').append(c));
            sb.append('\n');
        }
        sb.append("  timeline, ms since process start: ").append(timeline.line()).append('\n');
        sb.append("  unclaimed accesses: ").append(unclaimedPio).append(" port, ").append(unclaimedMmio)
                .append(" MMIO; console bytes: ").append(consoleBytes).append('\n');
        devices.forEach((name, counters) -> {
            sb.append("  ").append(name).append(':');
            counters.forEach((k, v) -> sb.append(' ').append(k).append('=').append(v));
            sb.append('\n');
        });
        if (!hotspots.isEmpty()) sb.append("  busiest addresses:\n");
        for (Hotspot h : hotspots) {
            sb.append("    ").append(pad(h.kind(), 4)).append(" 0x").append(pad(Long.toHexString(h.address()), 8)).append(' ')
                    .append(pad(h.device(), 15)).append(' ').append(h.count()).append('\n');
        }
        out.print(sb);
        out.flush();
    }

    private static String pad(String s, int width) {
        return s.length() >= width ? s : s + " ".repeat(width - s.length());
    }

    /** {@code value} with {@code digits} decimals, rounded half up (what %.Nf prints, without a Formatter). */
    static String decimal(double value, int digits) {
        return java.math.BigDecimal.valueOf(value).setScale(digits, java.math.RoundingMode.HALF_UP).toPlainString();
    }

    /** The same facts as JSON. */
    public String toJson() {
        StringBuilder sb = new StringBuilder("{\n");
        sb.append("  \"exit_status\": ").append(stop.exitStatus()).append(",\n");
        sb.append("  \"reason\": ").append(quote(stop.reason())).append(",\n");
        sb.append("  \"ended_by\": ").append(quote(stop.cause().jsonName())).append(",\n");
        sb.append("  \"wall_seconds\": ").append(decimal(wallNanos / 1e9, 6)).append(",\n");
        sb.append("  \"timeline_ms\": ").append(timeline.json()).append(",\n");
        sb.append("  \"console_bytes\": ").append(consoleBytes).append(",\n");
        sb.append("  \"unclaimed\": {\"pio\": ").append(unclaimedPio).append(", \"mmio\": ").append(unclaimedMmio).append("},\n");
        sb.append("  \"vcpus\": [");
        for (int i = 0; i < vcpus.size(); i++) {
            VcpuSummary v = vcpus.get(i);
            sb.append(i == 0 ? "\n" : ",\n").append("    {\"id\": ").append(v.id()).append(", \"total_exits\": ").append(v.total())
                    .append(", \"exits\": {");
            int j = 0;
            for (Map.Entry<String, Long> e : v.exits().entrySet()) {
                sb.append(j++ == 0 ? "" : ", ").append(quote(e.getKey())).append(": ").append(e.getValue());
            }
            sb.append("}}");
        }
        sb.append("\n  ],\n  \"devices\": {");
        int d = 0;
        for (Map.Entry<String, Map<String, Long>> dev : devices.entrySet()) {
            sb.append(d++ == 0 ? "\n" : ",\n").append("    ").append(quote(dev.getKey())).append(": {");
            int k = 0;
            for (Map.Entry<String, Long> c : dev.getValue().entrySet()) {
                sb.append(k++ == 0 ? "" : ", ").append(quote(c.getKey())).append(": ").append(c.getValue());
            }
            sb.append('}');
        }
        sb.append("\n  },\n  \"busiest\": [");
        for (int i = 0; i < hotspots.size(); i++) {
            Hotspot h = hotspots.get(i);
            sb.append(i == 0 ? "\n" : ",\n").append("    {\"kind\": ").append(quote(h.kind())).append(", \"address\": ")
                    .append(h.address()).append(", \"device\": ").append(quote(h.device())).append(", \"count\": ")
                    .append(h.count()).append('}');
        }
        return sb.append("\n  ]\n}\n").toString();
    }

    public void writeJson(Path file) throws IOException {
        Files.writeString(file, toJson());
    }

    static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"').toString();
    }
}
