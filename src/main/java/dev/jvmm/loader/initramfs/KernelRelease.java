package dev.jvmm.loader.initramfs;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A kernel's release string, what {@code uname -r} prints inside it ("6.1.0-28-cloud-amd64"), and
 * so the name of its {@code /lib/modules} directory. Read from a bzImage's setup header
 * ({@code kernel_version}, Documentation/arch/x86/boot.rst) or from the "Linux version" banner
 * in an ELF vmlinux.
 *
 * @param release 1-64 printable ASCII characters, no space or '/', not "." or ".."
 */
public record KernelRelease(String release) {
    /** Linux's __NEW_UTS_LEN: the longest release the kernel itself can report. */
    public static final int MAX_LENGTH = 64;
    static final int HDR_BOOT_FLAG = 0x1FE, HDR_MAGIC = 0x202, HDR_VERSION = 0x206, HDR_KERNEL_VERSION = 0x20E;
    /** kernel_version is relative to the start of the setup header's jump (0x200). */
    static final int KERNEL_VERSION_BASE = 0x200;
    /** The setup code is at most 255 sectors after the boot sector: kernel_version points inside it. */
    static final int SETUP_MAX = 256 * 512;
    /** How much of an ELF vmlinux is searched for its banner (it sits in .rodata, well inside this). */
    static final long ELF_SCAN_LIMIT = 256L << 20;
    static final byte[] BANNER = "Linux version ".getBytes(StandardCharsets.US_ASCII);

    public KernelRelease {
        String why = problem(release);
        if (why != null) throw new IllegalArgumentException("bad kernel release '" + release + "': " + why);
    }

