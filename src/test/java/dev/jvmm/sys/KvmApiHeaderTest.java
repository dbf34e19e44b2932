package dev.jvmm.sys;

import dev.jvmm.host.vhost.VhostUserProtocol;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.GroupLayout;
import java.lang.foreign.MemoryLayout;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Checks every struct layout and constant of {@link KvmApi}, {@link LibC}, {@link Signals},
 * {@link Terminal} and {@link Tun} against the system's C headers. The oracle is {@code native-headers/kvm_probe.c},
 * compiled here with gcc and run: it prints {@code KEY VALUE} lines. The Java side of each key is
 * computed from the Java layouts and fields themselves, so the two sides must list the same keys.
 *
 * <p>Without gcc or {@code <linux/kvm.h>} the test is skipped, unless the environment variable CI is
 * set, in which case it fails.
 */
class KvmApiHeaderTest {

    /** Fewer checks than this means the probe or the Java-side walk lost most of its facts. */
    private static final int MIN_CHECKS = 400;

    /** Java-side fact: the value, and whether the C value is only an upper bound for it. */
    private record JavaFact(long value, boolean atLeast, String source) { }

    @Test
    void layoutsAndConstantsMatchTheSystemHeaders() throws Exception {
        Map<String, Long> c = runProbe();
        Map<String, JavaFact> java = javaFacts();

        List<String> problems = new ArrayList<>();
        for (var e : java.entrySet()) {
            Long cValue = c.get(e.getKey());
            JavaFact j = e.getValue();
            if (cValue == null) {
                problems.add(e.getKey() + ": not printed by kvm_probe.c (Java " + j.source() + " = " + j.value() + ")");
            } else if (j.atLeast() ? j.value() < cValue : j.value() != cValue) {
                problems.add(e.getKey() + ": Java " + j.source() + " = " + j.value()
                        + (j.atLeast() ? ", C needs at least " : ", C = ") + cValue);
            }
        }
        for (var e : c.entrySet()) {
            if (!java.containsKey(e.getKey())) {
                problems.add(e.getKey() + ": printed by kvm_probe.c (" + e.getValue() + ") but nothing on the Java side has that name");
            }
        }
        assertTrue(problems.isEmpty(), problems.size() + " of " + java.size()
                + " header facts disagree:\n  " + String.join("\n  ", problems));
        assertTrue(java.size() >= MIN_CHECKS, "only " + java.size() + " facts checked, expected at least " + MIN_CHECKS);
    }

    // ---- the Java side ----

