package dev.jvmm.vmm;

import dev.jvmm.loader.LoadException;
import dev.jvmm.loader.initramfs.InitramfsBuilder;
import dev.jvmm.loader.initramfs.Job;
import dev.jvmm.loader.initramfs.RootfsInit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code jvmm run --rootfs DIR KERNEL -- COMMAND [ARG...]}: what it adds to a run. The guest's root
 * file system is host directory DIR, shared by virtio-fs (read-only, with writable tmpfs overlays on
 * /tmp, /run, /etc, /var and the home directory; or read-write); jvmm makes the initramfs itself
 * (its own init, guests/rootfs-init.c, and the kernel modules it needs, see {@link RootfsInit}); the
 * init runs COMMAND with its stdin, stdout and stderr on three virtio-console ports and reports its
 * exit status on an I/O port, which becomes jvmm's. Without COMMAND, an interactive shell on the
 * console.
 *
 * @param rootfs     the host directory that becomes the guest's /
 * @param writable   mount it read-write instead of read-only with overlays
 * @param modules    the kernel's /lib/modules/RELEASE (--modules), or null: found from the kernel's release
 * @param command    argv, or empty for an interactive shell
 * @param asCaller   run as the calling user's uid/gid (--user) instead of root
 * @param shares     the --share directories: each is mounted at its host path in the guest
 */
public record RootfsRun(Path rootfs, boolean writable, Path modules, List<String> command, boolean asCaller,
                        List<VirtioSpec.Share> shares) {
    public RootfsRun {
        command = List.copyOf(command);
        shares = List.copyOf(shares);
    }

    /** "DIR[,rw]" */
    public static RootfsRun parse(String spec, Path modules, List<String> command, boolean asCaller, List<VirtioSpec.Share> shares) {
        String[] parts = spec.split(",", -1);
        if (parts[0].isEmpty()) throw new IllegalArgumentException("--rootfs '" + spec + "': the directory is missing");
        boolean rw = false;
        for (int i = 1; i < parts.length; i++) {
            if (parts[i].equals("rw")) rw = true;
            else if (parts[i].equals("ro")) rw = false;
            else throw new IllegalArgumentException("--rootfs '" + spec + "': unknown option '" + parts[i] + "' (use DIR or DIR,rw)");
        }
        Path dir = Path.of(parts[0]).toAbsolutePath().normalize();
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException("--rootfs " + dir + " is not a directory");
        return new RootfsRun(dir, rw, modules, command, asCaller, shares);
    }

    /** What the run gets: the root's device, the initrd files (base, then job), words for the kernel command line. */
    public record Plan(VirtioSpec.Share root, List<Path> initrds, String cmdline, Path jobFile) implements AutoCloseable {
        /** Removes the per-run job file. */
        @Override
        public void close() {
            try {
                Files.deleteIfExists(jobFile);
            } catch (IOException e) {
                // a temporary file: the next cleaner of /tmp takes it
            }
        }
    }

    /** The kernel command-line words a rootfs run needs: its console, and no hang when the init dies. */
    static final String CMDLINE = "console=ttyS0 panic=-1 quiet";

    /**
     * Writes the job and makes (or finds in the cache) the initramfs for {@code kernel}.
     * @param hostCwd the caller's working directory: the command's too when it is inside the root or a share
     * @throws LoadException when the kernel's release, its modules or the bundled init cannot be had
     */
    public Plan plan(Path kernel, Path hostCwd, String term, Path virtiofsd, List<VirtioSpec> devices) throws LoadException {
        Job job = job(hostCwd, term, devices);
        List<String> wanted = new ArrayList<>(RootfsInit.MODULES);
        if (devices.stream().anyMatch(d -> d instanceof VirtioSpec.Net || d instanceof VirtioSpec.UserNet)) {
            wanted.addAll(RootfsInit.NET_MODULES);
        }
        Path jobFile;
        try {
            jobFile = Files.createTempFile("jvmm-job-", ".cpio");
        } catch (IOException e) {
            throw new LoadException("cannot create the job file for --rootfs: " + e.getMessage());
        }
        try {
            List<Path> initrds = new InitramfsBuilder(InitramfsBuilder.defaultCacheDir())
                    .initrdFor(kernel, modules, wanted, job, jobFile);
            VirtioSpec.Share root = new VirtioSpec.Share(rootfs, RootfsInit.ROOT_TAG, !writable, null, virtiofsd);
            return new Plan(root, initrds, CMDLINE, jobFile);
        } catch (LoadException | RuntimeException e) {
            try {
                Files.deleteIfExists(jobFile);
            } catch (IOException ignored) {
                // as above
            }
            throw e;
        }
    }

    /**
     * The init's job: root, mounts, user, directory, command and environment, and DHCP on each
     * {@code --net user} interface (passt serves DHCP; a tap's network is the administrator's to set up).
     */
    Job job(Path hostCwd, String term, List<VirtioSpec> devices) {
        Job.Builder b = Job.builder(RootfsInit.ROOT_TAG).rootWritable(writable);
        String home = asCaller ? System.getProperty("user.home", "/") : "/root";
        b.writableDefaults(home);
        for (VirtioSpec.Share s : shares) {
            if (s.directory() != null) b.share(s.tag(), s.directory().toString(), s.readOnly());
        }
        b.hostname("jvmm");
        for (VirtioSpec d : devices) {
            if (d instanceof VirtioSpec.UserNet u) b.dhcp(u.mac());
        }
        String cwd = guestPath(hostCwd);
        if (cwd != null) b.cwd(cwd);
        if (asCaller) b.user(callerId("uid"), callerId("gid"));
        b.standardEnvironment(home, command.isEmpty() ? term : null);
        if (!command.isEmpty()) {
            b.args(command);
            b.ports(RootfsInit.STDIN_PORT, RootfsInit.STDOUT_PORT, RootfsInit.STDERR_PORT);
        }
        return b.build();
    }

    /** Where host directory {@code dir} is in the guest: under the root, or in a share (mounted at its host path). */
    String guestPath(Path dir) {
        if (dir == null) return null;
        Path d = dir.toAbsolutePath().normalize();
        for (VirtioSpec.Share s : shares) {
            if (s.directory() != null && d.startsWith(s.directory())) return d.toString();
        }
        if (!d.startsWith(rootfs)) return null;
        return "/" + rootfs.relativize(d).toString().replace('\\', '/');
    }

    private static long callerId(String which) {
        try {
            return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:" + which)).longValue();
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException("--user: cannot tell this process's " + which + ": " + e.getMessage());
        }
    }

    /** Messages for what the guest side ends with (the init's own statuses, container-runtime style). */
    static String describe(int status) {
        return switch (status) {
            case RootfsInit.EXIT_SETUP_FAILED -> "the guest could not set up the command (status 125: see the console, --serial-log or -v)";
            case RootfsInit.EXIT_CANNOT_EXECUTE -> "the command cannot be executed (status 126)";
            case RootfsInit.EXIT_NOT_FOUND -> "the command was not found (status 127)";
            default -> "the command exited with status " + status;
        };
    }
}
