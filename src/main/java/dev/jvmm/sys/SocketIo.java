package dev.jvmm.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * Single non-blocking socket calls on raw descriptors, for data paths on the event loop: each is one
 * system call that never waits ({@code MSG_DONTWAIT}) and never raises SIGPIPE ({@code MSG_NOSIGNAL}).
 * Results are a byte count or {@code -errno}; {@code -EAGAIN} ({@link #WOULD_BLOCK}) means "not now".
 * Unlike {@link UnixSocket#send}, nothing is allocated per call.
 */
public final class SocketIo {
    private SocketIo() { }

    public static final int MSG_PEEK = 0x2, MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;
    public static final int SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;
    /** What a call returns when the socket has no data (receive) or no room (send) right now. */
    public static final long WOULD_BLOCK = -Errno.EAGAIN;

    private static final class Calls {
        static final MethodHandle SEND = LibC.withErrno("send", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        static final MethodHandle RECV = LibC.withErrno("recv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        static final MethodHandle SHUTDOWN = LibC.withErrno("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
        static final MethodHandle SOCKET = LibC.withErrno("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        static final MethodHandle CONNECT = LibC.withErrno("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle ACCEPT4 = LibC.withErrno("accept4",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    }

    /** One send(2) of {@code buf[0, len)}: bytes sent (maybe fewer), {@link #WOULD_BLOCK}, or -errno (EPIPE: the peer is gone). */
    public static long send(int fd, MemorySegment buf, long len) {
        while (true) {
            long n;
            try {
                n = (long) Calls.SEND.invokeExact(LibC.capture(), fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            } catch (Throwable t) {
                throw LibC.rethrow(t);
            }
            if (n >= 0) return n;
            int errno = LibC.errno();
            if (errno != Errno.EINTR) return -errno;
        }
    }

    /** One recv(2) into {@code buf[0, len)}: bytes received, 0 at end of stream, {@link #WOULD_BLOCK}, or -errno. */
    public static long recv(int fd, MemorySegment buf, long len) {
        return recv(fd, buf, len, 0);
    }

    /** recv(2) with extra {@code flags} (MSG_PEEK). */
    public static long recv(int fd, MemorySegment buf, long len, int flags) {
        while (true) {
            long n;
            try {
                n = (long) Calls.RECV.invokeExact(LibC.capture(), fd, buf, len, flags | MSG_DONTWAIT);
            } catch (Throwable t) {
                throw LibC.rethrow(t);
            }
            if (n >= 0) return n;
            int errno = LibC.errno();
            if (errno != Errno.EINTR) return -errno;
        }
    }

    /** shutdown(2): 0 or -errno. */
    public static int shutdown(int fd, int how) {
        try {
            int rc = (int) Calls.SHUTDOWN.invokeExact(LibC.capture(), fd, how);
            return rc < 0 ? -LibC.errno() : 0;
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }

    /** accept4(2) of one pending connection, non-blocking and close-on-exec: its descriptor, or -errno (-EAGAIN: none). */
    public static int accept(int listeningFd) {
        while (true) {
            int s;
            try {
                s = (int) Calls.ACCEPT4.invokeExact(LibC.capture(), listeningFd, MemorySegment.NULL, MemorySegment.NULL,
                        UnixSocket.SOCK_CLOEXEC | UnixSocket.SOCK_NONBLOCK);
            } catch (Throwable t) {
                throw LibC.rethrow(t);
            }
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
            int s;
            try {
                s = (int) Calls.SOCKET.invokeExact(LibC.capture(), UnixSocket.AF_UNIX,
                        UnixSocket.SOCK_STREAM | UnixSocket.SOCK_CLOEXEC | UnixSocket.SOCK_NONBLOCK, 0);
                if (s < 0) return -LibC.errno();
                int rc = (int) Calls.CONNECT.invokeExact(LibC.capture(), s, sa, (int) UnixSocket.SOCKADDR_UN.byteSize());
                int errno = rc < 0 ? LibC.errno() : 0;
                LibC.close(s);
                return -errno;
            } catch (Throwable t) {
                throw LibC.rethrow(t);
            }
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
