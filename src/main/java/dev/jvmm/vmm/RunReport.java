package dev.jvmm.vmm;

import dev.jvmm.device.Bus;
import dev.jvmm.sys.KvmApi;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
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
        // most counted first, then by address; a plain lambda, since Comparator.comparingLong's chain
        // spins JDK lambda classes at the end of every run
        all.sort((a, b) -> a.count() != b.count() ? Long.compare(b.count(), a.count())
                : Long.compare(a.address(), b.address()));
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
                .append(Json.Decimal.format(wallNanos / 1e9, 3)).append(" s\n");
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

    /**
     * The same facts as JSON objects (field order kept), for --stats-json and the control socket's
     * {@code stats} request: exit_status, reason, ended_by, wall_seconds, timeline_ms, console_bytes, unclaimed,
     * vcpus, devices, busiest.
     */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("exit_status", stop == null ? null : stop.exitStatus());
        m.put("reason", stop == null ? "running" : stop.reason());
        m.put("ended_by", stop == null ? null : stop.cause().jsonName());
        m.put("wall_seconds", Json.Decimal.of(wallNanos / 1e9, 6));
        m.put("timeline_ms", timeline.toMap());
        m.put("console_bytes", consoleBytes);
        m.put("unclaimed", Json.fields("pio", unclaimedPio, "mmio", unclaimedMmio));
        List<Object> cpus = new ArrayList<>();
        for (VcpuSummary v : vcpus) cpus.add(Json.fields("id", v.id(), "total_exits", v.total(), "exits", v.exits()));
        m.put("vcpus", cpus);
        m.put("devices", devices);
        List<Object> busiest = new ArrayList<>();
        for (Hotspot h : hotspots) {
            busiest.add(Json.fields("kind", h.kind(), "address", h.address(), "device", h.device(), "count", h.count()));
        }
        m.put("busiest", busiest);
        m.putAll(extra);
        return m;
    }

    /** Facts a run adds to the JSON after these (restore_ms of a --restore run). */
    private final Map<String, Object> extra = new LinkedHashMap<>();

    void put(String key, Object value) {
        extra.put(key, value);
    }

    /** {@link #toMap()} as pretty-printed JSON text. */
    public String toJson() {
        try {
            return Json.PRETTY.asString(toMap()) + "\n";
        } catch (IOException e) {
            throw new IllegalStateException("cannot write the statistics as JSON: " + e.getMessage(), e);
        }
    }

    public void writeJson(Path file) throws IOException {
        Files.writeString(file, toJson());
    }
}
