package dev.jvmm.it;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Runs the jvmm CLI as a separate process, as a user or a CI script would, from the test classpath. */
public final class Jvmm {
    private Jvmm() { }

    /** The options every jvmm launch uses: scripts/lib/jvm-flags, without its comments. */
    static final List<String> JVM_FLAGS = jvmFlags();

    private static List<String> jvmFlags() {
        Path file = Path.of(System.getProperty("jvmm.jvmFlags", "scripts/lib/jvm-flags"));
        try {
            return java.nio.file.Files.readAllLines(file).stream().map(l -> l.replaceAll("#.*", "").strip())
                    .filter(l -> !l.isEmpty()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the JVM options in " + file, e);
        }
    }

    /** The outcome of one run. */
    public record Result(int status, String stdout, String stderr, long millis) {
        @Override
        public String toString() {
            return "status " + status + " after " + millis + " ms\n--- stdout ---\n" + stdout + "\n--- stderr ---\n" + stderr;
        }
    }

    public static ProcessBuilder command(String... args) {
        return command(List.of(), args);
    }

    /** The same with more JVM options, after the usual ones (so -Xmx32m there wins over jvm-flags' -Xmx). */
    public static ProcessBuilder command(List<String> jvmOptions, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(JVM_FLAGS);
        cmd.addAll(jvmOptions);
        cmd.add("-Xshare:auto");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("dev.jvmm.cli.Main");
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd);
    }

    public static Result run(String... args) {
        return run(null, 60, args);
    }

    /** Runs jvmm with {@code stdin} (null: empty) and waits at most {@code timeoutSeconds}. */
    public static Result run(byte[] stdin, int timeoutSeconds, String... args) {
        return run(command(args), stdin, timeoutSeconds);
    }

    /** Runs {@code pb} (from {@link #command}, perhaps with more JVM options) like {@link #run(byte[], int, String...)}. */
    public static Result run(ProcessBuilder pb, byte[] stdin, int timeoutSeconds) {
        String args = String.join(" ", pb.command());
        try {
            long t0 = System.nanoTime();
            Process p = pb.start();
            CompletableFuture<String> out = drain(p.getInputStream());
            CompletableFuture<String> err = drain(p.getErrorStream());
            if (stdin != null) p.getOutputStream().write(stdin);
            p.getOutputStream().close();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("jvmm did not finish within " + timeoutSeconds + " s: " + args
                        + "\n--- stdout ---\n" + out.getNow("") + "\n--- stderr ---\n" + err.getNow(""));
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            return new Result(p.exitValue(), out.join(), err.join(), ms);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /**
     * Runs the CLI in this JVM through its entry point, {@code Main.execute}, with captured stdout and
     * stderr: for runs that end before a VM starts (usage and input errors), without a JVM start each.
     */
    public static Result inProcess(String... args) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        long t0 = System.nanoTime();
        int status;
        try (java.io.PrintStream o = new java.io.PrintStream(out, true, StandardCharsets.UTF_8);
             java.io.PrintStream e = new java.io.PrintStream(err, true, StandardCharsets.UTF_8)) {
            status = dev.jvmm.cli.Main.execute(args, o, e);
        }
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8),
                (System.nanoTime() - t0) / 1_000_000);
    }

    public static CompletableFuture<String> drain(InputStream in) {
        return CompletableFuture.supplyAsync(() -> {
            try (in) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "(read failed: " + e + ")";
            }
        });
    }
}
