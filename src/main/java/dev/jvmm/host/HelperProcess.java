package dev.jvmm.host;

import dev.jvmm.sys.ShutdownHooks;
import dev.jvmm.log.Log;
import dev.jvmm.sys.UnixSocket;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * An external program jvmm runs for the duration of a VM (virtiofsd, later passt), in a private
 * temporary directory (mode 0700, removed on close) with its stdout and stderr captured in a bounded
 * buffer, so that when it fails its own last words go into the error message.
 *
 * <p>It never outlives jvmm:
 * <ul>
 * <li>{@link #close} sends SIGTERM, waits {@link #TERM_GRACE}, then SIGKILLs it (and anything it forked).
 * <li>A JVM shutdown hook closes every helper still running when jvmm exits normally or on SIGTERM/SIGINT.
 * <li>For SIGKILL of jvmm (or a crash), where no Java code runs, the program is started through
 *     {@code setpriv --pdeathsig KILL} (util-linux), which sets PR_SET_PDEATHSIG and execs it: the kernel
 *     then kills it when its parent dies. The kernel's "parent" here is the <em>thread</em> that forked
 *     it, not the process: a helper started by a thread that later ends would be killed with that
 *     thread (measured: exit 137 right after the starting thread returned). So every helper is started by
 *     one platform thread, {@value #LAUNCHER_THREAD}, that lives as long as the JVM; callers on any thread,
 *     virtual threads included, hand the start to it. Without setpriv only the first two hold.
 * </ul>
 * A small window remains: a jvmm killed between the fork and setpriv's prctl leaves the helper running.
 *
 * <p>A SIGKILLed jvmm cannot remove its helpers' directories; each holds a {@value #OWNER_FILE} file
 * naming the jvmm that made it (pid and start time), and the first {@link #start} in a later jvmm
 * removes those whose jvmm is gone.
 */
public final class HelperProcess implements AutoCloseable {
    /** How long {@link #close} waits after SIGTERM before SIGKILL. */
    public static final Duration TERM_GRACE = Duration.ofSeconds(2);
    /** Output kept for error messages: the last this many bytes. */
    static final int OUTPUT_BYTES = 16 * 1024;
    static final String LAUNCHER_THREAD = "jvmm helper launcher";
    /** In each private directory: "PID START-MILLIS" of the jvmm that made it. */
    static final String OWNER_FILE = "jvmm-owner";
    private static final AtomicBoolean SWEPT = new AtomicBoolean();

    /** A helper that could not be started or did not come up; one line, with the helper's last output. */
    public static final class HelperException extends IOException {
        public HelperException(String message) {
            super(message);
        }

        public HelperException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The single long-lived thread that forks every helper (see the class comment for why). */
    private static final ExecutorService LAUNCHER = Executors.newSingleThreadExecutor(
            Thread.ofPlatform().name(LAUNCHER_THREAD).daemon(true).factory());
    private static final Set<HelperProcess> LIVE = ConcurrentHashMap.newKeySet();

    static {
        ShutdownHooks.add(new Thread(() -> {
            for (HelperProcess h : List.copyOf(LIVE)) h.close();
        }, "jvmm helper cleanup"));
    }

    private final String name;
    private final Path directory;
    private final Process process;
    private final List<String> command;
    private final Thread reader;
    private final byte[] tail = new byte[OUTPUT_BYTES];
    private long outputBytes;
    private volatile java.util.regex.Pattern noise;
    private boolean closed;

    private HelperProcess(String name, Path directory, Process process, List<String> command) {
        this.name = name;
        this.directory = directory;
        this.process = process;
        this.command = command;
        this.reader = Thread.ofVirtual().name(name + " output").start(this::readOutput);
    }

    /** setpriv, if this system has one that knows --pdeathsig; checked once. */
    private static final class Setpriv {
        static final Path PATH = find();

        private static Path find() {
            for (String dir : (System.getenv().getOrDefault("PATH", "") + ":/usr/bin:/bin").split(":")) {
                if (dir.isEmpty()) continue;
                Path p = Path.of(dir, "setpriv");
                if (!Files.isExecutable(p)) continue;
                try {
                    Process check = new ProcessBuilder(p.toString(), "--pdeathsig", "KILL", "--", "true")
                            .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
                    check.getInputStream().readAllBytes();
                    if (check.waitFor(5, TimeUnit.SECONDS) && check.exitValue() == 0) return p;
                    check.destroyForcibly();
                } catch (IOException e) {
                    // not usable: try the next one
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
            Log.warn(HelperProcess.class, "setpriv (util-linux) with --pdeathsig not found: helper processes are stopped when jvmm exits,"
                    + " but not if jvmm is killed with SIGKILL");
            return null;
        }
    }

    /** True when helpers are started with a parent-death signal, so they die even with a SIGKILLed jvmm. */
    public static boolean diesWithJvmm() {
        return Setpriv.PATH != null;
    }

    /**
     * Creates a private directory and starts the program {@code command} builds for it (typically a
     * socket path inside it), with the directory as working directory and stdin from /dev/null.
     * @param name what messages call it ("virtiofsd")
     */
    /** An I/O failure in words: NIO's file exceptions carry only the path (AccessDeniedException: "/tmp/x"). */
    static String describe(IOException e) {
        String what = e.getMessage() == null ? "" : e.getMessage();
        if (e instanceof java.nio.file.AccessDeniedException) return what + ": permission denied";
        if (e instanceof java.nio.file.NoSuchFileException) return what + ": no such file or directory";
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() == null) return what + ": " + e.getClass().getSimpleName();
        return what;
    }

    public static HelperProcess start(String name, Function<Path, List<String>> command) throws HelperException {
        if (SWEPT.compareAndSet(false, true)) sweepStale(Path.of(System.getProperty("java.io.tmpdir")));
        Path dir;
        try {
            dir = Files.createTempDirectory("jvmm-" + name.replaceAll("[^A-Za-z0-9_.-]", "_") + "-",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            Files.writeString(dir.resolve(OWNER_FILE), ownerStamp(ProcessHandle.current()));
        } catch (IOException e) {
            throw new HelperException("cannot create a private directory for " + name + ": " + describe(e), e);
        }
        List<String> program;
        try {
            program = List.copyOf(command.apply(dir));
            if (program.isEmpty()) throw new IllegalArgumentException("empty command for " + name);
        } catch (RuntimeException e) {
            deleteTree(dir);
            throw e;
        }
        // setpriv would start and then fail to exec it: say so here, plainly
        if (!executable(program.get(0))) {
            deleteTree(dir);
            throw new HelperException("cannot start " + name + ": " + program.get(0) + " is not an executable file"
                    + (program.get(0).contains("/") ? "" : " on PATH"));
        }
        List<String> full = new ArrayList<>();
        if (Setpriv.PATH != null) full.addAll(List.of(Setpriv.PATH.toString(), "--pdeathsig", "KILL", "--"));
        full.addAll(program);
        ProcessBuilder pb = new ProcessBuilder(full).directory(dir.toFile()).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        Process p;
        try {
            p = LAUNCHER.submit(pb::start).get();
        } catch (ExecutionException e) {
            deleteTree(dir);
            Throwable c = e.getCause();
            throw new HelperException("cannot start " + name + " (" + program.get(0) + "): " + c.getMessage(), c);
        } catch (InterruptedException e) {
            deleteTree(dir);
            Thread.currentThread().interrupt();
            throw new HelperException("interrupted while starting " + name);
        }
        HelperProcess h = new HelperProcess(name, dir, p, program);
        LIVE.add(h);
        return h;
    }

    private static String ownerStamp(ProcessHandle p) {
        // the start time tells a reused pid from the jvmm that made the directory
        return p.pid() + " " + p.info().startInstant().map(Instant::toEpochMilli).orElse(-1L);
    }

    /** Removes helper directories in {@code tmp} left by a jvmm that no longer runs (it was SIGKILLed). */
    static void sweepStale(Path tmp) {
        String me = ownerStamp(ProcessHandle.current());
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(tmp, "jvmm-*")) {
            for (Path d : dirs) {
                Path owner = d.resolve(OWNER_FILE);
                if (!Files.isDirectory(d, LinkOption.NOFOLLOW_LINKS) || !Files.isRegularFile(owner, LinkOption.NOFOLLOW_LINKS)) continue;
                String stamp;
                try {
                    stamp = Files.readString(owner).strip();
                } catch (IOException e) {
                    continue;
                }
                if (stamp.equals(me)) continue;
                String[] f = stamp.split(" ");
                long pid;
                try {
                    pid = Long.parseLong(f[0]);
                } catch (NumberFormatException e) {
                    continue; // not written by us: leave it
                }
                boolean ownerRuns = ProcessHandle.of(pid).filter(ProcessHandle::isAlive).map(HelperProcess::ownerStamp)
                        .map(stamp::equals).orElse(false);
                if (!ownerRuns) {
                    Log.debug(HelperProcess.class, "removing {}, left by jvmm pid {} which no longer runs", d, pid);
                    deleteTree(d);
                }
            }
        } catch (IOException e) {
            Log.debug(HelperProcess.class, "cannot look for stale helper directories in {}: {}", tmp, e.getMessage());
        }
    }

    private static boolean executable(String program) {
        if (program.contains("/")) return Files.isRegularFile(Path.of(program)) && Files.isExecutable(Path.of(program));
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (d.isEmpty()) continue;
            Path p = Path.of(d, program);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) return true;
        }
        return false;
    }

    public String name() {
        return name;
    }

    /** The private directory (mode 0700), removed by {@link #close}. */
    public Path directory() {
        return directory;
    }

    /** The program's process id (setpriv execs it, so this is the program itself). */
    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** The command line, without the setpriv wrapper. */
    public List<String> command() {
        return command;
    }

    private void readOutput() {
        byte[] buf = new byte[4096];
        try (InputStream in = process.getInputStream()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                synchronized (tail) {
                    for (int i = 0; i < n; i++) tail[(int) ((outputBytes + i) % OUTPUT_BYTES)] = buf[i];
                    outputBytes += n;
                }
            }
        } catch (IOException e) {
            // the pipe closes with the process
        }
    }

    /**
     * Leaves lines matching {@code pattern} out of {@link #recentOutput} and the error messages (a
     * helper's chatter that says nothing about why it failed, e.g. passt's "Failed to send N bytes
     * to syslog" where there is no syslog).
     */
    public void ignoreOutput(java.util.regex.Pattern pattern) {
        this.noise = pattern;
    }

    /** The last {@code lines} non-empty lines of what the helper printed (stdout and stderr interleaved). */
    public List<String> recentOutput(int lines) {
        byte[] bytes;
        synchronized (tail) {
            int len = (int) Math.min(outputBytes, OUTPUT_BYTES);
            bytes = new byte[len];
            long start = outputBytes - len;
            for (int i = 0; i < len; i++) bytes[i] = tail[(int) ((start + i) % OUTPUT_BYTES)];
        }
        List<String> all = new ArrayList<>();
        for (String l : new String(bytes, StandardCharsets.UTF_8).split("\n")) {
            java.util.regex.Pattern skip = noise;
            if (!l.isBlank() && (skip == null || !skip.matcher(l).find())) all.add(l.strip());
        }
        return all.subList(Math.max(0, all.size() - lines), all.size());
    }

    private String lastWords() {
        // the output pipe may still hold the last lines of a process that just died
        try {
            reader.join(200);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        List<String> last = recentOutput(3);
        return last.isEmpty() ? "it printed nothing" : "its last output: " + String.join(" | ", last);
    }

    private String exitDescription() {
        int status = process.exitValue();
        // Java reports a process killed by signal N as 128 + N
        return status > 128 ? "was killed by signal " + (status - 128) : "exited with status " + status;
    }

    /**
     * How the helper ended, for the message that reports its connection dropping: "virtiofsd exited
     * with status 1; its last output: ..." or "virtiofsd (pid N) is still running; ...". Waits up to
     * {@code wait} for a helper that is going away (its socket closes a moment before it exits).
     */
    public String describeEnd(Duration wait) {
        try {
            process.waitFor(wait.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return (process.isAlive() ? name + " (pid " + pid() + ") is still running" : name + " " + exitDescription()) + "; " + lastWords();
    }

    /**
     * Waits until the helper has created the UNIX socket {@code socket}, or fails when it exits first
     * (with its own last output) or does not do it within {@code timeout}.
     */
    public void awaitSocket(Path socket, Duration timeout) throws HelperException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (UnixSocket.isSocket(socket)) return;
            if (!process.isAlive()) {
                throw new HelperException(name + " " + exitDescription() + " before creating its socket " + socket + "; " + lastWords());
            }
            if (System.nanoTime() - deadline >= 0) {
                throw new HelperException(name + " did not create its socket " + socket + " within " + timeout.toMillis() + " ms; "
                        + lastWords());
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new HelperException("interrupted while waiting for " + name + "'s socket");
            }
        }
    }

    /**
     * SIGKILL for every live helper and what it forked, and their directories removed, without waiting:
     * for a process about to halt (which runs no shutdown hooks).
     */
    public static void killAll() {
        for (HelperProcess h : List.copyOf(LIVE)) {
            h.process.descendants().forEach(ProcessHandle::destroyForcibly);
            h.process.destroyForcibly();
            deleteTree(h.directory);
        }
    }

    /** SIGTERM, {@link #TERM_GRACE}, SIGKILL (for what it forked too); then the directory is removed. Idempotent. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        LIVE.remove(this);
        List<ProcessHandle> children = process.descendants().toList();
        if (process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(TERM_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                    Log.warn(HelperProcess.class, "{} (pid {}) did not stop within {} ms of SIGTERM; killing it", name, pid(), TERM_GRACE.toMillis());
                    process.destroyForcibly();
                    process.waitFor(TERM_GRACE.toMillis(), TimeUnit.MILLISECONDS);
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        for (ProcessHandle c : children) c.destroyForcibly();
        deleteTree(directory);
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            Log.warn(HelperProcess.class, "cannot remove helper directory {}: {}", dir, e.getMessage());
        }
    }

    @Override
    public String toString() {
        return name + " (pid " + pid() + ")";
    }
}
