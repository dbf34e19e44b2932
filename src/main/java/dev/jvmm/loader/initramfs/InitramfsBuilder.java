package dev.jvmm.loader.initramfs;

import dev.jvmm.sys.ShutdownHooks;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Collectors;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import dev.jvmm.loader.CacheFiles;
import org.apache.commons.compress.archivers.cpio.CpioArchiveEntry;
import org.apache.commons.compress.archivers.cpio.CpioArchiveOutputStream;
import org.apache.commons.compress.archivers.cpio.CpioConstants;
import dev.jvmm.log.Log;

/**
 * Writes the initramfs of a {@code --rootfs} run as two newc cpio archives that the kernel unpacks
 * one after the other (it accepts concatenated archives, compressed or not, each starting at a
 * multiple of 4 bytes):
 * <ol>
 *   <li>the <b>base</b>, gzip-compressed and cached per kernel: /init (the {@link RootfsInit}),
 *       /jvmm/modules/NAME.ko (decompressed) with /jvmm/modules/order listing them in load
 *       order, and the directories init needs (/dev with a console node, /proc, /sys, /newroot);</li>
 *   <li>the <b>job</b>, uncompressed and a few hundred bytes: /jvmm/job ({@link Job}).</li>
 * </ol>
 * Give the loader both files in that order (the Linux loader concatenates its initrd files).
 *
 * <p>The cache ({@link #defaultCacheDir()}) holds one base per set of inputs, named by a SHA-256 of
 * the init's length and CRCs and each module's path, size and modification time; a base is written to a
 * temporary file and renamed into place, so concurrent runs never see a partial one, and it is
 * checked (gzip CRC, cpio structure) before use, so a damaged one is rebuilt, not booted.
 */
public final class InitramfsBuilder {

    /** Part of the cache key: bump it when the base's layout changes. */
    static final int LAYOUT_VERSION = 1;
    public static final String INIT = "init", MODULES_DIR = "jvmm/modules", MODULE_ORDER = "jvmm/modules/order",
            JOB = "jvmm/job";
    /** A base is a few MiB; the check refuses to inflate a damaged one beyond this. */
    static final long MAX_BASE_UNCOMPRESSED = 1L << 30;

    private final Path cacheDir;

    /** A builder caching bases in {@code cacheDir} (made on first use). */
    public InitramfsBuilder(Path cacheDir) {
        this.cacheDir = cacheDir;
    }

    /** ${XDG_CACHE_HOME:-~/.cache}/jvmm/initramfs */
    public static Path defaultCacheDir() {
        return CacheFiles.directory("initramfs");
    }

    public Path cacheDir() {
        return cacheDir;
    }

    /**
     * The initrd files of one run, in the order to give the loader: the base for {@code kernel}
     * (the bundled init and {@code modules}, with {@link RootfsInit#OPTIONAL_MODULES} where present,
     * and their dependencies; cached) and the job archive, written to {@code jobFile}.
     *
     * @param modulesDir the kernel's /lib/modules/RELEASE directory, or null for the one
     *                   {@link KernelRelease#modulesDirectory} finds
     * @param modules    the modules to load unless built in (usually {@link RootfsInit#MODULES})
     */
    public List<Path> initrdFor(Path kernel, Path modulesDir, Collection<String> modules, Job job, Path jobFile)
            throws InitramfsException {
        if (modulesDir == null) {
            KernelRelease release = KernelRelease.of(kernel);
            modulesDir = release.modulesDirectory(kernel).orElseThrow(() -> new InitramfsException(kernel
                    + ": no modules directory for release " + release + " (looked at "
                    + release.modulesDirectoryCandidates(kernel).stream().map(Path::toString).collect(Collectors.joining(", "))
                    + "); the guest needs its " + String.join(", ", modules) + " modules unless they are built in"));
        }
        List<KernelModule> resolved = new ModuleResolver(modulesDir).resolve(modules, RootfsInit.OPTIONAL_MODULES);
        Log.debug(InitramfsBuilder.class, "initramfs modules from {}: {}", modulesDir, resolved.stream().map(KernelModule::name).toList());
        Path base = base(RootfsInit.bundled(), resolved);
        writeJobArchive(job, jobFile);
        return List.of(base, jobFile);
    }

