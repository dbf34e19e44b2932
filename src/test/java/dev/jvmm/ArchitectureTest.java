package dev.jvmm;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The layering the README describes, read from the sources' imports: each top-level package may use
 * only the packages below it, so no arrow runs back up and there are no cycles.
 */
class ArchitectureTest {
    /** What each package may depend on (besides itself and the JDK and libraries). */
    static final Map<String, Set<String>> ALLOWED = Map.ofEntries(
            Map.entry("sys", Set.of()),
            Map.entry("log", Set.of()),
            Map.entry("event", Set.of("sys")),
            Map.entry("kvm", Set.of("sys")),
            Map.entry("memory", Set.of("sys")),
            Map.entry("arch", Set.of("sys", "kvm", "memory")),
            Map.entry("loader", Set.of("sys", "log", "memory", "arch")),
            Map.entry("device", Set.of("sys", "log", "event", "memory", "arch")),
            Map.entry("host", Set.of("sys", "log", "event", "memory", "arch", "device")),
            Map.entry("gdb", Set.of("sys")),
            Map.entry("vmm", Set.of("sys", "log", "event", "kvm", "memory", "arch", "loader", "device", "host", "gdb")));
    // cli may use everything

    private static final Pattern PACKAGE = Pattern.compile("^package dev\\.jvmm\\.([a-z]+)[.;]", Pattern.MULTILINE);
    private static final Pattern USE = Pattern.compile("\\bdev\\.jvmm\\.([a-z]+)\\.[A-Za-z]");

    @Test
    void dependenciesPointDownwardsOnly() throws IOException {
        List<String> problems = new ArrayList<>();
        Set<String> seen = new TreeSet<>();
        try (Stream<Path> files = Files.walk(Path.of("src/main/java/dev/jvmm"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String src = Files.readString(f);
                Matcher pm = PACKAGE.matcher(src);
                if (!pm.find()) continue;
                String top = pm.group(1);
                seen.add(top);
                if (top.equals("cli")) continue;
                Set<String> allowed = ALLOWED.get(top);
                if (allowed == null) {
                    problems.add(f + ": package " + top + " has no place in the layering (add it to ALLOWED and the README)");
                    continue;
                }
                Matcher um = USE.matcher(src);
                while (um.find()) {
                    String used = um.group(1);
                    if (!used.equals(top) && !allowed.contains(used)) problems.add(f + ": " + top + " uses " + used);
                }
            }
        }
        assertTrue(seen.containsAll(Set.of("sys", "kvm", "vmm", "device", "cli")), "the walk found the sources: " + seen);
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    /**
     * Only {@code dev.jvmm.log} names slf4j or logback: everything else logs through its {@code Log},
     * which starts logback only for -v or a warning. A logger held by any other class (a static
     * {@code LoggerFactory.getLogger} field) started it in every run that loaded the class: about 10
     * to 15 ms of a trivial run's start-up, measured, when the kernel cache had one.
     */
    @Test
    void onlyTheLogPackageStartsLogging() throws IOException {
        List<String> problems = new ArrayList<>();
        try (Stream<Path> files = Files.walk(Path.of("src/main/java/dev/jvmm"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                if (f.startsWith(Path.of("src/main/java/dev/jvmm/log"))) continue;
                if (Pattern.compile("\\b(org\\.slf4j|ch\\.qos\\.logback)\\.").matcher(Files.readString(f)).find()) problems.add(f.toString());
            }
        }
        assertTrue(problems.isEmpty(), "log through dev.jvmm.log.Log, not slf4j directly: " + problems);
    }

    /**
     * Shutdown hooks and delete-on-exit files go through {@code dev.jvmm.sys.ShutdownHooks}: a run that
     * registered none ends with a halt (no Runtime.exit logger to set up), so one registered behind its
     * back would silently not run at the end of a normal run.
     */
    @Test
    void shutdownWorkGoesThroughShutdownHooks() throws IOException {
        Pattern direct = Pattern.compile("\\b(add|remove)ShutdownHook\\(|\\.deleteOnExit\\(\\)");
        List<String> problems = new ArrayList<>();
        int registrations = 0;
        try (Stream<Path> files = Files.walk(Path.of("src/main/java/dev/jvmm"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String src = Files.readString(f);
                if (f.endsWith("sys/ShutdownHooks.java")) continue;
                if (direct.matcher(src).find()) problems.add(f.toString());
                registrations += Pattern.compile("ShutdownHooks\\.(add|deleteOnExit)\\(").matcher(src).results().count();
            }
        }
        assertTrue(registrations >= 3, "the walk found the hooks registered through ShutdownHooks: " + registrations);
        assertTrue(problems.isEmpty(), "register shutdown work through dev.jvmm.sys.ShutdownHooks: " + problems);
    }
}