    static Map<String, JavaFact> javaFacts() throws IllegalAccessException {
        Map<String, JavaFact> facts = new TreeMap<>();

        // C struct types: KvmApi's layouts named after a C struct tag ("kvm_..."), and LibC.POLLFD.
        Map<String, GroupLayout> cStructs = new LinkedHashMap<>();
        List<GroupLayout> innerLayouts = new ArrayList<>();
        for (Field f : staticFields(KvmApi.class)) {
            if (!(f.get(null) instanceof GroupLayout g)) continue;
            String name = g.name().orElseThrow(() -> new AssertionError("KvmApi." + f.getName() + " has no name"));
            if (name.startsWith("kvm_")) cStructs.put(name, g);
            else innerLayouts.add(g);
        }
        cStructs.put(LibC.POLLFD.name().orElseThrow(), LibC.POLLFD);

        List<MemoryLayout> visited = new ArrayList<>();
        for (var e : cStructs.entrySet()) {
            GroupLayout g = e.getValue();
            String tag = e.getKey();
            facts.put("sizeof." + tag, new JavaFact(g.byteSize(), false, tag + ".byteSize()"));
            facts.put("alignof." + tag, new JavaFact(g.byteAlignment(), false, tag + ".byteAlignment()"));
            members(facts, cStructs.values(), visited, g, tag, new ArrayList<>(), g);
        }
        // Every other layout constant (KVM_RUN_IO, ...) must be checked as a member of a C struct.
        for (GroupLayout inner : innerLayouts) {
            if (!visited.contains(inner.withoutName())) {
                throw new AssertionError("KvmApi layout " + inner + " is neither a C struct nor a member of one");
            }
        }

        for (Class<?> cls : List.of(KvmApi.class, LibC.class, Signals.class, Terminal.class, Tun.class)) {
            for (Field f : staticFields(cls)) {
                Class<?> t = f.getType();
                if (t == Ioctl.Request.class) {
                    Ioctl.Request r = (Ioctl.Request) f.get(null);
                    String source = cls.getSimpleName() + "." + f.getName();
                    facts.put(source, new JavaFact(r.number(), false, source + " (" + r.name() + ")"));
                    continue;
                }
                if (t != int.class && t != long.class && t != short.class && t != byte.class) continue;
                // RUN_* are offset(KVM_RUN, ...) of members checked above
                if (cls == KvmApi.class && f.getName().startsWith("RUN_")) continue;
                String source = cls.getSimpleName() + "." + f.getName();
                long value = ((Number) f.get(null)).longValue();
                if (cls == Terminal.class && f.getName().equals("TERMIOS_BYTES")) {
                    facts.put("sizeof.termios", new JavaFact(value, true, source));
                } else {
                    facts.put(source, new JavaFact(value, false, source));
                }
            }
        }

        // ==== vhost branch: UnixSocket, Memfd (every constant) and VhostUserProtocol (layouts, header-backed constants) ====
        Map<String, GroupLayout> vhostStructs = new LinkedHashMap<>();
        for (GroupLayout g : List.of(UnixSocket.SOCKADDR_UN, UnixSocket.IOVEC, UnixSocket.MSGHDR, UnixSocket.CMSGHDR,
                VhostUserProtocol.VHOST_VRING_STATE, VhostUserProtocol.VHOST_VRING_ADDR,
                VhostUserProtocol.VHOST_MEMORY_REGION, VhostUserProtocol.VHOST_MEMORY)) {
            vhostStructs.put(g.name().orElseThrow(), g);
        }
        for (var e : vhostStructs.entrySet()) {
            GroupLayout g = e.getValue();
            facts.put("sizeof." + e.getKey(), new JavaFact(g.byteSize(), false, e.getKey() + ".byteSize()"));
            facts.put("alignof." + e.getKey(), new JavaFact(g.byteAlignment(), false, e.getKey() + ".byteAlignment()"));
            members(facts, vhostStructs.values(), new ArrayList<>(), g, e.getKey(), new ArrayList<>(), g);
        }
        for (Class<?> cls : List.of(UnixSocket.class, Memfd.class)) {
            for (Field f : staticFields(cls)) {
                Class<?> t = f.getType();
                if (t != int.class && t != long.class && t != short.class && t != byte.class) continue;
                if (!Modifier.isPublic(f.getModifiers())) continue; // private ones are offsets derived from the layouts
                String source = cls.getSimpleName() + "." + f.getName();
                facts.put(source, new JavaFact(((Number) f.get(null)).longValue(), false, source));
            }
        }
        // the other VhostUserProtocol numbers exist only in the vhost-user specification, not in a header
        for (String name : List.of("VIRTIO_F_VERSION_1", "VHOST_F_LOG_ALL")) {
            try {
                String source = "VhostUserProtocol." + name;
                facts.put(source, new JavaFact(VhostUserProtocol.class.getField(name).getLong(null), false, source));
            } catch (NoSuchFieldException e) {
                throw new AssertionError(e);
            }
        }
        // ==== end of vhost branch ====
        return facts;
    }