    /**
     * The base archive for {@code init} and {@code modules} (in load order): the cached file if there
     * is an intact one, else a new one, cached. If the cache directory cannot be written, the base
     * goes to a temporary file deleted when the JVM exits (with a warning).
     */
    public Path base(byte[] init, List<KernelModule> modules) throws InitramfsException {
        Path target = cacheDir.resolve("base-" + cacheKey(init, modules) + ".cpio.gz");
        if (Files.isRegularFile(target)) {
            String damage = damage(target);
            if (damage == null) {
                Log.debug(InitramfsBuilder.class, "initramfs base {}: cached", target.getFileName());
                return target;
            }
            Log.warn(InitramfsBuilder.class, "initramfs cache file {} is damaged ({}): making it again", target, damage);
        }
        long t0 = System.nanoTime();
        byte[] archive = baseArchive(init, modules);
        Log.debug(InitramfsBuilder.class, "initramfs base {}: made in {} ms ({} modules, {} bytes)", target.getFileName(),
                (System.nanoTime() - t0) / 1_000_000, modules.size(), archive.length);
        try {
            CacheFiles.publish(cacheDir, "base", target, true, archive);
            return target;
        } catch (IOException e) {
            Log.warn(InitramfsBuilder.class, "cannot cache the initramfs in {} ({}): using a temporary file", cacheDir, e.getMessage());
            try {
                Path t = Files.createTempFile("jvmm-initramfs-", ".cpio.gz");
                ShutdownHooks.deleteOnExit(t);
                Files.write(t, archive);
                return t;
            } catch (IOException e2) {
                throw new InitramfsException("cannot write the initramfs to a temporary file: " + e2.getMessage(), e2);
            }
        }
    }

