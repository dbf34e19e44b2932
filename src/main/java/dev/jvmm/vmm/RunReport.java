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

    /** The human-readable table --stats prints on stderr. */
    public void print(PrintStream out) {
        out.printf("jvmm stats: %s (exit status %d), wall time %.3f s%n", stop.reason(), stop.exitStatus(), wallNanos / 1e9);
        for (VcpuSummary v : vcpus) {
            StringBuilder sb = new StringBuilder();
            v.exits().forEach((k, c) -> sb.append(' ').append(k).append('=').append(c));
            out.printf("  vCPU %d: %d exits:%s%n", v.id(), v.total(), sb);
        }
        out.println("  timeline, ms since process start: " + timeline.line());
        out.printf("  unclaimed accesses: %d port, %d MMIO; console bytes: %d%n", unclaimedPio, unclaimedMmio, consoleBytes);
        devices.forEach((name, counters) -> {
            StringBuilder sb = new StringBuilder();
            counters.forEach((k, v) -> sb.append(' ').append(k).append('=').append(v));
            out.printf("  %s:%s%n", name, sb);
        });
        if (!hotspots.isEmpty()) out.println("  busiest addresses:");
        for (Hotspot h : hotspots) {
            out.printf("    %-4s 0x%-8x %-15s %d%n", h.kind(), h.address(), h.device(), h.count());
        }
    }

    /** The same facts as JSON. */
    public String toJson() {
        StringBuilder sb = new StringBuilder("{\n");
        sb.append("  \"exit_status\": ").append(stop.exitStatus()).append(",\n");
        sb.append("  \"reason\": ").append(quote(stop.reason())).append(",\n");
        sb.append("  \"ended_by\": ").append(quote(stop.cause().jsonName())).append(",\n");
        sb.append(String.format("  \"wall_seconds\": %.6f,%n", wallNanos / 1e9));
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
