package dev.jvmm.host;

import dev.jvmm.log.Log;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Starts the virtiofsd that shares one host directory for {@code --share}, read-only when asked.
 *
 * <p>Read-only: the Rust virtiofsd does it itself ({@code --readonly}). QEMU's C virtiofsd has no such
 * option, so it is run in a private mount namespace ({@code unshare --mount --propagation private},
 * util-linux) in which the directory is bind-mounted onto itself (recursively, with every mount in
 * the copy remounted read-only; virtiofsd's lock directory gets a tmpfs when it is inside the tree)
 * before virtiofsd is exec'ed: every write then fails with EROFS in the host kernel, whatever virtiofsd
 * does. virtiofsd's own bind mount of its source (its sandbox) copies the read-only flag. The private
 * propagation keeps the mount out of the host's namespace, and the namespace goes with the process.
 */
public final class VirtiofsdShare {
    private VirtiofsdShare() { }

    /** How long virtiofsd may take to create its socket (a JVM under emulation, a slow disk). */
    public static final Duration START_TIMEOUT = Duration.ofSeconds(10);

    /**
     * Run by {@code sh -c} inside the new mount namespace, with $1 the directory and the rest virtiofsd's
     * command line: positional parameters, so no path is ever parsed by the shell.
     */
    static final String READ_ONLY_SCRIPT = String.join("\n",
            "set -e",
            // $2: the directory of virtiofsd's socket, which must stay writable even inside the tree
            "dir=$1; keep=$2; shift 2",
            // virtiofsd keeps a lock file here, which must stay writable too (it may be inside the tree)
            "lock=/var/run/virtiofsd",
            "mkdir -p \"$lock\" 2>/dev/null || true",
            "mount --bind \"$keep\" \"$keep\"",
            "mount --bind \"$lock\" \"$lock\" 2>/dev/null || true",
            // a recursive copy of the tree, so mounts below it (a separate /home, /boot) are shared too ...
            "mount --rbind \"$dir\" \"$dir\"",
            // ... and every mount in the copy read-only but those two (mountinfo's 5th field is the mount point)
            "awk -v d=\"$dir\" '{ p = $5; gsub(/\\\\040/, \" \", p); if (p != d && index(p, (d == \"/\" ? \"/\" : d \"/\")) == 1) print p }'"
                    + " /proc/self/mountinfo | while IFS= read -r m; do",
            "  case $m in \"$keep\"|\"$lock\") ;; *) mount -o remount,bind,ro \"$m\" 2>/dev/null || true ;; esac",
            "done",
            "mount -o remount,bind,ro \"$dir\"",
            "[ -w \"$lock\" ] || mount -t tmpfs -o mode=0755 tmpfs \"$lock\"",
            "exec \"$@\"");

    /**
     * The command line that shares {@code dir} over {@code socket}: virtiofsd's own, or for read-only
     * with a virtiofsd that cannot do it, wrapped in the private mount namespace (see the class comment).
     */
    public static List<String> command(Virtiofsd.Binary b, Path dir, boolean readOnly, Path socket) throws HelperProcess.HelperException {
        return command(b, dir, readOnly, socket, rootIsInitramfs());
    }

    static List<String> command(Virtiofsd.Binary b, Path dir, boolean readOnly, Path socket, boolean initramfsRoot)
            throws HelperProcess.HelperException {
        List<String> virtiofsd = new ArrayList<>(Virtiofsd.command(b, dir, readOnly && b.readOnlySupported(), socket));
        if (initramfsRoot || dir.toAbsolutePath().normalize().getParent() == null) {
            // virtiofsd's default sandbox pivot_roots into the shared directory, which the kernel
            // refuses (EINVAL) while / is the initial ramfs: a system running from its initramfs
            // (a VM's /init, like scripts/nested-kvm's) can only use its chroot sandbox. Nor can it
            // pivot_root into / itself (--rootfs /): the bind mount it puts on / is not what "." is
            // after chdir("/") (a path lookup of / stays at the process's root), so pivot_root(".", ".")
            // meets its own root mount (EBUSY); chroot("/") costs it nothing there
            virtiofsd.addAll(b.flavor() == Virtiofsd.Flavor.QEMU_C ? List.of("-o", "sandbox=chroot") : List.of("--sandbox", "chroot"));
        }
        if (!readOnly || b.readOnlySupported()) return virtiofsd;
        Path unshare = onPath("unshare");
        if (unshare == null) {
            throw new HelperProcess.HelperException("cannot share " + dir + " read-only with " + b.path() + " (" + b.version()
                    + "): it has no read-only option, and unshare (util-linux), which jvmm uses instead, is not on PATH");
        }
        List<String> cmd = new ArrayList<>(List.of(unshare.toString(), "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", READ_ONLY_SCRIPT, "sh", dir.toAbsolutePath().toString(),
                socket.toAbsolutePath().getParent().toString()));
        cmd.addAll(virtiofsd);
        return cmd;
    }

    /** Whether this process's / is the initial ramfs ("rootfs" in /proc/self/mountinfo). */
    static boolean rootIsInitramfs() {
        try {
            return "rootfs".equals(rootFsType(Files.readString(Path.of("/proc/self/mountinfo"))));
        } catch (IOException e) {
            return false; // cannot tell: virtiofsd's default sandbox, which works almost everywhere
        }
    }

    /**
     * The file system type mounted on / according to {@code mountinfo} (proc(5): "ID PARENT MAJ:MIN ROOT
     * MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS"): the last mount on / is the one in use.
     */
    static String rootFsType(String mountinfo) {
        String type = null;
        for (String line : mountinfo.split("\n")) {
            String[] f = line.trim().split(" ");
            int dash = Arrays.asList(f).indexOf("-");
            if (f.length < 5 || dash < 0 || dash + 1 >= f.length || !f[4].equals("/")) continue;
            type = f[dash + 1];
        }
        return type;
    }

    /**
     * Starts virtiofsd sharing {@code dir} and waits up to {@code timeout} for its socket
     * ({@link Virtiofsd#socket}).
     * @throws HelperProcess.HelperException one line: not a directory, no way to share it read-only,
     *         or virtiofsd's own last words when it did not come up
     */
    public static HelperProcess start(Virtiofsd.Binary b, Path dir, boolean readOnly, Duration timeout) throws HelperProcess.HelperException {
        if (!Files.isDirectory(dir)) throw new HelperProcess.HelperException("cannot share " + dir + ": not a directory");
        Path real;
        try {
            real = dir.toRealPath(); // the bind mount and virtiofsd must name the same directory
        } catch (IOException e) {
            throw new HelperProcess.HelperException("cannot share " + dir + ": " + e.getMessage(), e);
        }
        long t0 = System.nanoTime();
        boolean initramfsRoot = rootIsInitramfs();
        command(b, real, readOnly, Path.of(Virtiofsd.SOCKET_NAME), initramfsRoot); // refuse before starting anything
        HelperProcess h = HelperProcess.start("virtiofsd", d -> {
            try {
                return command(b, real, readOnly, d.resolve(Virtiofsd.SOCKET_NAME), initramfsRoot);
            } catch (HelperProcess.HelperException e) {
                throw new UncheckedIOException(e); // checked just above: cannot happen
            }
        });
        try {
            h.awaitSocket(Virtiofsd.socket(h), timeout);
            Log.debug(VirtiofsdShare.class, "virtiofsd for {}{} ready in {} ms", real, readOnly ? " (read-only)" : "",
                    (System.nanoTime() - t0) / 1_000_000);
            return h;
        } catch (HelperProcess.HelperException | RuntimeException e) {
            h.close();
            throw e;
        }
    }

    private static Path onPath(String program) {
        for (String d : (System.getenv().getOrDefault("PATH", "") + File.pathSeparator + "/usr/bin:/bin").split(File.pathSeparator)) {
            if (d.isEmpty()) continue;
            Path p = Path.of(d, program);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) return p;
        }
        return null;
    }
}