    /** The base archive's bytes: gzip-compressed newc cpio, zero-padded to a multiple of 4 bytes. */
    public static byte[] baseArchive(byte[] init, List<KernelModule> modules) throws InitramfsException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(1 << 20);
        try (GZIPOutputStream gz = new GZIPOutputStream(bytes, 1 << 16); Cpio cpio = new Cpio(gz)) {
            cpio.dir("dev", 0755);
            // the kernel opens /dev/console for init before init can mount devtmpfs
            cpio.charDevice("dev/console", 0600, 5, 1);
            cpio.dir("proc", 0755);
            cpio.dir("sys", 0755);
            cpio.dir("newroot", 0755);
            cpio.dir("jvmm", 0755);
            cpio.dir(MODULES_DIR, 0755);
            StringBuilder order = new StringBuilder();
            for (KernelModule m : modules) {
                cpio.file(MODULES_DIR + "/" + m.initramfsName(), 0644, m.read());
                order.append(m.initramfsName()).append('\n');
            }
            cpio.file(MODULE_ORDER, 0644, order.toString().getBytes(StandardCharsets.US_ASCII));
            cpio.file(INIT, 0755, init);
        } catch (IOException e) {
            throw new InitramfsException("cannot write the initramfs: " + e.getMessage(), e);
        }
        // the kernel looks for the next archive's magic only at a 4-byte boundary, skipping NULs
        int pad = -bytes.size() & 3;
        bytes.write(new byte[pad], 0, pad);
        return bytes.toByteArray();
    }

    /** The per-run archive: uncompressed newc cpio holding /jvmm/job (its size a multiple of 512). */
    public static byte[] jobArchive(Job job) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(4096);
        try (Cpio cpio = new Cpio(bytes)) {
            cpio.dir("jvmm", 0755);
            cpio.file(JOB, 0600, job.encode());
        } catch (IOException e) {
            throw new IllegalStateException("writing to memory failed", e);
        }
        return bytes.toByteArray();
    }

    /** Writes {@link #jobArchive} to {@code file}. */
    public static void writeJobArchive(Job job, Path file) throws InitramfsException {
        try {
            Files.write(file, jobArchive(job));
        } catch (IOException e) {
            throw new InitramfsException(file + ": cannot write the job archive: " + e.getMessage(), e);
        }
    }

    /** The cache key: what the base's bytes depend on, hashed (module contents by path, size and time). */
    static String cacheKey(byte[] init, List<KernelModule> modules) throws InitramfsException {
        MessageDigest md = sha256();
        // the init by length and two CRCs: native code, where a cold JVM's SHA-256 of 700 KB takes 100 ms;
        // this tells builds apart, which is all a cache key must do
        CRC32 crc = new CRC32();
        CRC32C crcc = new CRC32C();
        crc.update(init);
        crcc.update(init);
        md.update(("jvmm initramfs base " + LAYOUT_VERSION + "\ninit " + init.length + " " + crc.getValue() + " "
                + crcc.getValue()).getBytes(StandardCharsets.UTF_8));
        for (KernelModule m : modules) {
            try {
                BasicFileAttributes a = Files.readAttributes(m.file(), BasicFileAttributes.class);
                String line = "\n" + m.initramfsName() + "\0" + m.file().toAbsolutePath() + "\0" + a.size() + "\0"
                        + a.lastModifiedTime().toInstant();
                md.update(line.getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new InitramfsException(m.file() + ": cannot read the module: " + e.getMessage(), e);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /**
     * Why the base archive {@code file} cannot be used (truncated, corrupt, not what this class
     * writes), or null if it is intact: its gzip CRC-32 and length hold, and what they cover is a
     * newc archive through to its trailer. (Cheap: no cpio parsing, which a cache hit would pay for
     * in class loading.)
     */
    static String damage(Path file) {
        try {
            byte[] all = Files.readAllBytes(file);
            if (all.length == 0 || all.length % 4 != 0) return "its size, " + all.length + ", is not a multiple of 4";
            byte[] head = new byte[6], tail = new byte[TAIL];
            long total = 0;
            // GZIPInputStream checks the CRC-32 and length trailer and ignores the zero padding after it
            try (InputStream gz = new GZIPInputStream(new ByteArrayInputStream(all), 1 << 16)) {
                byte[] buf = new byte[1 << 16];
                for (int n; (n = gz.read(buf)) > 0; ) {
                    if (total < head.length) System.arraycopy(buf, 0, head, (int) total, (int) Math.min(n, head.length - total));
                    // keep the last TAIL bytes seen
                    int keep = Math.min(n, TAIL);
                    System.arraycopy(tail, keep, tail, 0, TAIL - keep);
                    System.arraycopy(buf, n - keep, tail, TAIL - keep, keep);
                    if ((total += n) > MAX_BASE_UNCOMPRESSED) return "more than " + (MAX_BASE_UNCOMPRESSED >> 20) + " MiB inflated";
                }
            }
            if (!new String(head, StandardCharsets.US_ASCII).equals("070701")) return "not a newc cpio archive";
            // the trailer entry is the last thing before the block padding (a block is 512 bytes)
            String end = new String(tail, StandardCharsets.ISO_8859_1);
            if (total % CpioConstants.BLOCK_SIZE != 0 || !end.contains("TRAILER!!!")) return "no cpio trailer at its end";
            return null;
        } catch (IOException | RuntimeException e) {
            return String.valueOf(e.getMessage());
        }
    }

    /** The trailer entry (110-byte header, name, padding) and up to a block of padding fit in this. */
    private static final int TAIL = 1024;

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    /** Entries of a newc archive with reproducible metadata: owner root, time 0, inodes 1, 2, ... */
    private static final class Cpio implements Closeable {
        private final CpioArchiveOutputStream out;
        private long inode = 1;

        Cpio(OutputStream os) {
            this.out = new CpioArchiveOutputStream(os, CpioConstants.FORMAT_NEW, CpioConstants.BLOCK_SIZE, "US-ASCII");
        }

        private CpioArchiveEntry entry(String name, long mode, long size, long links) {
            CpioArchiveEntry e = new CpioArchiveEntry(CpioConstants.FORMAT_NEW, name, size);
            e.setMode(mode);
            e.setInode(inode++);
            e.setNumberOfLinks(links);
            e.setUID(0);
            e.setGID(0);
            e.setTime(0);
            return e;
        }

        void dir(String name, int perm) throws IOException {
            out.putArchiveEntry(entry(name, CpioConstants.C_ISDIR | perm, 0, 2));
            out.closeArchiveEntry();
        }

        void file(String name, int perm, byte[] data) throws IOException {
            out.putArchiveEntry(entry(name, CpioConstants.C_ISREG | perm, data.length, 1));
            out.write(data);
            out.closeArchiveEntry();
        }

        void charDevice(String name, int perm, int major, int minor) throws IOException {
            CpioArchiveEntry e = entry(name, CpioConstants.C_ISCHR | perm, 0, 1);
            e.setRemoteDeviceMaj(major);
            e.setRemoteDeviceMin(minor);
            out.putArchiveEntry(e);
            out.closeArchiveEntry();
        }

        @Override
        public void close() throws IOException {
            out.close();   // writes the TRAILER!!! entry, pads to the block size, closes the stream below
        }
    }
}
