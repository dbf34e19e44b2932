package dev.jvmm.device.virtio;

import dev.jvmm.sys.Errno;
import dev.jvmm.sys.LibC;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * virtio-blk (id 2) over a raw image file. The capacity is the file size rounded down to 512-byte
 * sectors. Requests run on the device's own I/O thread, never on the event loop: the thread waits on
 * the queue's notification eventfd; in a turn it takes up to {@link #MAX_BATCH} requests under the
 * device lock, serves them outside it side by side with up to {@link #WORKERS} worker threads
 * (one preadv or pwritev a request, straight between guest memory and the image, so many are in
 * flight in the host's page cache or disk at once), and returns them all under the lock with
 * one interrupt decision. A FLUSH waits for the requests taken before it. vCPUs touching the device's
 * registers wait for the lock's short holds only; a reset waits for the turn's requests.
 *
 * <p>The image is locked as QEMU does it: read-write images exclusively, read-only ones shared, so a
 * second VM cannot write to a disk another one uses (see {@link ImageLock}).
 *
 * <p>Features: SEG_MAX, BLK_SIZE (512), FLUSH ({@code force(false)}), RO for read-only images, and
 * for writable images DISCARD and WRITE_ZEROES (one segment each, up to {@link #MAX_ZERO_SECTORS}).
 * WRITE_ZEROES writes zeros. DISCARD is validated and then accepted without changing the image: Java
 * cannot punch holes without a system call, and discard is only a hint (the device does not promise
 * zeros afterwards; write_zeroes_may_unmap is 0).
 */
public final class VirtioBlock extends AbstractVirtioDevice {
    public static final int DEVICE_ID = 2;
    public static final int SECTOR = 512;
    public static final int QUEUE_SIZE = 256;
    public static final int MAX_ZERO_SECTORS = 65536; // 32 MiB per discard / write-zeroes segment

    public static final int F_SEG_MAX = 2;
    public static final int F_RO = 5;
    public static final int F_BLK_SIZE = 6;
    public static final int F_FLUSH = 9;
    public static final int F_DISCARD = 13;
    public static final int F_WRITE_ZEROES = 14;

    public static final int T_IN = 0;
    public static final int T_OUT = 1;
    public static final int T_FLUSH = 4;
    public static final int T_GET_ID = 8;
    public static final int T_DISCARD = 11;
    public static final int T_WRITE_ZEROES = 13;

    public static final int S_OK = 0;
    public static final int S_IOERR = 1;
    public static final int S_UNSUPP = 2;

    public static final int ID_BYTES = 20;
    private static final int HEADER = 16;
    private static final byte[] ZEROS = new byte[64 * 1024];

    private final Path image;
    private final FileChannel file;
    /** The image opened again for preadv/pwritev (a FileChannel has no vectored positional I/O). */
    private final int fd;
    private final ImageLock lock;
    private volatile QueueThread io;
    private final boolean readOnly;
    private final byte[] id;
    private final long sectors;

    /**
     * Opens {@code image} (read-only or read-write). {@code id} is what GET_ID returns, truncated to
     * 20 bytes of UTF-8.
     * @throws IOException with a one-line message when the file is missing, not a regular file or
     *         cannot be opened
     */
    public VirtioBlock(Path image, boolean readOnly, String id) throws IOException {
        this(image, readOnly, id, true);
    }

    /**
     * @param lock whether to lock the image (exclusively when read-write, shared when read-only) and
     *             refuse it when another process holds a conflicting lock
     */
    public VirtioBlock(Path image, boolean readOnly, String id, boolean lock) throws IOException {
        super(DEVICE_ID, 60, 1, QUEUE_SIZE);
        this.image = image;
        this.readOnly = readOnly;
        if (!Files.exists(image)) throw new IOException("disk image " + image + ": no such file");
        if (!Files.isRegularFile(image)) throw new IOException("disk image " + image + ": not a regular file");
        try {
            this.file = readOnly ? FileChannel.open(image, StandardOpenOption.READ)
                    : FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE);
        } catch (AccessDeniedException e) {
            throw new IOException("disk image " + image + ": permission denied" + (readOnly ? "" : " (read-write)"));
        } catch (NoSuchFileException e) {
            throw new IOException("disk image " + image + ": no such file");
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            throw new IOException("disk image " + image + ": cannot open: " + e.getMessage());
        }
        long size;
        try {
            this.lock = lock ? ImageLock.acquire(image, file, readOnly) : null;
            size = file.size();
        } catch (IOException e) {
            file.close();
            throw e.getMessage() != null && e.getMessage().startsWith("disk image") ? e
                    : new IOException("disk image " + image + ": cannot read its size: " + e.getMessage());
        }
        this.fd = LibC.open(image.toString(), (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC);
        if (fd < 0) {
            int errno = LibC.errno();
            if (this.lock != null) this.lock.release();
            file.close();
            throw new IOException("disk image " + image + ": cannot open: " + Errno.describe(errno));
        }
        this.sectors = size / SECTOR;
        byte[] raw = (id == null ? "" : id).getBytes(StandardCharsets.UTF_8);
        this.id = Arrays.copyOf(raw, Math.min(raw.length, ID_BYTES));
        config.putLong(0, sectors);                 // capacity
        config.putInt(12, QUEUE_SIZE - 2);          // seg_max
        config.putInt(20, SECTOR);                  // blk_size
        if (!readOnly) {
            config.putInt(36, MAX_ZERO_SECTORS);    // max_discard_sectors
            config.putInt(40, 1);                   // max_discard_seg
            config.putInt(44, 1);                   // discard_sector_alignment
            config.putInt(48, MAX_ZERO_SECTORS);    // max_write_zeroes_sectors
            config.putInt(52, 1);                   // max_write_zeroes_seg
        }
    }

    public Path image() {
        return image;
    }

    public boolean readOnly() {
        return readOnly;
    }

    /** Capacity in 512-byte sectors. */
    public long capacity() {
        return sectors;
    }


    @Override
    public long deviceFeatures() {
        long f = (1L << F_SEG_MAX) | (1L << F_BLK_SIZE) | (1L << F_FLUSH);
        if (readOnly) f |= 1L << F_RO;
        else f |= (1L << F_DISCARD) | (1L << F_WRITE_ZEROES);
        return f;
    }



    /** Requests the I/O thread takes from the queue in one turn at most. */
    static final int MAX_BATCH = 64;
    /** Threads besides the I/O thread that serve a turn's requests side by side. */
    static final int WORKERS = 3;
    /** How long a reset waits for the requests in progress before it goes ahead. */
    static final long RESET_WAIT_MS = 5000;

    /** The chains taken in this turn (the I/O thread's, filled under the lock) and their queue. */
    private final List<DescriptorChain> batch = new ArrayList<>();
    private SplitVirtqueue batchQueue;
    private int batchQueueIndex;
    /** Whether a batch is being served outside the lock; a reset waits for it. Under the lock. */
    private boolean batchRunning;
    private ExecutorService workers;

    /**
     * On the I/O thread: takes up to {@link #MAX_BATCH} available chains, which {@link #serveBatch}
     * then serves outside the lock in the same turn. On any other thread (a QueueNotify register
     * write, a device with no I/O thread): serves the queue here, one request after another.
     */
    @Override
    public synchronized void notify(int queueIndex) throws VirtqueueException {
        SplitVirtqueue q = queue(queueIndex);
        if (q == null) return;
        QueueThread t = io;
        if (t == null || !t.isCurrent()) {
            serve(queueIndex, this::handle);
            return;
        }
        if (!batch.isEmpty()) return; // taken already this turn; serveBatch looks at the queue again
        DescriptorChain chain;
        while (batch.size() < MAX_BATCH && (chain = q.pop()) != null) batch.add(chain);
        batchQueue = q;
        batchQueueIndex = queueIndex;
        batchRunning = !batch.isEmpty();
    }

    /**
     * The I/O thread, after serving its notifications: runs the turn's requests side by side on the
     * workers and this thread (a FLUSH waits for the requests taken before it and runs alone, so
     * the writes it follows are in the file before it forces them out), then returns them all under
     * the lock, with one interrupt decision. Requests of a queue that was reset meanwhile are not
     * returned: the driver has forgotten them.
     */
    private void serveBatch() {
        List<DescriptorChain> chains;
        SplitVirtqueue q;
        int qi;
        synchronized (this) {
            if (batch.isEmpty()) return;
            chains = List.copyOf(batch);
            batch.clear();
            q = batchQueue;
            qi = batchQueueIndex;
        }
        long[] written = new long[chains.size()];
        RuntimeException bug = null;
        try {
            serveInOrder(chains, written);
        } catch (RuntimeException e) {
            bug = e;
        }
        synchronized (this) {
            batchRunning = false;
            notifyAll();
            if (queue(qi) != q) return;
            try {
                if (bug != null) throw new VirtqueueException("internal error: " + bug);
                for (int i = 0; i < chains.size(); i++) {
                    q.addUsed(chains.get(i), written[i]);
                    stats.requests.incrementAndGet();
                }
                transport.signalUsed(qi);
                if (q.hasAvailable()) io.again(qi);
            } catch (VirtqueueException e) {
                transport.queueBroken(e);
            }
        }
    }

    private void serveInOrder(List<DescriptorChain> chains, long[] written) {
        int from = 0;
        for (int i = 0; i <= chains.size(); i++) {
            if (i < chains.size() && requestType(chains.get(i)) != T_FLUSH) continue;
            serveSideBySide(chains, written, from, i);
            if (i < chains.size()) written[i] = handle(chains.get(i));
            from = i + 1;
        }
    }

    /** Serves chains [from, to) on this thread and up to {@link #WORKERS} others, and waits for them all. */
    private void serveSideBySide(List<DescriptorChain> chains, long[] written, int from, int to) {
        int n = to - from;
        if (n <= 0) return;
        AtomicInteger next = new AtomicInteger(from);
        AtomicReference<RuntimeException> failed = new AtomicReference<>();
        Runnable take = () -> {
            int i;
            while ((i = next.getAndIncrement()) < to) {
                try {
                    written[i] = handle(chains.get(i));
                } catch (RuntimeException e) {
                    failed.compareAndSet(null, e);
                }
            }
        };
        int helpers = Math.min(WORKERS, n - 1);
        CountDownLatch done = new CountDownLatch(helpers);
        for (int k = 0; k < helpers; k++) {
            workers().execute(() -> {
                try {
                    take.run();
                } finally {
                    done.countDown();
                }
            });
        }
        take.run();
        boolean interrupted = false;
        while (true) {
            try {
                done.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true; // the requests are the guest's: finish them first
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        if (failed.get() != null) throw failed.get();
    }

    private synchronized ExecutorService workers() {
        if (workers == null) {
            workers = Executors.newFixedThreadPool(WORKERS,
                    Thread.ofPlatform().name("virtio-blk " + image.getFileName() + " worker ", 1).daemon(true).factory());
        }
        return workers;
    }

    private static int requestType(DescriptorChain c) {
        if (c.readableLength() < HEADER) return -1;
        byte[] t = new byte[4];
        c.read(0, t, 0, 4);
        return ByteBuffer.wrap(t).order(ByteOrder.LITTLE_ENDIAN).getInt(0);
    }

    /** A reset waits (a bounded time) for the requests being served, so none lands after it. */
    @Override
    public synchronized void reset() {
        long deadline = System.nanoTime() + RESET_WAIT_MS * 1_000_000L;
        boolean interrupted = false;
        while (batchRunning) {
            long left = (deadline - System.nanoTime()) / 1_000_000L;
            if (left <= 0) break;
            try {
                wait(left);
            } catch (InterruptedException e) {
                interrupted = true;
                break;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        batch.clear();
        super.reset();
    }

    /** Serves the queue on this device's own thread (see the class comment). */
    @Override
    public void attach(VirtioAttachment attachment) {
        io = QueueThread.start("virtio-blk " + image.getFileName() + " I/O", attachment, this::serveBatch);
    }

    /** Whether no thread of the device can still touch guest memory (its I/O thread has ended). */
    @Override
    public boolean quiesced() {
        QueueThread t = io;
        return t == null || t.ended();
    }

    /** Serves one request; returns the bytes written into the chain's writable buffers. */
    private long handle(DescriptorChain c) {
        if (c.readableLength() < HEADER || c.writableLength() < 1) {
            stats.errors.incrementAndGet(); // no header or no status byte: nothing to answer with
            return 0;
        }
        byte[] h = new byte[HEADER];
        c.read(0, h, 0, HEADER);
        ByteBuffer hb = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN);
        int type = hb.getInt(0);
        long sector = hb.getLong(8);
        long statusAt = c.writableLength() - 1;
        long written = 1;
        int status;
        try {
            switch (type) {
                case T_IN -> {
                    long len = statusAt;
                    status = checkRange(sector, len);
                    if (status == S_OK) {
                        readImage(c, sector * SECTOR, len);
                        written += len;
                    }
                }
                case T_OUT -> {
                    long len = c.readableLength() - HEADER;
                    status = readOnly ? S_IOERR : checkRange(sector, len);
                    if (status == S_OK) writeImage(c, sector * SECTOR, len);
                }
                case T_FLUSH -> {
                    if (!readOnly) file.force(false);
                    status = S_OK;
                }
                case T_GET_ID -> {
                    byte[] out = Arrays.copyOf(id, (int) Math.min(ID_BYTES, statusAt));
                    written += c.write(0, out, 0, out.length);
                    status = S_OK;
                }
                case T_DISCARD, T_WRITE_ZEROES -> status = zeroes(c, type == T_WRITE_ZEROES);
                default -> status = S_UNSUPP;
            }
        } catch (IOException e) {
            status = S_IOERR;
        }
        if (status != S_OK) stats.errors.incrementAndGet();
        c.write(statusAt, new byte[] {(byte) status}, 0, 1);
        return written;
    }

    private int checkRange(long sector, long len) {
        if (len % SECTOR != 0) return S_IOERR;
        if (sector < 0 || sector > sectors || len / SECTOR > sectors - sector) return S_IOERR;
        return S_OK;
    }

    /** {@code struct iovec}s per preadv/pwritev call (Linux takes up to 1024). */
    static final int IOV_BATCH = 256;
    private static final ThreadLocal<MemorySegment> IOVECS =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(16L * IOV_BATCH, 8));

    private void readImage(DescriptorChain c, long pos, long len) throws IOException {
        transfer(false, c.writableSegments(0, len), pos);
    }

    private void writeImage(DescriptorChain c, long pos, long len) throws IOException {
        transfer(true, c.readableSegments(HEADER, len), pos);
    }

    /**
     * Moves the guest buffers {@code segs} to or from the image at {@code pos} with one preadv or
     * pwritev per {@link #IOV_BATCH} buffers (one system call for a typical request, as QEMU does),
     * straight between guest memory and the file; a short transfer goes on where it stopped. A read
     * past the end of the image (it shrank under us) reads zeros.
     */
    private void transfer(boolean write, List<MemorySegment> segs, long pos) throws IOException {
        MemorySegment iov = IOVECS.get();
        int i = 0;
        long skip = 0; // bytes of segs[i] already moved
        try {
            while (i < segs.size()) {
                int n = 0;
                for (int k = i; k < segs.size() && n < IOV_BATCH; k++, n++) {
                    MemorySegment s = segs.get(k);
                    long off = k == i ? skip : 0;
                    iov.set(JAVA_LONG, 16L * n, s.address() + off);
                    iov.set(JAVA_LONG, 16L * n + 8, s.byteSize() - off);
                }
                long r = write ? LibC.pwritev(fd, iov, n, pos) : LibC.preadv(fd, iov, n, pos);
                if (r < 0) {
                    int errno = LibC.errno();
                    if (errno == Errno.EINTR) continue;
                    throw new IOException((write ? "pwritev: " : "preadv: ") + Errno.describe(errno));
                }
                if (r == 0) {
                    if (write) throw new IOException("pwritev wrote nothing");
                    segs.get(i).asSlice(skip).fill((byte) 0);
                    for (int k = i + 1; k < segs.size(); k++) segs.get(k).fill((byte) 0);
                    break;
                }
                pos += r;
                stats.bytes.addAndGet(r);
                while (r > 0) {
                    long left = segs.get(i).byteSize() - skip;
                    if (r >= left) {
                        r -= left;
                        i++;
                        skip = 0;
                    } else {
                        skip += r;
                        r = 0;
                    }
                }
            }
        } finally {
            java.lang.ref.Reference.reachabilityFence(segs);
        }
    }

    /** DISCARD / WRITE_ZEROES: one 16-byte segment {sector u64, num_sectors u32, flags u32}. */
    private int zeroes(DescriptorChain c, boolean write) throws IOException {
        if (readOnly) return S_IOERR;
        long len = c.readableLength() - HEADER;
        if (len != 16) return len % 16 == 0 && len > 0 ? S_UNSUPP : S_IOERR; // max_*_seg is 1
        byte[] seg = new byte[16];
        c.read(HEADER, seg, 0, 16);
        ByteBuffer sb = ByteBuffer.wrap(seg).order(ByteOrder.LITTLE_ENDIAN);
        long sector = sb.getLong(0);
        long num = Integer.toUnsignedLong(sb.getInt(8));
        int flags = sb.getInt(12);
        if (flags != 0 && !(write && flags == 1)) return S_UNSUPP; // only write-zeroes may carry UNMAP
        if (num > MAX_ZERO_SECTORS || checkRange(sector, num * SECTOR) != S_OK) return S_IOERR;
        if (!write) return S_OK; // discard: accepted, image unchanged (see class comment)
        long pos = sector * SECTOR;
        long end = pos + num * SECTOR;
        while (pos < end) {
            ByteBuffer z = ByteBuffer.wrap(ZEROS, 0, (int) Math.min(ZEROS.length, end - pos));
            while (z.hasRemaining()) pos += file.write(z, pos);
        }
        stats.bytes.addAndGet(num * SECTOR);
        return S_OK;
    }

    /**
     * Nothing in flight to save: a turn of the I/O thread returns every request it took, and a pause
     * holds the thread between turns (the transport refuses a queue with chains in flight anyway).
     * What the snapshot keeps is what the guest learnt of the disk: its capacity and whether it is
     * read-only, which the image given at restore must match.
     */
    @Override
    public String snapshotRefusal() {
        return null;
    }

    static final int STATE_VERSION = 1;

    /** Version, capacity in sectors, read-only. */
    @Override
    public byte[] saveDeviceState() {
        return ByteBuffer.allocate(1 + 8 + 1).put((byte) STATE_VERSION).putLong(sectors).put((byte) (readOnly ? 1 : 0)).array();
    }

    @Override
    public void loadDeviceState(byte[] state) {
        long[] saved = new long[2];
        dev.jvmm.device.DeviceState.read("virtio-blk", state, STATE_VERSION, b -> {
            saved[0] = b.getLong();
            saved[1] = b.get();
        });
        if (saved[0] != sectors) {
            throw new IllegalArgumentException("virtio-blk: the disk image " + image + " has " + sectors + " sectors, the snapshot's disk had "
                    + saved[0] + " (give the image the snapshot was taken with)");
        }
        if (saved[1] != (readOnly ? 1 : 0)) {
            throw new IllegalArgumentException("virtio-blk: the snapshot's disk was " + (saved[1] == 1 ? "read-only" : "read-write") + ", " + image
                    + " is given " + (readOnly ? "read-only" : "read-write"));
        }
    }

    /** Stops the I/O thread (after the request it is serving, if any) and closes the image. */
    @Override
    public void close() {
        QueueThread t = io;
        if (t != null) t.stop();
        synchronized (this) {
            if (workers != null) workers.shutdown(); // not shutdownNow: an interrupt would close the image's channel
            try {
                if (lock != null) lock.release();
                file.close();
                if (quiesced()) LibC.close(fd); // else a request may still use it: leave it, never a reused number
            } catch (IOException e) {
                // closing: the data is already in the file (writes are not buffered), nothing left to lose
            }
        }
    }
}
