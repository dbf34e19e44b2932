package dev.jvmm.loader;

import dev.jvmm.memory.Chunk;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Bounded reads of the files a user names (kernels, initrds, modules): every size is looked at
 * before anything is read, every read is of a known length, and no buffer is allocated that the
 * Java heap cannot hold, so a hostile or huge file ends in a {@link LoadException}, never in an
 * {@link OutOfMemoryError}.
 */
final class ImageFiles {
    private ImageFiles() { }

    /** Guest data is held in pieces of at most this many bytes (a Java array holds less than 2 GiB). */
    static final int MAX_PIECE = 1 << 30;

    /**
     * The size of {@code file} after checking it exists, is a regular readable file and (unless
     * {@code emptyOk}) is not empty. {@code what} ("kernel", "initrd") is only used in messages.
     */
    static long size(Path file, String what, boolean emptyOk) throws LoadException {
        if (!Files.exists(file)) {
            throw new LoadException(file + ": no such " + what + " file");
        }
        if (!Files.isRegularFile(file)) {
            throw new LoadException(file + ": " + what + " is not a regular file");
        }
        if (!Files.isReadable(file)) {
            throw new LoadException(file + ": " + what + " file is not readable (permission denied)");
        }
        long size;
        try {
            size = Files.size(file);
        } catch (IOException e) {
            throw new LoadException(file + ": cannot read " + what + ": " + e.getMessage(), e);
        }
        if (size == 0 && !emptyOk) {
            throw new LoadException(file + ": " + what + " file is empty");
        }
        return size;
    }

    /** The largest file {@link #readAll} reads: what one Java array holds. */
    static final int MAX_FILE = Integer.MAX_VALUE - 16;

    /** Reads a whole file of at most {@code limit} bytes (checked before reading). */
    static byte[] readAll(Path file, String what, long limit, boolean emptyOk) throws LoadException {
        long size = size(file, what, emptyOk);
        if (size > limit || size > MAX_FILE) {
            throw new LoadException(file + ": " + what + " is too large for guest memory (" + size + " bytes, at most "
                    + Math.max(0, Math.min(limit, MAX_FILE)) + " bytes available)");
        }
        return readRange(file, what, 0, (int) size, size);
    }

    /**
     * Reads bytes [{@code offset}, {@code offset + len}) of a file that {@link #size} said has
     * {@code expectedSize} bytes; a file that changed size meanwhile is refused.
     */
    static byte[] readRange(Path file, String what, long offset, int len, long expectedSize) throws LoadException {
        requireHeap(file, what, len);
        byte[] b = new byte[len];
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            checkUnchanged(file, what, ch, expectedSize);
            readFully(file, what, ch, offset, b, 0, len);
            if (offset + len == expectedSize) checkAtEnd(file, what, ch, expectedSize);
        } catch (IOException e) {
            throw new LoadException(file + ": cannot read " + what + ": " + e.getMessage(), e);
        }
        return b;
    }

    /**
     * Reads {@code files} (of the given {@code sizes}, from {@link #size}) one after the other into
     * guest data starting at {@code gpa}: one chunk named {@code name}, or several of at most
     * {@link #MAX_PIECE} bytes ("name, part 2", ...) when the total is larger. Each file is read once,
     * straight into place.
     */
    static List<Chunk> readConcatenated(String name, long gpa, List<Path> files, long[] sizes, String what)
            throws LoadException {
        long total = 0;
        for (long s : sizes) total += s;
        requireHeap(files.isEmpty() ? Path.of(name) : files.getFirst(), what, total);
        List<Chunk> chunks = new ArrayList<>();
        byte[] piece = null;
        int used = 0;
        long placed = 0;
        for (int i = 0; i < files.size(); i++) {
            Path file = files.get(i);
            long size = sizes[i];
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                checkUnchanged(file, what, ch, size);
                long done = 0;
                while (done < size) {
                    if (piece == null || used == piece.length) {
                        if (piece != null) {
                            chunks.add(chunk(name, chunks.size(), gpa + placed, piece));
                            placed += piece.length;
                        }
                        piece = new byte[(int) Math.min(MAX_PIECE, total - placed)];
                        used = 0;
                    }
                    int n = (int) Math.min(piece.length - used, size - done);
                    readFully(file, what, ch, done, piece, used, n);
                    used += n;
                    done += n;
                }
                checkAtEnd(file, what, ch, size);
            } catch (IOException e) {
                throw new LoadException(file + ": cannot read " + what + ": " + e.getMessage(), e);
            }
        }
        if (piece != null) chunks.add(chunk(name, chunks.size(), gpa + placed, piece));
        return chunks;
    }

    private static Chunk chunk(String name, int index, long gpa, byte[] data) {
        return new Chunk(index == 0 ? name : name + ", part " + (index + 1), gpa, data, 0);
    }

    private static void readFully(Path file, String what, FileChannel ch, long pos, byte[] b, int off, int len)
            throws IOException, LoadException {
        ByteBuffer buf = ByteBuffer.wrap(b, off, len);
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + (buf.position() - off));
            if (n < 0) {
                throw new LoadException(file + ": " + what + " file shrank while it was being read");
            }
        }
    }

    private static void checkUnchanged(Path file, String what, FileChannel ch, long expectedSize)
            throws IOException, LoadException {
        if (ch.size() != expectedSize) {
            throw new LoadException(file + ": " + what + " file changed size while it was being read ("
                    + expectedSize + " bytes, now " + ch.size() + ")");
        }
    }

    private static void checkAtEnd(Path file, String what, FileChannel ch, long expectedSize)
            throws IOException, LoadException {
        if (ch.read(ByteBuffer.allocate(1), expectedSize) > 0) {
            throw new LoadException(file + ": " + what + " file grew while it was being read");
        }
    }

    /**
     * Refuses an allocation of {@code bytes} that the Java heap cannot hold, with a line saying so,
     * instead of letting it fail with an {@link OutOfMemoryError}.
     */
    static void requireHeap(Path file, String what, long bytes) throws LoadException {
        if (bytes <= free()) return;
        System.gc(); // the estimate counts garbage as used: look again once it is gone
        long free = free();
        if (bytes > free) {
            throw new LoadException(outOfHeap(file, what, bytes, free));
        }
    }

    static String outOfHeap(Path file, String what, long bytes, long free) {
        return file + ": not enough Java heap to load the " + what + " (" + bytes + " bytes needed, about "
                + Math.max(0, free) + " free); give jvmm's JVM a larger -Xmx";
    }

    private static long free() {
        Runtime rt = Runtime.getRuntime();
        return rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    }
}
