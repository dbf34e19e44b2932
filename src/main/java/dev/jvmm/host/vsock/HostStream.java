package dev.jvmm.host.vsock;

import dev.jvmm.sys.LibC;
import dev.jvmm.sys.SocketIo;

import java.lang.foreign.MemorySegment;

/**
 * The host end of one vsock connection: a connected, non-blocking stream socket. Each call is one
 * system call that never waits; results follow {@link SocketIo}: bytes, 0 at end of stream (read),
 * {@link SocketIo#WOULD_BLOCK}, or -errno. The muxer owns the descriptor (it watches it on the event
 * loop, so only it may close it: a closed number could be reused while still watched).
 */
interface HostStream {
    int fd();

    long read(MemorySegment dst, long len);

    long write(MemorySegment src, long len);

    /** No more bytes go to the host peer: it reads end-of-stream after what was sent. */
    void shutdownWrite();

    void close();

    /** Whether the peer closed both ways (poll says POLLHUP), not just its sending side. */
    boolean hungUp();

    /** A connected socket this stream owns from now on. */
    static HostStream ofSocket(dev.jvmm.sys.UnixSocket socket) {
        return ofSocket(socket.fd(), socket::close);
    }

    /** A socket descriptor this stream owns from now on. */
    static HostStream ofSocket(int fd) {
        return ofSocket(fd, () -> LibC.close(fd));
    }

    private static HostStream ofSocket(int fd, Runnable closer) {
        return new HostStream() {
            private boolean closed;

            @Override
            public int fd() {
                return fd;
            }

            @Override
            public long read(MemorySegment dst, long len) {
                return SocketIo.recv(fd, dst, len);
            }

            @Override
            public long write(MemorySegment src, long len) {
                return SocketIo.send(fd, src, len);
            }

            @Override
            public void shutdownWrite() {
                SocketIo.shutdown(fd, SocketIo.SHUT_WR);
            }

            @Override
            public boolean hungUp() {
                return (SocketIo.pollNow(fd, (short) 0) & LibC.POLLHUP) != 0;
            }

            @Override
            public void close() {
                if (closed) return;
                closed = true;
                closer.run();
            }

            @Override
            public String toString() {
                return "socket fd " + fd;
            }
        };
    }
}
