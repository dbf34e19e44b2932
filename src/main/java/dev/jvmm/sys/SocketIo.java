package dev.jvmm.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * Single non-blocking socket calls on raw descriptors, for data paths on the event loop: each is one
 * system call that never waits ({@code MSG_DONTWAIT}) and never raises SIGPIPE ({@code MSG_NOSIGNAL}).
 * Results are a byte count or {@code -errno}; {@code -EAGAIN} ({@link #WOULD_BLOCK}) means "not now".
 * Unlike {@link UnixSocket#send}, nothing is allocated per call; like every call, they go through
 * {@link LibC}'s one {@code syscall(2)} handle (sendto/recvfrom without an address for send/recv).
 */
public final class SocketIo {
    private SocketIo() { }

    public static final int MSG_PEEK = 0x2, MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;
    public static final int SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;
    /** What a call returns when the socket has no data (receive) or no room (send) right now. */
    public static final long WOULD_BLOCK = -Errno.EAGAIN;

    /** One send(2) of {@code buf[0, len)}: bytes sent (maybe fewer), {@link #WOULD_BLOCK}, or -errno (EPIPE: the peer is gone). */
    public static long send(int fd, MemorySegment buf, long len) {
        return transfer(LibC.SYS_SENDTO, fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    }

    /** One recv(2) into {@code buf[0, len)}: bytes received, 0 at end of stream, {@link #WOULD_BLOCK}, or -errno. */
    public static long recv(int fd, MemorySegment buf, long len) {
        return recv(fd, buf, len, 0);
    }

    /** recv(2) with extra {@code flags} (MSG_PEEK). */
    public static long recv(int fd, MemorySegment buf, long len, int flags) {
        return transfer(LibC.SYS_RECVFROM, fd, buf, len, flags | MSG_DONTWAIT);
    }

    /** sendto(2) or recvfrom(2) ({@code nr}) of {@code buf[0, len)} with {@code flags}, again after EINTR: bytes, or -errno. */
    private static long transfer(long nr, int fd, MemorySegment buf, long len, int flags) {
        try {
            while (true) {
                long n = LibC.syscall(nr, fd, LibC.addr(buf), len, flags, 0, 0);
                if (n >= 0) return n;
                int errno = LibC.errno();
                if (errno != Errno.EINTR) return -errno;
            }
        } finally {
            Reference.reachabilityFence(buf);
        }
    }

    /** shutdown(2): 0 or -errno. */
    public static int shutdown(int fd, int how) {
        int rc = (int) LibC.syscall(LibC.SYS_SHUTDOWN, fd, how, 0);
        return rc < 0 ? -LibC.errno() : 0;
    }

    /** accept4(2) of one pending connection, non-blocking and close-on-exec: its descriptor, or -errno (-EAGAIN: none). */
    public static int accept(int listeningFd) {
        while (true) {
            int s = (int) LibC.syscall(LibC.SYS_ACCEPT4, listeningFd, 0, 0, UnixSocket.SOCK_CLOEXEC | UnixSocket.SOCK_NONBLOCK, 0, 0);
            if (s >= 0) return s;
            int errno = LibC.errno();
            if (errno != Errno.EINTR && errno != 103 /* ECONNABORTED: that one is gone, try the next */) return -errno;
        }
    }

    /**
     * One non-blocking connect(2) to the UNIX socket at {@code path}, closed again at once: 0 when
     * someone listens there, else -errno (ECONNREFUSED: a socket nobody listens on; EAGAIN: a
     * listener whose backlog is full).
     */
    public static int probeConnect(java.nio.file.Path path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa;
            try {
                sa = UnixSocket.sockaddr(arena, path);
            } catch (UnixSocketException e) {
                return -Errno.EINVAL;
            }
            int s = (int) LibC.syscall(LibC.SYS_SOCKET, UnixSocket.AF_UNIX,
                    UnixSocket.SOCK_STREAM | UnixSocket.SOCK_CLOEXEC | UnixSocket.SOCK_NONBLOCK, 0);
            if (s < 0) return -LibC.errno();
            int rc = (int) LibC.syscall(LibC.SYS_CONNECT, s, LibC.addr(sa), UnixSocket.SOCKADDR_UN.byteSize());
            int errno = rc < 0 ? LibC.errno() : 0;
            LibC.close(s);
            return -errno;
        }
    }

    /** The poll(2) events {@code fd} has right now (0 if none), without waiting. */
    public static short pollNow(int fd, short events) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pfd = arena.allocate(LibC.POLLFD);
            pfd.set(JAVA_INT, 0, fd);
            pfd.set(JAVA_SHORT, 4, events);
            int rc = LibC.poll(pfd, 1, 0);
            return rc <= 0 ? 0 : pfd.get(JAVA_SHORT, 6);
        }
    }
}