    /** Why {@code s} cannot be a release (a directory name under /lib/modules), or null if it can. */
    static String problem(String s) {
        if (s == null || s.isEmpty()) return "empty";
        if (s.length() > MAX_LENGTH) return "longer than " + MAX_LENGTH + " characters";
        if (s.equals(".") || s.equals("..")) return "not a directory name";
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c <= ' ' || c >= 0x7f || c == '/') return "character " + (int) c + " is not allowed";
        }
        return null;
    }

    /** The release of the kernel image {@code kernel}: a bzImage or an ELF vmlinux. */
    public static KernelRelease of(Path kernel) throws InitramfsException {
        byte[] head;
        try (InputStream in = Files.newInputStream(kernel)) {
            head = in.readNBytes(SETUP_MAX + 512);
        } catch (IOException e) {
            throw new InitramfsException(kernel + ": cannot read the kernel: " + e.getMessage(), e);
        }
        if (isBzImage(head)) return fromBzImage(kernel, head);
        if (head.length >= 4 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F') {
            try (InputStream in = Files.newInputStream(kernel)) {
                return fromVmlinux(kernel, in);
            } catch (IOException e) {
                throw new InitramfsException(kernel + ": cannot read the kernel: " + e.getMessage(), e);
            }
        }
        throw new InitramfsException(kernel + ": neither a bzImage nor an ELF vmlinux: cannot tell its release");
    }

    static boolean isBzImage(byte[] b) {
        return b.length >= HDR_MAGIC + 4 && u16(b, HDR_BOOT_FLAG) == 0xAA55
                && b[HDR_MAGIC] == 'H' && b[HDR_MAGIC + 1] == 'd' && b[HDR_MAGIC + 2] == 'r' && b[HDR_MAGIC + 3] == 'S';
    }

    /** From the start of a bzImage (at least its setup code): the kernel_version string's first word. */
    public static KernelRelease fromBzImage(Path file, byte[] head) throws InitramfsException {
        if (!isBzImage(head)) throw new InitramfsException(file + ": not a bzImage (no HdrS setup header)");
        if (head.length < HDR_KERNEL_VERSION + 2 || u16(head, HDR_VERSION) < 0x0200) {
            throw new InitramfsException(file + ": bzImage boot protocol older than 2.00 has no kernel_version");
        }
        int pointer = u16(head, HDR_KERNEL_VERSION);
        if (pointer == 0) throw new InitramfsException(file + ": the bzImage's kernel_version field is 0 (no version string)");
        int at = KERNEL_VERSION_BASE + pointer;
        if (at >= head.length) {
            throw new InitramfsException(file + ": kernel_version points at offset " + at + ", past the setup code ("
                    + head.length + " bytes read)");
        }
        return parse(file, "bzImage kernel_version", head, at, Math.min(head.length, at + 256));
    }

    /** From an ELF vmlinux: the first "Linux version N..." banner in its first 256 MiB. */
    public static KernelRelease fromVmlinux(Path file, InputStream in) throws IOException, InitramfsException {
        // a window of 1 MiB plus the tail of the previous one, so that a banner across the seam is seen
        final int chunk = 1 << 20, carry = BANNER.length + MAX_LENGTH + 1;
        byte[] buf = new byte[chunk + carry];
        int kept = 0;
        long scanned = 0;
        while (scanned < ELF_SCAN_LIMIT) {
            int n = in.readNBytes(buf, kept, chunk);
            int end = kept + n;
            for (int i = 0; i + BANNER.length < end; i++) {
                if (buf[i] == 'L' && java.util.Arrays.equals(buf, i, i + BANNER.length, BANNER, 0, BANNER.length)) {
                    int v = i + BANNER.length;
                    if (buf[v] < '0' || buf[v] > '9') continue;   // "Linux version %s" in a format string
                    if (end - v < MAX_LENGTH + 1 && n == chunk) break;   // may be cut: read on, keep it
                    return parse(file, "vmlinux banner", buf, v, end);
                }
            }
            if (n < chunk) break;
            scanned += n;
            System.arraycopy(buf, end - carry, buf, 0, carry);
            kept = carry;
        }
        throw new InitramfsException(file + ": no \"Linux version\" banner in the ELF vmlinux's first "
                + (ELF_SCAN_LIMIT >> 20) + " MiB: cannot tell its release");
    }

    /** The release word at b[from..): up to a space, NUL or the end, validated. */
    private static KernelRelease parse(Path file, String where, byte[] b, int from, int end) throws InitramfsException {
        int i = from;
        while (i < end && b[i] != 0 && b[i] != ' ') i++;
        String s = new String(b, from, i - from, StandardCharsets.ISO_8859_1);
        String why = problem(s);
        if (why != null) throw new InitramfsException(file + ": bad release in the " + where + " ('" + printable(s) + "'): " + why);
        return new KernelRelease(s);
    }

    /**
     * Where this kernel's modules are: {@code lib/modules/RELEASE} beside the kernel's directory (the
     * layout of an unpacked kernel package, {@code boot/vmlinuz-RELEASE}), inside it, or the host's
     * {@code /lib/modules/RELEASE}; the first that is a directory.
     */
    public Optional<Path> modulesDirectory(Path kernel) {
        return modulesDirectoryCandidates(kernel).stream().filter(Files::isDirectory).findFirst();
    }

    /** The directories {@link #modulesDirectory} looks at, in order (for error messages). */
    public List<Path> modulesDirectoryCandidates(Path kernel) {
        List<Path> candidates = new ArrayList<>();
        Path dir = kernel.toAbsolutePath().getParent();
        if (dir != null) {
            if (dir.getParent() != null) candidates.add(dir.getParent().resolve("lib/modules").resolve(release));
            candidates.add(dir.resolve("lib/modules").resolve(release));
        }
        candidates.add(Path.of("/lib/modules", release));
        return candidates;
    }

    @Override
    public String toString() {
        return release;
    }

    private static int u16(byte[] b, int off) {
        return (b[off] & 0xff) | (b[off + 1] & 0xff) << 8;
    }

    private static String printable(String s) {
        StringBuilder sb = new StringBuilder();
        for (char c : s.toCharArray()) sb.append(c >= ' ' && c < 0x7f ? String.valueOf(c) : String.format("\\x%02x", (int) c));
        return sb.length() > 80 ? sb.substring(0, 80) + "..." : sb.toString();
    }
}
