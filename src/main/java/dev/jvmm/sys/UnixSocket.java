package dev.jvmm.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A UNIX stream socket ({@code AF_UNIX, SOCK_STREAM}, always close-on-exec) that can carry file
 * descriptors with its bytes ({@code SCM_RIGHTS}). Descriptors received are close-on-exec too
 * ({@code MSG_CMSG_CLOEXEC}), and sends never raise SIGPIPE ({@code MSG_NOSIGNAL}): a peer that went
 * away shows up as EPIPE.
 *
 * <p>{@link #send} and {@link #receive} are single system calls; {@link #sendAll} and
 * {@link #receiveExactly} move a whole message under a deadline (poll(2) between attempts), so a peer
 * that stops reading or answering ends in a {@link UnixSocketException}, never in a hang.
 *
 * <p>Not for concurrent use: one thread at a time sends or receives (the vhost-user front end locks).
 */
public final class UnixSocket extends OwnedFd {
    public static final int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
    public static final int SOL_SOCKET = 1, SCM_RIGHTS = 1;
    public static final int MSG_CTRUNC = 0x8, MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000, MSG_CMSG_CLOEXEC = 0x40000000;
    public static final int F_GETFL = 3, F_SETFL = 4;
    public static final short POLLOUT = 4;
    public static final int EPIPE = 32, ENAMETOOLONG = 36, ECONNABORTED = 103, ECONNRESET = 104, ECONNREFUSED = 111;
    /** {@code sizeof(sockaddr_un.sun_path)}: a path must fit with its terminating NUL. */
    public static final int SUN_PATH_BYTES = 108;
    /** {@code CMSG_LEN(0)}: a control message's header; its data follows at this offset. */
    public static final long CMSG_HEADER_BYTES = 16;
    /** Control messages are padded to this ({@code CMSG_SPACE(n) - CMSG_LEN(0)} rounds n up to it). */
    public static final long CMSG_ALIGN_BYTES = 8;

    /** {@code struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }} */
    public static final StructLayout SOCKADDR_UN = MemoryLayout.structLayout(
            JAVA_SHORT.withName("sun_family"),
            MemoryLayout.sequenceLayout(SUN_PATH_BYTES, JAVA_BYTE).withName("sun_path")).withName("sockaddr_un");

    /** {@code struct iovec { void *iov_base; size_t iov_len; }} */
    public static final StructLayout IOVEC = MemoryLayout.structLayout(
            ADDRESS.withName("iov_base"), JAVA_LONG.withName("iov_len")).withName("iovec");

    /** {@code struct msghdr} of glibc on x86-64: socklen_t and int members are followed by 4 bytes of padding. */
    public static final StructLayout MSGHDR = MemoryLayout.structLayout(
            ADDRESS.withName("msg_name"), JAVA_INT.withName("msg_namelen"), MemoryLayout.paddingLayout(4),
            ADDRESS.withName("msg_iov"), JAVA_LONG.withName("msg_iovlen"),
            ADDRESS.withName("msg_control"), JAVA_LONG.withName("msg_controllen"),
            JAVA_INT.withName("msg_flags"), MemoryLayout.paddingLayout(4)).withName("msghdr");

    /** {@code struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }}, data after it. */
    public static final StructLayout CMSGHDR = MemoryLayout.structLayout(
            JAVA_LONG.withName("cmsg_len"), JAVA_INT.withName("cmsg_level"), JAVA_INT.withName("cmsg_type")).withName("cmsghdr");

    // offsets derived from the layouts (private, so the header test does not look for them in the probe)
    private static final long MSG_IOV = KvmApi.offset(MSGHDR, "msg_iov"), MSG_IOVLEN = KvmApi.offset(MSGHDR, "msg_iovlen"),
            MSG_CONTROL = KvmApi.offset(MSGHDR, "msg_control"), MSG_CONTROLLEN = KvmApi.offset(MSGHDR, "msg_controllen"),
            MSG_FLAGS = KvmApi.offset(MSGHDR, "msg_flags");
    private static final long IOV_BASE = KvmApi.offset(IOVEC, "iov_base"), IOV_LEN = KvmApi.offset(IOVEC, "iov_len");
    private static final long CMSG_LEN = KvmApi.offset(CMSGHDR, "cmsg_len"), CMSG_LEVEL = KvmApi.offset(CMSGHDR, "cmsg_level"),
            CMSG_TYPE = KvmApi.offset(CMSGHDR, "cmsg_type");
    private static final long SUN_FAMILY = KvmApi.offset(SOCKADDR_UN, "sun_family"), SUN_PATH = KvmApi.offset(SOCKADDR_UN, "sun_path");

    /**
     * The most descriptors one message can carry: the kernel's SCM_MAX_FD (253, include/net/scm.h, not
     * in the user-space headers). Received control buffers have room for this many, so descriptors
     * beyond what a caller expects arrive and are closed here rather than silently lost.
     */
    public static int maxDescriptorsPerMessage() {
        return 253;
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    /** strerror and the symbolic name, including the socket errnos {@link Errno} does not name. */
    public static String describe(int errno) {
        String name = switch (errno) {
            case EPIPE -> "EPIPE"; case ENAMETOOLONG -> "ENAMETOOLONG"; case ECONNRESET -> "ECONNRESET";
            case ECONNREFUSED -> "ECONNREFUSED";
            default -> null;
        };
        return name == null ? Errno.describe(errno) : LibC.strerror(errno) + " (" + name + ")";
    }

    private UnixSocket(int fd, String description) {
        super(fd, description);
    }

    private int liveFd() {
        int f = fd;
        if (f < 0) throw new IllegalStateException(description + " is closed");
        return f;
    }

    // ---- creating and connecting ----

    private static int newSocket(String what, int flags) {
        int s;
        try {
            s = (int) LibC.syscall(LibC.SYS_SOCKET, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (s < 0) throw new SyscallException("socket(AF_UNIX) for " + what, LibC.errno());
        return s;
    }

    /** Two connected sockets (tests, and handing one end to a child). */
    public static UnixSocket[] pair() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sv = arena.allocate(JAVA_INT, 2);
            int rc;
            try {
                rc = (int) LibC.syscall(LibC.SYS_SOCKETPAIR, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, LibC.addr(sv), 0, 0);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (rc < 0) throw new SyscallException("socketpair(AF_UNIX)", LibC.errno());
            return new UnixSocket[] {
                    new UnixSocket(sv.getAtIndex(JAVA_INT, 0), "socketpair end 0"),
                    new UnixSocket(sv.getAtIndex(JAVA_INT, 1), "socketpair end 1")};
        }
    }

    /**
     * A {@code struct sockaddr_un} for {@code path}, or a one-line refusal: the path (UTF-8) must fit
     * sun_path with its NUL, and must not contain NUL itself.
     */
    static MemorySegment sockaddr(Arena arena, Path path) throws UnixSocketException {
        byte[] b = path.toString().getBytes(StandardCharsets.UTF_8);
        if (b.length == 0) throw new UnixSocketException(UnixSocketException.Reason.FAILED, "empty UNIX socket path");
        if (b.length >= SUN_PATH_BYTES) {
            throw new UnixSocketException(UnixSocketException.Reason.FAILED, "UNIX socket path " + path + " is " + b.length
                    + " bytes long; at most " + (SUN_PATH_BYTES - 1) + " fit in sockaddr_un (use a shorter directory)");
        }
        for (byte x : b) {
            if (x == 0) throw new UnixSocketException(UnixSocketException.Reason.FAILED, "UNIX socket path contains a NUL byte");
        }
        MemorySegment sa = arena.allocate(SOCKADDR_UN); // zeroed, so sun_path is NUL-terminated
        sa.set(JAVA_SHORT, SUN_FAMILY, (short) AF_UNIX);
        MemorySegment.copy(b, 0, sa, JAVA_BYTE, SUN_PATH, b.length);
        return sa;
    }

    /**
     * Connects to the listening socket at {@code path}, retrying while it does not exist yet or nobody
     * listens on it yet (a server binds, then listens) until {@code timeoutMs} has passed. The result is
     * non-blocking.
     */
    public static UnixSocket connect(Path path, long timeoutMs) throws UnixSocketException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddr(arena, path);
            while (true) {
                // non-blocking from the start: a listener with a full backlog gives EAGAIN (retried) instead of blocking
                int s = newSocket("connecting to " + path, SOCK_NONBLOCK);
                int rc, errno;
                try {
                    rc = (int) LibC.syscall(LibC.SYS_CONNECT, s, LibC.addr(sa), SOCKADDR_UN.byteSize());
                    errno = rc < 0 ? LibC.errno() : 0;
                } catch (Throwable t) {
                    LibC.close(s);
                    throw rethrow(t);
                }
                if (rc == 0) return new UnixSocket(s, "socket " + path);
                LibC.close(s);
                boolean notYet = errno == Errno.ENOENT || errno == ECONNREFUSED || errno == Errno.EAGAIN || errno == Errno.EINTR;
                if (!notYet || System.nanoTime() - deadline >= 0) {
                    throw new UnixSocketException(notYet ? UnixSocketException.Reason.TIMED_OUT : UnixSocketException.Reason.FAILED,
                            "cannot connect to UNIX socket " + path + (notYet ? " within " + timeoutMs + " ms" : "") + ": " + describe(errno));
                }
                try {
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new UnixSocketException(UnixSocketException.Reason.FAILED, "interrupted while connecting to " + path);
                }
            }
        }
    }

    /** Whether {@code p} is a socket (not following a link); false when it does not exist or cannot be read. */
    public static boolean isSocket(Path p) {
        try {
            int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            return (mode & 0170000) == 0140000; // S_IFMT, S_IFSOCK
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** Binds a new socket to {@code path} (which must not exist) and listens on it. */
    public static UnixSocket listen(Path path, int backlog) throws UnixSocketException {
        return listen(path, backlog, 0, false);
    }

    /**
     * Binds a new non-blocking socket to {@code path} (which must not exist) with owner-only
     * permissions from the start, and listens on it: the socket's mode is set to 0600 before bind
     * (Linux creates the file with the socket's mode, less the umask), so no other user can connect
     * even for a moment.
     */
    public static UnixSocket listenPrivate(Path path, int backlog) throws UnixSocketException {
        return listen(path, backlog, SOCK_NONBLOCK, true);
    }

    /** A new socket ({@code flags} for socket(2)) bound to {@code path}, mode 0600 before bind if {@code ownerOnly}, listening. */
    private static UnixSocket listen(Path path, int backlog, int flags, boolean ownerOnly) throws UnixSocketException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddr(arena, path);
            int s = newSocket("listening on " + path, flags);
            try {
                if (ownerOnly && (int) LibC.syscall(LibC.SYS_FCHMOD, s, 0600, 0) < 0) {
                    throw new UnixSocketException(UnixSocketException.Reason.FAILED, "cannot make UNIX socket " + path + " owner-only: " + describe(LibC.errno()));
                }
                int rc = (int) LibC.syscall(LibC.SYS_BIND, s, LibC.addr(sa), SOCKADDR_UN.byteSize());
                if (rc < 0) {
                    throw new UnixSocketException(UnixSocketException.Reason.FAILED, "cannot bind UNIX socket " + path + ": " + describe(LibC.errno()));
                }
                rc = (int) LibC.syscall(LibC.SYS_LISTEN, s, backlog, 0);
                if (rc < 0) {
                    throw new UnixSocketException(UnixSocketException.Reason.FAILED, "cannot listen on UNIX socket " + path + ": " + describe(LibC.errno()));
                }
            } catch (Throwable t) {
                LibC.close(s);
                if (t instanceof UnixSocketException u) throw u;
                throw rethrow(t);
            }
            return new UnixSocket(s, "socket " + path);
        }
    }

    /** Accepts one waiting connection (non-blocking, close-on-exec), or returns null if none is waiting. */
    public UnixSocket acceptNow() throws UnixSocketException {
        while (true) {
            int s;
            try {
                s = (int) LibC.syscall(LibC.SYS_ACCEPT4, liveFd(), 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK, 0, 0);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (s >= 0) return new UnixSocket(s, description + " (accepted)");
            int errno = LibC.errno();
            if (errno == Errno.EINTR || errno == ECONNABORTED) continue;
            if (errno == Errno.EAGAIN) return null;
            throw new UnixSocketException(UnixSocketException.Reason.FAILED, "accept on " + description + ": " + describe(errno));
        }
    }

    /** Waits until a {@link #receive} would not block (data, end of stream or an error), before {@code deadlineNanos}. */
    public void awaitReadable(long deadlineNanos) throws UnixSocketException {
        awaitReady(LibC.POLLIN, deadlineNanos, "a reply");
    }

    /** Accepts one connection, waiting at most {@code timeoutMs}; the new socket is non-blocking. */
    public UnixSocket accept(long timeoutMs) throws UnixSocketException {
        awaitReady(LibC.POLLIN, System.nanoTime() + timeoutMs * 1_000_000L, "a connection");
        int s;
        try {
            s = (int) LibC.syscall(LibC.SYS_ACCEPT4, liveFd(), 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK, 0, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (s < 0) throw new UnixSocketException(UnixSocketException.Reason.FAILED, "accept on " + description + ": " + describe(LibC.errno()));
        return new UnixSocket(s, description + " (accepted)");
    }

    /** fcntl(2) command: a new descriptor for the same socket, close-on-exec. */
    public static final int F_DUPFD_CLOEXEC = 1030;

    /**
     * A second descriptor (close-on-exec) for this socket, which the caller owns and closes: for
     * watching it with poll(2) while this object may close its own at any time, so the watched number
     * can never be reused for another file meanwhile.
     */
    public int duplicate() {
        int d;
        try {
            d = (int) LibC.syscall(LibC.SYS_FCNTL, liveFd(), F_DUPFD_CLOEXEC, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (d < 0) throw new SyscallException("fcntl(F_DUPFD_CLOEXEC) on " + description, LibC.errno());
        return d;
    }

    public void setNonBlocking(boolean on) {
        try {
            int flags = (int) LibC.syscall(LibC.SYS_FCNTL, liveFd(), F_GETFL, 0);
            if (flags < 0) throw new SyscallException("fcntl(F_GETFL) on " + description, LibC.errno());
            int wanted = on ? flags | LibC.O_NONBLOCK : flags & ~LibC.O_NONBLOCK;
            if (wanted != flags && (int) LibC.syscall(LibC.SYS_FCNTL, fd, F_SETFL, wanted) < 0) {
                throw new SyscallException("fcntl(F_SETFL) on " + description, LibC.errno());
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- single transfers ----

    /**
     * One sendmsg(2) of {@code len} bytes of {@code data}, with {@code fds} in one SCM_RIGHTS control
     * message (the kernel delivers them with the first byte sent).
     * @return the bytes sent (possibly fewer than {@code len}), -1 if the socket is non-blocking and full,
     *         or -errno (EPIPE, ECONNRESET, ...) when the call failed
     */
    public long send(MemorySegment data, long len, int... fds) {
        if (fds.length > maxDescriptorsPerMessage()) {
            throw new IllegalArgumentException(fds.length + " descriptors in one message; at most " + maxDescriptorsPerMessage());
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(IOVEC);
            iov.set(ADDRESS, IOV_BASE, data);
            iov.set(JAVA_LONG, IOV_LEN, len);
            MemorySegment msg = arena.allocate(MSGHDR);
            msg.set(ADDRESS, MSG_IOV, iov);
            msg.set(JAVA_LONG, MSG_IOVLEN, 1L);
            if (fds.length > 0) {
                long dataBytes = (long) fds.length * Integer.BYTES;
                MemorySegment control = arena.allocate(cmsgSpace(dataBytes), CMSG_ALIGN_BYTES);
                control.set(JAVA_LONG, CMSG_LEN, CMSG_HEADER_BYTES + dataBytes);
                control.set(JAVA_INT, CMSG_LEVEL, SOL_SOCKET);
                control.set(JAVA_INT, CMSG_TYPE, SCM_RIGHTS);
                MemorySegment.copy(fds, 0, control, JAVA_INT, CMSG_HEADER_BYTES, fds.length);
                msg.set(ADDRESS, MSG_CONTROL, control);
                msg.set(JAVA_LONG, MSG_CONTROLLEN, control.byteSize());
            }
            while (true) {
                long n;
                try {
                    n = LibC.syscall(LibC.SYS_SENDMSG, liveFd(), LibC.addr(msg), MSG_NOSIGNAL);
                } catch (Throwable t) {
                    throw rethrow(t);
                }
                if (n >= 0) return n;
                int errno = LibC.errno();
                if (errno == Errno.EINTR) continue;
                return errno == Errno.EAGAIN ? -1 : -errno;
            }
        }
    }

    /** {@code CMSG_SPACE(dataBytes)}. */
    static long cmsgSpace(long dataBytes) {
        return CMSG_HEADER_BYTES + (dataBytes + CMSG_ALIGN_BYTES - 1) / CMSG_ALIGN_BYTES * CMSG_ALIGN_BYTES;
    }

    /**
     * What one recvmsg(2) returned.
     * @param bytes bytes received; 0 means the peer closed its end; -1 that nothing was there (non-blocking)
     * @param fds the descriptors received, at most what the caller allowed; the caller owns them
     * @param closedExtras descriptors that arrived beyond that and were closed here
     */
    public record Received(long bytes, int[] fds, int closedExtras) {
        @Override
        public String toString() {
            return "Received[bytes=" + bytes + ", fds=" + Arrays.toString(fds) + ", closedExtras=" + closedExtras + "]";
        }
    }

    /**
     * One recvmsg(2) of at most {@code len} bytes into {@code buf}, keeping at most {@code maxFds} of the
     * descriptors that come with them (the rest are closed). MSG_CTRUNC, which means descriptors were
     * lost in the kernel, closes everything received and throws.
     */
    public Received receive(MemorySegment buf, long len, int maxFds) throws UnixSocketException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(IOVEC);
            iov.set(ADDRESS, IOV_BASE, buf);
            iov.set(JAVA_LONG, IOV_LEN, len);
            MemorySegment control = arena.allocate(cmsgSpace((long) maxDescriptorsPerMessage() * Integer.BYTES), CMSG_ALIGN_BYTES);
            MemorySegment msg = arena.allocate(MSGHDR);
            msg.set(ADDRESS, MSG_IOV, iov);
            msg.set(JAVA_LONG, MSG_IOVLEN, 1L);
            msg.set(ADDRESS, MSG_CONTROL, control);
            msg.set(JAVA_LONG, MSG_CONTROLLEN, control.byteSize());
            long n;
            while (true) {
                try {
                    n = LibC.syscall(LibC.SYS_RECVMSG, liveFd(), LibC.addr(msg), MSG_CMSG_CLOEXEC);
                } catch (Throwable t) {
                    throw rethrow(t);
                }
                if (n >= 0) break;
                int errno = LibC.errno();
                if (errno == Errno.EINTR) continue;
                if (errno == Errno.EAGAIN) return new Received(-1, new int[0], 0);
                if (errno == ECONNRESET || errno == EPIPE) {
                    throw new UnixSocketException(UnixSocketException.Reason.PEER_CLOSED, description + ": peer closed the connection ("
                            + describe(errno) + ")");
                }
                throw new UnixSocketException(UnixSocketException.Reason.FAILED, "recvmsg on " + description + ": " + describe(errno));
            }
            int[] all = descriptors(control, msg.get(JAVA_LONG, MSG_CONTROLLEN));
            if ((msg.get(JAVA_INT, MSG_FLAGS) & MSG_CTRUNC) != 0) {
                for (int f : all) LibC.close(f);
                throw new UnixSocketException(UnixSocketException.Reason.TRUNCATED, description
                        + ": the peer sent more descriptors than one message can hold (MSG_CTRUNC); closed the " + all.length + " that arrived");
            }
            int keep = Math.min(all.length, Math.max(0, maxFds));
            for (int i = keep; i < all.length; i++) LibC.close(all[i]);
            return new Received(n, Arrays.copyOf(all, keep), all.length - keep);
        }
    }

    /** The SCM_RIGHTS descriptors in a received control buffer of {@code controlLen} bytes. */
    private static int[] descriptors(MemorySegment control, long controlLen) {
        int[] out = new int[0];
        long off = 0;
        controlLen = Math.min(controlLen, control.byteSize());
        while (off + CMSG_HEADER_BYTES <= controlLen) {
            long cmsgLen = control.get(JAVA_LONG, off + CMSG_LEN);
            if (cmsgLen < CMSG_HEADER_BYTES || cmsgLen > controlLen - off) break; // malformed: stop, as CMSG_NXTHDR does
            if (control.get(JAVA_INT, off + CMSG_LEVEL) == SOL_SOCKET && control.get(JAVA_INT, off + CMSG_TYPE) == SCM_RIGHTS) {
                int n = (int) ((cmsgLen - CMSG_HEADER_BYTES) / Integer.BYTES);
                int[] more = new int[n];
                MemorySegment.copy(control, JAVA_INT, off + CMSG_HEADER_BYTES, more, 0, n);
                int[] joined = Arrays.copyOf(out, out.length + n);
                System.arraycopy(more, 0, joined, out.length, n);
                out = joined;
            }
            off += (cmsgLen + CMSG_ALIGN_BYTES - 1) / CMSG_ALIGN_BYTES * CMSG_ALIGN_BYTES;
        }
        return out;
    }

    // ---- whole messages under a deadline ----

    /** Waits until poll(2) reports {@code events} (or hang-up/error, which the next call then reports). */
    private void awaitReady(short events, long deadlineNanos, String what) throws UnixSocketException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pfd = arena.allocate(LibC.POLLFD);
            while (true) {
                long left = deadlineNanos - System.nanoTime();
                if (left <= 0) {
                    throw new UnixSocketException(UnixSocketException.Reason.TIMED_OUT, description + ": timed out waiting for " + what);
                }
                pfd.set(JAVA_INT, 0, liveFd());
                pfd.set(JAVA_SHORT, 4, events);
                pfd.set(JAVA_SHORT, 6, (short) 0);
                int ms = (int) Math.min(Integer.MAX_VALUE, (left + 999_999) / 1_000_000);
                int rc = LibC.poll(pfd, 1, ms);
                if (rc < 0) {
                    int errno = LibC.errno();
                    if (errno == Errno.EINTR) continue;
                    throw new UnixSocketException(UnixSocketException.Reason.FAILED, "poll on " + description + ": " + describe(errno));
                }
                if (rc == 0) continue;
                short revents = pfd.get(JAVA_SHORT, 6);
                if ((revents & LibC.POLLNVAL) != 0) {
                    throw new UnixSocketException(UnixSocketException.Reason.FAILED, description + ": descriptor is not open (POLLNVAL)");
                }
                return; // readable/writable, or HUP/ERR: the following call tells which
            }
        }
    }

    /**
     * Sends all of {@code data}, the descriptors with its first byte, before {@code deadlineNanos}
     * (System.nanoTime). Works on blocking and non-blocking sockets; meant for non-blocking ones.
     */
    public void sendAll(byte[] data, int[] fds, long deadlineNanos) throws UnixSocketException {
        // a stream socket carries ancillary data only along with at least one byte
        if (data.length == 0) throw new IllegalArgumentException("nothing to send");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(data.length);
            MemorySegment.copy(data, 0, buf, JAVA_BYTE, 0, data.length);
            long sent = 0;
            int[] pending = fds;
            while (sent < data.length) {
                awaitReady(POLLOUT, deadlineNanos, "room to send");
                long n = send(buf.asSlice(sent), data.length - sent, pending);
                if (n == -1) continue;
                if (n < 0) {
                    int errno = (int) -n;
                    if (errno == EPIPE || errno == ECONNRESET) {
                        throw new UnixSocketException(UnixSocketException.Reason.PEER_CLOSED, description + ": peer closed the connection ("
                                + describe(errno) + ")");
                    }
                    throw new UnixSocketException(UnixSocketException.Reason.FAILED, "sendmsg on " + description + ": " + describe(errno));
                }
                sent += n;
                pending = new int[0];
            }
        }
    }

    /** A whole message received by {@link #receiveExactly}: its bytes and the descriptors kept. */
    public record Message(byte[] bytes, int[] fds, int closedExtras) { }

    /**
     * Receives exactly {@code len} bytes before {@code deadlineNanos} (System.nanoTime), keeping at most
     * {@code maxFds} descriptors over all the pieces (the rest are closed). EOF before {@code len} bytes
     * is {@link UnixSocketException.Reason#PEER_CLOSED}, with how many bytes had arrived.
     */
    public Message receiveExactly(int len, int maxFds, long deadlineNanos) throws UnixSocketException {
        byte[] out = new byte[len];
        int[] fds = new int[0];
        int closed = 0;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(Math.max(1, len));
            int got = 0;
            try {
                while (got < len) {
                    awaitReady(LibC.POLLIN, deadlineNanos, (len - got) + " more of " + len + " bytes");
                    Received r = receive(buf.asSlice(got), len - got, maxFds - fds.length);
                    if (r.bytes() == -1) continue;
                    int[] joined = Arrays.copyOf(fds, fds.length + r.fds().length);
                    System.arraycopy(r.fds(), 0, joined, fds.length, r.fds().length);
                    fds = joined;
                    closed += r.closedExtras();
                    if (r.bytes() == 0) {
                        throw new UnixSocketException(UnixSocketException.Reason.PEER_CLOSED, description
                                + ": peer closed the connection" + (got == 0 ? "" : " after " + got + " of " + len + " bytes"));
                    }
                    got += (int) r.bytes();
                }
            } catch (UnixSocketException | RuntimeException e) {
                for (int f : fds) LibC.close(f);
                throw e;
            }
            MemorySegment.copy(buf, JAVA_BYTE, 0, out, 0, len);
        }
        return new Message(out, fds, closed);
    }
}
