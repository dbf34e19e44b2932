package dev.jvmm.it;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The distribution tarball as a user gets it (scripts/build-dist, made by mvn package; this test runs in
 * the verify phase): unpacked into a new directory, bin/jvmm runs the bundled demo guests with no JDK
 * on PATH and no JAVA_HOME, from its own runtime, with its AOT cache accepted at the new path, and
 * says nothing on stderr.
 */
class DistributionIT {
    static final int GUEST_OK = 33;

    @TempDir
    static Path unpacked;

    /** jvmm-VERSION/ inside {@link #unpacked}. */
    static Path home;
    /** A PATH with only what the launcher itself uses: no java anywhere on it. */
    static Path tools;

    @BeforeAll
    static void unpack() throws Exception {
        Path tarball = Path.of(System.getProperty("jvmm.distTarball", "target/jvmm-0.1.0-linux-x86_64.tar.gz"));
        assertTrue(Files.isRegularFile(tarball), tarball + " was not built (mvn package makes it)");
        Result r = exec(List.of("tar", "-C", unpacked.toString(), "-xzf", tarball.toAbsolutePath().toString()), unpacked, Map.of("PATH", "/usr/bin:/bin"));
        assertEquals(0, r.status(), r::toString);
        try (Stream<Path> s = Files.list(unpacked)) {
            List<Path> top = s.toList();
            assertEquals(1, top.size(), "one top directory: " + top);
            home = top.get(0);
        }
        tools = Files.createDirectory(unpacked.resolve("tools"));
        for (String t : List.of("env", "readlink")) Files.createSymbolicLink(tools.resolve(t), Path.of("/usr/bin", t));
        Files.createSymbolicLink(tools.resolve("jvmm"), home.resolve("bin/jvmm")); // as if linked into /usr/local/bin
    }

    record Result(int status, String stdout, String stderr) {
        @Override
        public String toString() {
            return "status " + status + "\n--- stdout ---\n" + stdout + "\n--- stderr ---\n" + stderr;
        }
    }

