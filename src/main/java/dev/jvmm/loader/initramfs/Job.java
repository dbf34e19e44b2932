package dev.jvmm.loader.initramfs;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * What the guest's init is to do in one {@code --rootfs} run: the root and other mounts, who and
 * where the command runs, its argv and environment, and where its stdio goes. {@link #encode()}
 * writes the job file {@code /jvmm/job} in the format {@code guests/rootfs-job.h} defines (and
 * {@code guests/rootfs-job.c} reads): records of a NUL-terminated key, a 4-byte little-endian length
 * and that many bytes, so argv and environment entries may hold any bytes but NUL.
 *
 * <p>Made with {@link #builder(String)}; every value is checked when added, so a built Job always
 * encodes.
 */
public final class Job {
    /** The init refuses larger job files (JOB_MAX_SIZE in rootfs-job.h). */
    public static final int MAX_SIZE = 4 << 20;
    public static final String VERSION = "1";

    /** A mount the init makes in the new root after the root itself, in order. */
    public sealed interface Mount {
        String path();
    }

    /** An empty tmpfs at {@code path}, with the mode and owner of the directory it covers. */
    public record Tmpfs(String path) implements Mount { }

    /** The directory at {@code path} made writable by an overlay with a tmpfs upper layer ("/": the whole root). */
    public record Overlay(String path) implements Mount { }

    /**
     * Another virtio-fs device (by tag) mounted at {@code path}. A mount point missing in a read-only
     * directory is made in an overlay the init puts on its deepest existing ancestor (not "/": for a
     * new top-level directory, use {@link Builder#rootOverlay()} or create it in the root directory).
     */
    public record Share(String tag, String path, boolean readOnly) implements Mount { }

    private final byte[] encoded;
    private final String rootTag;
    private final List<byte[]> argv;
    private final List<Mount> mounts;

    private Job(byte[] encoded, String rootTag, List<byte[]> argv, List<Mount> mounts) {
        this.encoded = encoded;
        this.rootTag = rootTag;
        this.argv = argv;
        this.mounts = mounts;
    }

    /** A job whose root file system is the virtio-fs device tagged {@code rootTag}. */
    public static Builder builder(String rootTag) {
        return new Builder(rootTag);
    }

    /** The job file's bytes. */
    public byte[] encode() {
        return encoded.clone();
    }

    public String rootTag() {
        return rootTag;
    }

    /** The command's argv (copies); empty for an interactive shell. */
    public List<byte[]> argv() {
        return argv.stream().map(byte[]::clone).toList();
    }

    public List<Mount> mounts() {
        return mounts;
    }

    public static final class Builder {
        private final String rootTag;
        private boolean rootWritable;
        private final List<Mount> mounts = new ArrayList<>();
        private String hostname, cwd;
        private long uid = -1, gid = -1;
        private final List<byte[]> argv = new ArrayList<>();
        private final List<byte[]> env = new ArrayList<>();
        private String stdinPort, stdoutPort, stderrPort;
        private boolean consoleTty;
        private final List<String> dhcp = new ArrayList<>();

        private Builder(String rootTag) {
            this.rootTag = text("root tag", rootTag);
            if (rootTag.isEmpty()) throw new IllegalArgumentException("empty root tag");
        }

        /** Mount the root read-write (default: read-only). */
        public Builder rootWritable(boolean writable) {
            this.rootWritable = writable;
            return this;
        }

        /**
         * Make the whole root writable, an overlay over the (read-only) virtio-fs root whose writes
         * are discarded: anything may be written, and share mount points need not exist in it.
         */
        public Builder rootOverlay() {
            mounts.addFirst(new Overlay("/"));
            return this;
        }

        public Builder tmpfs(String path) {
            mounts.add(new Tmpfs(path("tmpfs path", path)));
            return this;
        }

        public Builder overlay(String path) {
            mounts.add(new Overlay(path("overlay path", path)));
            return this;
        }

        public Builder share(String tag, String path, boolean readOnly) {
            if (text("share tag", tag).isEmpty()) throw new IllegalArgumentException("empty share tag");
            mounts.add(new Share(tag, path("share path", path), readOnly));
            return this;
        }

        /**
         * The usual writable places of a read-only root: tmpfs on /tmp and /run, overlays on /etc,
         * /var and {@code home} (skipped if null or "/"). With a writable root, only the tmpfs mounts.
         */
        public Builder writableDefaults(String home) {
            tmpfs("/tmp");
            tmpfs("/run");
            if (!rootWritable) {
                overlay("/etc");
                overlay("/var");
                if (home != null && !List.of("/", "/tmp", "/run", "/etc", "/var").contains(home)) overlay(home);
            }
            return this;
        }

        /** PATH (the usual system one), HOME and TERM ("dumb" when term is null or empty). */
        public Builder standardEnvironment(String home, String term) {
            env("PATH", RootfsInit.DEFAULT_PATH);
            if (home != null) env("HOME", home);
            env("TERM", term == null || term.isEmpty() ? "dumb" : term);
            return this;
        }

        public Builder hostname(String hostname) {
            this.hostname = text("hostname", hostname);
            if (hostname.isEmpty() || hostname.length() > 64) throw new IllegalArgumentException("hostname must be 1-64 characters");
            return this;
        }

        public Builder cwd(String cwd) {
            this.cwd = path("working directory", cwd);
            return this;
        }

        public Builder user(long uid, long gid) {
            if (uid < 0 || uid > 4294967294L || gid < 0 || gid > 4294967294L) {
                throw new IllegalArgumentException("uid and gid must be 0-4294967294, not " + uid + ":" + gid);
            }
            this.uid = uid;
            this.gid = gid;
            return this;
        }

        /** One argv element as bytes: anything but NUL. */
        public Builder arg(byte[] arg) {
            argv.add(noNul("argument", arg.clone()));
            return this;
        }

        /** One argv element, in UTF-8. */
        public Builder arg(String arg) {
            return arg(arg.getBytes(StandardCharsets.UTF_8));
        }

        public Builder args(List<String> args) {
            for (String a : args) arg(a);
            return this;
        }

        /** One environment entry, NAME=VALUE as bytes (NAME non-empty, no NUL anywhere). */
        public Builder env(byte[] entry) {
            byte[] e = noNul("environment entry", entry.clone());
            int eq = 0;
            while (eq < e.length && e[eq] != '=') eq++;
            if (eq == 0 || eq == e.length) throw new IllegalArgumentException("environment entry without NAME=");
            env.add(e);
            return this;
        }

        public Builder env(String name, String value) {
            if (name.isEmpty() || name.indexOf('=') >= 0) throw new IllegalArgumentException("bad environment name '" + name + "'");
            return env((name + "=" + value).getBytes(StandardCharsets.UTF_8));
        }

        /** Connect the command's stdin, stdout and stderr to the virtio-serial ports with these names (null: the init's default). */
        public Builder ports(String stdin, String stdout, String stderr) {
            this.stdinPort = port(stdin);
            this.stdoutPort = port(stdout);
            this.stderrPort = port(stderr);
            return this;
        }

        /** Run the command on the console as its controlling terminal (implied without a command). */
        public Builder consoleTty(boolean tty) {
            this.consoleTty = tty;
            return this;
        }

        /** Configure the network interface with this MAC address by DHCP before the command starts. */
        public Builder dhcp(byte[] mac) {
            if (mac.length != 6) throw new IllegalArgumentException("a MAC address has 6 bytes, not " + mac.length);
            dhcp.add(java.util.HexFormat.ofDelimiter(":").formatHex(mac));
            return this;
        }

        public Job build() {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            record(out, "jvmm-job", VERSION);
            record(out, "root", rootTag);
            if (rootWritable) record(out, "root-rw", "1");
            for (Mount m : mounts) {
                switch (m) {
                    case Tmpfs t -> record(out, "tmpfs", t.path());
                    case Overlay o -> record(out, "overlay", o.path());
                    case Share s -> record(out, "share", s.tag() + "\0" + s.path() + "\0" + (s.readOnly() ? "ro" : "rw"));
                }
            }
            if (hostname != null) record(out, "hostname", hostname);
            if (cwd != null) record(out, "cwd", cwd);
            if (uid >= 0) {
                record(out, "uid", Long.toString(uid));
                record(out, "gid", Long.toString(gid));
            }
            for (byte[] a : argv) record(out, "arg", a);
            for (byte[] e : env) record(out, "env", e);
            if (stdinPort != null) record(out, "stdin", stdinPort);
            if (stdoutPort != null) record(out, "stdout", stdoutPort);
            if (stderrPort != null) record(out, "stderr", stderrPort);
            if (consoleTty) record(out, "console-tty", "1");
            for (String mac : dhcp) record(out, "dhcp", mac);
            if (out.size() > MAX_SIZE) {
                throw new IllegalArgumentException("the job (argv and environment) takes " + out.size()
                        + " bytes, more than the " + (MAX_SIZE >> 20) + " MiB the guest's init reads");
            }
            return new Job(out.toByteArray(), rootTag, List.copyOf(argv), List.copyOf(mounts));
        }

        private static void record(ByteArrayOutputStream out, String key, String value) {
            record(out, key, value.getBytes(StandardCharsets.UTF_8));
        }

        private static void record(ByteArrayOutputStream out, String key, byte[] value) {
            out.writeBytes(key.getBytes(StandardCharsets.US_ASCII));
            out.write(0);
            int n = value.length;
            out.write(n);
            out.write(n >>> 8);
            out.write(n >>> 16);
            out.write(n >>> 24);
            out.writeBytes(value);
        }

        private static String text(String what, String s) {
            if (s == null) throw new IllegalArgumentException("no " + what);
            if (s.indexOf('\0') >= 0) throw new IllegalArgumentException(what + " contains a NUL character");
            return s;
        }

        private static String path(String what, String s) {
            text(what, s);
            if (!s.startsWith("/")) throw new IllegalArgumentException(what + " '" + s + "' is not an absolute path");
            if (s.getBytes(StandardCharsets.UTF_8).length >= 4096) throw new IllegalArgumentException(what + " is too long");
            return s;
        }

        private static String port(String name) {
            if (name == null) return null;
            text("port name", name);
            if (name.isEmpty() || name.indexOf('/') >= 0) throw new IllegalArgumentException("bad port name '" + name + "'");
            return name;
        }

        private static byte[] noNul(String what, byte[] b) {
            for (byte x : b) {
                if (x == 0) throw new IllegalArgumentException(what + " contains a NUL byte (a C string cannot)");
            }
            return b;
        }
    }
}
