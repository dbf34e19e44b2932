package dev.jvmm.host;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Finding virtiofsd, telling which one it is, and starting it as a {@link HelperProcess} that shares one
 * directory over a vhost-user socket in the helper's private directory.
 *
 * <p>Two programs go by that name, with different command lines:
 * <ul>
 * <li>QEMU's C virtiofsd (QEMU up to 7.2; Debian 12 ships it as /usr/lib/qemu/virtiofsd in
 *     qemu-system-common): {@code --socket-path=PATH -o source=DIR [-o cache=auto|always|none]
 *     [-o sandbox=namespace|chroot]}. It has no read-only option (checked against 7.2's --help).
 * <li>The Rust virtiofsd (QEMU 8 and later use it; /usr/libexec/virtiofsd on Fedora, package virtiofsd):
 *     {@code --socket-path PATH --shared-dir DIR [--cache ...] [--sandbox ...]}, and {@code --readonly}
 *     in newer releases; whether it is there is read from --help.
 * </ul>
 * Both must run as root (they sandbox themselves with namespaces or chroot).
 */
public final class Virtiofsd {
    private Virtiofsd() { }

    /** Where {@link #find} looks after PATH. */
    public static final List<Path> KNOWN_LOCATIONS = List.of(Path.of("/usr/libexec/virtiofsd"), Path.of("/usr/lib/qemu/virtiofsd"));
    /** The socket's name inside the helper's private directory (short: sun_path holds 107 bytes). */
    public static final String SOCKET_NAME = "virtiofsd.sock";

    public enum Flavor {
        /** QEMU's C virtiofsd ({@code -o source=DIR}). */
        QEMU_C,
        /** The Rust virtiofsd ({@code --shared-dir DIR}). */
        RUST
    }

    /** An identified virtiofsd: what it is, its first version line, and whether it can share read-only. */
    public record Binary(Path path, Flavor flavor, String version, boolean readOnlySupported) { }

    /** The first executable virtiofsd on PATH, then in {@link #KNOWN_LOCATIONS}, identified. */
    public static Binary find() throws HelperProcess.HelperException {
        List<Path> candidates = new ArrayList<>();
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (!dir.isEmpty()) candidates.add(Path.of(dir, "virtiofsd"));
        }
        candidates.addAll(KNOWN_LOCATIONS);
        for (Path p : candidates) {
            if (Files.isRegularFile(p) && Files.isExecutable(p)) return identify(p);
        }
        throw new HelperProcess.HelperException("virtiofsd not found on PATH, in /usr/libexec or in /usr/lib/qemu: install it"
                + " (Debian 12: apt-get install qemu-system-common, which has /usr/lib/qemu/virtiofsd; later releases: apt-get install virtiofsd)");
    }

    /** Runs {@code path --help} and {@code --version} to tell which virtiofsd it is. */
    public static Binary identify(Path path) throws HelperProcess.HelperException {
        String help = run(path, "--help");
        String versionOut = run(path, "--version");
        String version = versionOut.lines().map(String::strip).filter(l -> !l.isEmpty()).findFirst().orElse("unknown version");
        if (help.contains("--shared-dir")) return new Binary(path, Flavor.RUST, version, help.contains("--readonly"));
        if (help.contains("source=")) return new Binary(path, Flavor.QEMU_C, version, false);
        String first = help.lines().map(String::strip).filter(l -> !l.isEmpty()).findFirst().orElse("nothing");
        throw new HelperProcess.HelperException(path + " does not look like virtiofsd: its --help mentions neither --shared-dir nor"
                + " -o source= (it printed: " + first + ")");
    }

    private static String run(Path path, String option) throws HelperProcess.HelperException {
        try {
            Process p = new ProcessBuilder(path.toString(), option).redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
            // --help output is a few KiB; more than this is not a virtiofsd
            byte[] out = p.getInputStream().readNBytes(64 * 1024);
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new HelperProcess.HelperException(path + " " + option + " did not finish within 10 s");
            }
            return new String(out, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new HelperProcess.HelperException("cannot run " + path + " " + option + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HelperProcess.HelperException("interrupted while running " + path + " " + option);
        }
    }

    /**
     * The command line that shares {@code sharedDir} over {@code socket}.
     * @throws HelperProcess.HelperException when {@code readOnly} is asked of a virtiofsd that cannot do it
     *         (rather than sharing the directory writable)
     */
    public static List<String> command(Binary b, Path sharedDir, boolean readOnly, Path socket) throws HelperProcess.HelperException {
        check(b, sharedDir, readOnly);
        return build(b, sharedDir, readOnly, socket);
    }

    private static void check(Binary b, Path sharedDir, boolean readOnly) throws HelperProcess.HelperException {
        if (readOnly && !b.readOnlySupported()) {
            throw new HelperProcess.HelperException(b.path() + " (" + b.version() + ") cannot share a directory read-only"
                    + (b.flavor() == Flavor.QEMU_C ? ": QEMU's C virtiofsd has no such option; a Rust virtiofsd with --readonly can"
                    : ": its --help lists no --readonly; a newer Rust virtiofsd has it"));
        }
        // the C one reads "-o source=" up to the next comma
        if (b.flavor() == Flavor.QEMU_C && sharedDir.toAbsolutePath().toString().contains(",")) {
            throw new HelperProcess.HelperException("QEMU's virtiofsd cannot share " + sharedDir.toAbsolutePath() + ": the path contains a comma");
        }
    }

    private static List<String> build(Binary b, Path sharedDir, boolean readOnly, Path socket) {
        String dir = sharedDir.toAbsolutePath().toString();
        List<String> cmd = new ArrayList<>();
        cmd.add(b.path().toString());
        switch (b.flavor()) {
            case QEMU_C -> {
                cmd.add("--socket-path=" + socket);
                cmd.addAll(List.of("-o", "source=" + dir));
            }
            case RUST -> {
                cmd.addAll(List.of("--socket-path", socket.toString(), "--shared-dir", dir));
                if (readOnly) cmd.add("--readonly");
            }
        }
        return cmd;
    }

    /**
     * Starts {@code b} sharing {@code sharedDir} and waits up to {@code timeout} for its socket
     * ({@link #socket(HelperProcess)}). A virtiofsd serves one connection and exits when it closes.
     */
    public static HelperProcess start(Binary b, Path sharedDir, boolean readOnly, Duration timeout) throws HelperProcess.HelperException {
        if (!Files.isDirectory(sharedDir)) throw new HelperProcess.HelperException("cannot share " + sharedDir + ": not a directory");
        check(b, sharedDir, readOnly); // refuse before starting anything
        HelperProcess h = HelperProcess.start("virtiofsd", dir -> build(b, sharedDir, readOnly, dir.resolve(SOCKET_NAME)));
        try {
            h.awaitSocket(socket(h), timeout);
            return h;
        } catch (HelperProcess.HelperException | RuntimeException e) {
            h.close();
            throw e;
        }
    }

    /** Where a virtiofsd started by {@link #start} listens. */
    public static Path socket(HelperProcess h) {
        return h.directory().resolve(SOCKET_NAME);
    }
}