    static Result exec(List<String> command, Path dir, Map<String, String> env) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
        pb.environment().clear(); // no JAVA_HOME, no PATH with a JDK on it
        pb.environment().putAll(env);
        Path out = Files.createTempFile("jvmm-dist", ".out"), err = Files.createTempFile("jvmm-dist", ".err");
        Process p = pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(command + " did not finish within 60 s");
        }
        try {
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.delete(out);
            Files.delete(err);
        }
    }

    static Result jvmm(Map<String, String> extraEnv, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(home.resolve("bin/jvmm").toString()));
        cmd.addAll(List.of(args));
        Map<String, String> env = new java.util.HashMap<>(Map.of("PATH", tools.toString(), "HOME", unpacked.toString()));
        env.putAll(extraEnv);
        return exec(cmd, home, env);
    }

    @Test
    void holdsTheLauncherTheRuntimeTheJarTheCacheAndTheGuests() throws IOException {
        for (String f : List.of("bin/jvmm", "lib/runtime/bin/java", "lib/jvmm.jar", "lib/jvmm.aot", "share/jvmm/guests/hello.bin",
                "share/jvmm/guests/smp.elf", "share/doc/jvmm/README.md")) {
            assertTrue(Files.isRegularFile(home.resolve(f)), f);
        }
        assertTrue(Files.getPosixFilePermissions(home.resolve("bin/jvmm")).contains(PosixFilePermission.OTHERS_EXECUTE));
        // only the modules jvmm needs (scripts/build-dist says why)
        String release = Files.readString(home.resolve("lib/runtime/release"));
        assertTrue(release.contains("MODULES=\"java.base jdk.unsupported\""), release);
        assertTrue(Files.notExists(home.resolve("lib/jvmm.aot.config")), "the training run's leftovers are not shipped");
        assertTrue(Files.notExists(home.resolve("lib/jvmm-restore.aot.config")), "the restore training's leftovers are not shipped");
    }

    @Test
    void runsTheHelloGuestWithoutAJdkAndSaysNothingOnStderr() throws Exception {
        KvmSupport.requireKvm();
        Result r = jvmm(Map.of(), "run", "share/jvmm/guests/hello.bin");
        assertEquals(GUEST_OK, r.status(), r::toString);
        assertTrue(r.stdout().contains("Hello from a jvmm guest"), r::toString);
        assertEquals("", r.stderr(), "no warning about the AOT cache or anything else");
    }

    @Test
    void theAotCacheIsAcceptedWhereTheTarballWasUnpacked() throws Exception {
        // AOTMode=on: the JVM refuses to start rather than run without the cache (missing, or not this runtime's)
        Result r = jvmm(Map.of("JDK_JAVA_OPTIONS", "-XX:AOTMode=on"), "--version");
        assertEquals(0, r.status(), r::toString);
        assertTrue(r.stdout().startsWith("jvmm "), r::toString);
        assertEquals("", withoutOptionsNote(r.stderr()), r::toString);
        // and jvmm's own classes come from it, though the jar it was made with was elsewhere
        Path log = unpacked.resolve("class-load.log");
        r = jvmm(Map.of("JDK_JAVA_OPTIONS", "-Xlog:class+load:file=" + log), "--version");
        assertEquals(0, r.status(), r::toString);
        String loads = Files.readString(log);
        assertTrue(loads.contains("dev.jvmm.cli.Main source: shared objects file"), "Main not from the AOT cache:\n"
                + loads.lines().filter(l -> l.contains("dev.jvmm")).limit(5).collect(Collectors.joining("\n")));
    }

    /**
     * Every method-handle form a boot resolves (the system call downcall's, the segment var handles')
     * is in the holder classes of the AOT cache: build-dist added them to the runtime's classlist, from
     * which the cache's holders are made. A form missing there is spun as a class at run time, on the
     * start-up's critical path; the JDK's trace says "(fail)" for each.
     */
    @Test
    void aBootSpinsNoMethodHandleFormTheCacheCouldHold() throws Exception {
        KvmSupport.requireKvm();
        Result r = jvmm(Map.of("JDK_JAVA_OPTIONS", "-XX:AOTMode=on -Djava.lang.invoke.MethodHandle.TRACE_RESOLVE=true"),
                "run", "share/jvmm/guests/hello.bin");
        assertEquals(GUEST_OK, r.status(), r::toString);
        List<String> resolved = r.stdout().lines().filter(l -> l.startsWith("[LF_RESOLVE]")).toList();
        assertTrue(resolved.size() > 5, "the trace lists the forms a boot resolves:\n" + r);
        List<String> spun = resolved.stream().filter(l -> l.endsWith("(fail)")).toList();
        assertEquals(List.of(), spun, "forms not in the cache's holder classes");
    }

    /**
     * A restore starts from lib/jvmm-restore.aot, the cache trained on a restore: a guest served by
     * the distribution, paused and snapshotted over its control socket, is restored by it, and the
     * restore code comes from the cache (with the boot's cache it would come from the jar).
     */
    @Test
    void aRestoreStartsFromTheCacheTrainedOnARestore() throws Exception {
        KvmSupport.requireKvm();
        assertTrue(Files.isRegularFile(home.resolve("lib/jvmm-restore.aot")), "lib/jvmm-restore.aot");
        Path sock = unpacked.resolve("api.sock"), snap = unpacked.resolve("snapshot");
        Path spin = Path.of("target/guests/spin.bin").toAbsolutePath();
        ProcessBuilder pb = new ProcessBuilder(home.resolve("bin/jvmm").toString(), "run", "--no-stdin", "--timeout", "60s",
                "--api-socket", sock.toString(), spin.toString()).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("PATH", tools.toString());
        Process served = pb.start();
        try {
            for (String[] req : List.of(new String[] {"pause"}, new String[] {"snapshot", "dir=" + snap}, new String[] {"stop"})) {
                List<String> args = new ArrayList<>(List.of("ctl", "--timeout", "20s", sock.toString()));
                args.addAll(List.of(req));
                Result r = jvmm(Map.of(), args.toArray(String[]::new));
                assertEquals(0, r.status(), () -> req[0] + ": " + r);
            }
            assertTrue(served.waitFor(20, TimeUnit.SECONDS), "the served guest stopped");
        } finally {
            served.destroyForcibly();
        }
        Path log = unpacked.resolve("restore-class-load.log");
        Result r = jvmm(Map.of("JDK_JAVA_OPTIONS", "-XX:AOTMode=on -Xlog:class+load:file=" + log),
                "run", "--restore", snap.toString(), "--no-stdin", "--timeout", "1s");
        assertEquals(dev.jvmm.vmm.ExitStatus.TIMEOUT, r.status(), r::toString);
        String loads = Files.readString(log);
        assertTrue(loads.contains("dev.jvmm.vmm.SnapshotRestore source: shared objects file"), "the restore code not from the AOT cache:\n"
                + loads.lines().filter(l -> l.contains("SnapshotRestore")).collect(Collectors.joining("\n")));
    }

    private static String withoutOptionsNote(String stderr) {
        return stderr.lines().filter(l -> !l.startsWith("NOTE: Picked up JDK_JAVA_OPTIONS")).collect(Collectors.joining("\n"));
    }

    @Test
    void runsTheSmpGuestThroughASymlinkedLauncher() throws Exception {
        KvmSupport.requireKvm();
        Result r = exec(List.of(tools.resolve("jvmm").toString(), "run", "--smp", "2", "--cmdline", "cpus=2",
                home.resolve("share/jvmm/guests/smp.elf").toString()), unpacked, Map.of("PATH", tools.toString()));
        assertEquals(GUEST_OK, r.status(), r::toString);
        assertTrue(r.stdout().contains("all 2 cpus up"), r::toString);
    }

    @Test
    void withoutKvmItSaysSoAndExitsWithStatus6() throws Exception {
        Result r = jvmm(Map.of(), "run", "--kvm", "/nonexistent/kvm", "share/jvmm/guests/hello.bin");
        assertEquals(6, r.status(), r::toString);
        assertTrue(r.stderr().contains("/nonexistent/kvm"), r::toString);
    }

    /**
     * The jar is minimized (maven-shade's minimizeJar keeps what jvmm's classes reach): every
     * decompressor a kernel can need must still be in it, and work, where the tests' class path would
     * have hidden a missing class.
     */
    @Test
    void extractsTheVmlinuxFromABzImageInEveryCompression() throws Exception {
        byte[] vmlinux = dev.jvmm.loader.CompressedKernels.vmlinux();
        for (String kind : dev.jvmm.loader.CompressedKernels.kinds()) {
            Path bz = Files.write(unpacked.resolve("bzImage." + kind), dev.jvmm.loader.CompressedKernels.bzImage(kind));
            Path out = unpacked.resolve("vmlinux." + kind);
            Result r = jvmm(Map.of(), "extract-vmlinux", bz.toString(), out.toString());
            assertEquals(0, r.status(), kind + ": " + r);
            assertTrue(java.util.Arrays.equals(vmlinux, Files.readAllBytes(out)), kind + ": the vmlinux extracted is the one compressed");
        }
    }
}