    /** Offset and size of every named member of {@code group}, descending into nested anonymous structs. */
    private static void members(Map<String, JavaFact> facts, Iterable<GroupLayout> cStructs, List<MemoryLayout> visited,
                                GroupLayout top, String tag, List<String> path, GroupLayout group) {
        visited.add(group.withoutName());
        for (MemoryLayout m : group.memberLayouts()) {
            if (m.name().isEmpty()) continue; // explicit padding
            List<String> p = new ArrayList<>(path);
            p.add(m.name().get());
            String dotted = String.join(".", p);
            long offset = KvmApi.offset(top, p.toArray(String[]::new));
            facts.put("offsetof." + tag + "." + dotted, new JavaFact(offset, false, "offset(" + tag + ", " + dotted + ")"));
            facts.put("sizeof." + tag + "." + dotted, new JavaFact(m.byteSize(), false, tag + "." + dotted + ".byteSize()"));
            if (m instanceof GroupLayout inner && !isCStruct(inner, cStructs)) {
                members(facts, cStructs, visited, top, tag, p, inner);
            }
        }
    }

    /** A member whose type is another C struct (kvm_sregs.cs is a kvm_segment) is checked as that struct. */
    private static boolean isCStruct(GroupLayout layout, Iterable<GroupLayout> cStructs) {
        for (GroupLayout s : cStructs) {
            if (s.withoutName().equals(layout.withoutName())) return true;
        }
        return false;
    }

    private static List<Field> staticFields(Class<?> cls) {
        List<Field> fields = new ArrayList<>();
        for (Field f : cls.getDeclaredFields()) {
            int mod = f.getModifiers();
            if (!Modifier.isStatic(mod) || !Modifier.isFinal(mod)) continue;
            f.setAccessible(true);
            fields.add(f);
        }
        fields.sort(Comparator.comparing(Field::getName));
        return fields;
    }

    // ---- the C side ----

    private record Result(int exit, String out) { }

    private static Result exec(Path dir, String stdin, String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        try (var in = p.getOutputStream()) {
            if (stdin != null) in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("timed out: " + Arrays.toString(command));
        }
        return new Result(p.exitValue(), out);
    }

    /** Skips, or under CI fails, when the toolchain needed for the probe is missing. */
    private static void unavailable(String why) {
        if (System.getenv("CI") != null) fail(why + " (environment variable CI is set, so this is an error, not a skip)");
        Assumptions.abort(why);
    }

    private static Map<String, Long> runProbe() throws IOException, InterruptedException {
        Path source = Path.of(System.getProperty("jvmm.nativeHeaders", "native-headers"), "kvm_probe.c").toAbsolutePath();
        assertTrue(Files.isRegularFile(source), "probe source missing: " + source);
        Path dir = Files.createTempDirectory("jvmm-kvm-probe");
        try {
            try {
                Result version = exec(dir, null, "gcc", "--version");
                if (version.exit() != 0) unavailable("gcc --version failed: " + version.out());
            } catch (IOException e) {
                unavailable("gcc is not installed (" + e.getMessage() + "); cannot check KvmApi against <linux/kvm.h>");
            }
            Result header = exec(dir, "#include <linux/kvm.h>\nint main(void) { return 0; }\n",
                    "gcc", "-fsyntax-only", "-x", "c", "-");
            if (header.exit() != 0) unavailable("<linux/kvm.h> is not usable (install linux-libc-dev): " + header.out());

            Path binary = dir.resolve("kvm_probe");
            Result cc = exec(dir, null, "gcc", "-std=gnu11", "-Wall", "-Wextra", "-o", binary.toString(), source.toString());
            if (cc.exit() != 0) fail("kvm_probe.c does not compile:\n" + cc.out());
            Result run = exec(dir, null, binary.toString());
            if (run.exit() != 0) fail("kvm_probe exited with " + run.exit() + ":\n" + run.out());

            Map<String, Long> facts = new LinkedHashMap<>();
            for (String line : run.out().split("\n")) {
                if (line.isBlank()) continue;
                String[] kv = line.trim().split(" ");
                if (kv.length != 2) fail("malformed probe line: '" + line + "'");
                if (facts.put(kv[0], Long.parseLong(kv[1])) != null) fail("probe prints " + kv[0] + " twice");
            }
            return facts;
        } finally {
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        }
    }
}
