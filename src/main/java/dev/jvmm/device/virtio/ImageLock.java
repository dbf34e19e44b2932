package dev.jvmm.device.virtio;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A disk image's lock, as QEMU takes one: exclusive for a read-write disk, shared for a read-only
 * one, so two VMs never write to the same image and none writes one that another only reads. The
 * locks are advisory fcntl locks (what {@link FileChannel#tryLock} takes on Linux), released when the
 * image is closed or the process ends, however it ends.
 */
final class ImageLock {
    private final FileLock lock;

    private ImageLock(FileLock lock) {
        this.lock = lock;
    }

    /**
     * Locks {@code file} (open on {@code image}).
     * @throws IOException with one line naming the image and, where /proc/locks tells, the process
     *         that holds it, when another holder's lock conflicts
     */
    static ImageLock acquire(Path image, FileChannel file, boolean readOnly) throws IOException {
        FileLock l;
        try {
            l = file.tryLock(0, Long.MAX_VALUE, readOnly);
        } catch (OverlappingFileLockException e) {
            throw new IOException("disk image " + image + " is given twice (each --disk needs its own image)");
        }
        if (l == null) {
            String holder = holder(image);
            throw new IOException("disk image " + image + " is in use" + (holder == null ? " by another process" : " by " + holder)
                    + (readOnly ? " for writing" : "") + "; jvmm will not share it (add ,lock=off to --disk to share it anyway)");
        }
        return new ImageLock(l);
    }

    void release() throws IOException {
        if (lock.isValid()) lock.release();
    }

    /** "process 1234 (jvmm)" when /proc/locks names the holder of a lock on the image's inode, else null. */
    static String holder(Path image) {
        try {
            Object ino = Files.getAttribute(image, "unix:ino");
            List<String> lines = Files.readAllLines(Path.of("/proc/locks"));
            for (String line : lines) {
                // "1: POSIX  ADVISORY  WRITE 1234 08:01:131 0 EOF"
                String[] f = line.trim().split("\\s+");
                if (f.length < 6 || !f[1].equals("POSIX")) continue;
                String[] dev = f[5].split(":");
                if (dev.length == 3 && dev[2].equals(String.valueOf(ino))) {
                    String pid = f[4];
                    String comm = "";
                    try {
                        comm = " (" + Files.readString(Path.of("/proc", pid, "comm")).strip() + ")";
                    } catch (IOException | RuntimeException e) {
                        // gone meanwhile, or not ours to read
                    }
                    return "process " + pid + comm;
                }
            }
        } catch (IOException | RuntimeException e) {
            // no /proc, or no unix attributes: the message just does not name the holder
        }
        return null;
    }
}
