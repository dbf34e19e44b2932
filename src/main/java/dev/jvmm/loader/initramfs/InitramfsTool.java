package dev.jvmm.loader.initramfs;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A developer's command line for this package, used by scripts/try-rootfs-init to test the init
 * under QEMU without the rest of jvmm. Writes one initrd file: the (cached) base archive followed
 * by the job archive.
 *
 * <pre>
 * java -cp target/jvmm.jar dev.jvmm.loader.initramfs.InitramfsTool --kernel VMLINUZ --out FILE
 *     [--modules DIR] [--module NAME]... [--qemu-pci] [--cache DIR]
 *     [--root-tag TAG] [--rw | --root-overlay] [--share TAG:GUEST_PATH[:ro]]... [--hostname NAME] [--cwd DIR]
 *     [--user UID:GID] [--home DIR] [--env NAME=VALUE]... [--tty] [--no-ports] [-- COMMAND [ARG...]]
 * </pre>
 * Modules: {@link RootfsInit#MODULES} (or with --qemu-pci {@link RootfsInit#QEMU_PCI_MODULES}) plus
 * each --module, from DIR or the directory {@link KernelRelease#modulesDirectory} finds.
 */
public final class InitramfsTool {
    private InitramfsTool() { }

    public static void main(String[] args) {
        try {
            run(args);
        } catch (InitramfsException | IllegalArgumentException e) {
            System.err.println("initramfs: " + e.getMessage());
            System.exit(1);
        }
    }

    static void run(String[] args) throws InitramfsException {
        Path kernel = null, modulesDir = null, out = null, cache = InitramfsBuilder.defaultCacheDir();
        List<String> modules = new ArrayList<>(), env = new ArrayList<>(), shares = new ArrayList<>(), command = new ArrayList<>();
        boolean qemuPci = false, rw = false, tty = false, ports = true, rootOverlay = false;
        String rootTag = RootfsInit.ROOT_TAG, hostname = "jvmm", cwd = null, user = null, home = "/root";
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--")) {
                command.addAll(List.of(args).subList(i + 1, args.length));
                break;
            }
            switch (a) {
                case "--qemu-pci" -> qemuPci = true;
                case "--rw" -> rw = true;
                case "--root-overlay" -> rootOverlay = true;
                case "--tty" -> tty = true;
                case "--no-ports" -> ports = false;
                default -> {
                    if (i + 1 >= args.length) throw new IllegalArgumentException(a + ": unknown option or missing value");
                    String v = args[++i];
                    switch (a) {
                        case "--kernel" -> kernel = Path.of(v);
                        case "--modules" -> modulesDir = Path.of(v);
                        case "--module" -> modules.add(v);
                        case "--out" -> out = Path.of(v);
                        case "--cache" -> cache = Path.of(v);
                        case "--root-tag" -> rootTag = v;
                        case "--share" -> shares.add(v);
                        case "--hostname" -> hostname = v;
                        case "--cwd" -> cwd = v;
                        case "--user" -> user = v;
                        case "--home" -> home = v;
                        case "--env" -> env.add(v);
                        default -> throw new IllegalArgumentException("unknown option " + a);
                    }
                }
            }
        }
        if (kernel == null || out == null) throw new IllegalArgumentException("--kernel and --out are required");

        List<String> wanted = new ArrayList<>(qemuPci ? RootfsInit.QEMU_PCI_MODULES : RootfsInit.MODULES);
        wanted.addAll(modules);
        Job.Builder job = Job.builder(rootTag).rootWritable(rw).hostname(hostname);
        if (rootOverlay) job.rootOverlay().tmpfs("/tmp").tmpfs("/run");
        else job.writableDefaults(home);
        for (String s : shares) {
            String[] p = s.split(":", -1);
            if (p.length < 2 || p.length > 3 || (p.length == 3 && !p[2].equals("ro"))) {
                throw new IllegalArgumentException("--share wants TAG:GUEST_PATH[:ro], not " + s);
            }
            job.share(p[0], p[1], p.length == 3);
        }
        if (cwd != null) job.cwd(cwd);
        if (user != null) {
            String[] p = user.split(":", 2);
            try {
                job.user(Long.parseLong(p[0]), Long.parseLong(p.length > 1 ? p[1] : p[0]));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--user wants UID:GID, not " + user);
            }
        }
        job.standardEnvironment(home, System.getenv("TERM"));
        for (String e : env) {
            int eq = e.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--env wants NAME=VALUE, not " + e);
            job.env(e.substring(0, eq), e.substring(eq + 1));
        }
        job.args(command).consoleTty(tty);
        if (ports && !tty && !command.isEmpty()) job.ports(RootfsInit.STDIN_PORT, RootfsInit.STDOUT_PORT, RootfsInit.STDERR_PORT);

        Path jobFile = out.resolveSibling(out.getFileName() + ".job");
        List<Path> parts = new InitramfsBuilder(cache).initrdFor(kernel, modulesDir, wanted, job.build(), jobFile);
        // one file for QEMU's -initrd: what jvmm's loader does with several
        try (OutputStream os = Files.newOutputStream(out)) {
            for (Path p : parts) Files.copy(p, os);
        } catch (IOException e) {
            throw new InitramfsException(out + ": cannot write: " + e.getMessage(), e);
        }
        System.out.println("base=" + parts.getFirst());
        System.out.println("job=" + jobFile);
        System.out.println("initrd=" + out);
    }
}
