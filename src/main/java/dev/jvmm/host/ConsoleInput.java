package dev.jvmm.host;

import dev.jvmm.event.EventLoop;

import dev.jvmm.device.ConsoleEndpoint;
import dev.jvmm.sys.Errno;
import dev.jvmm.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Host stdin to the guest's UART, on the event loop. Input that the UART's FIFO cannot take yet is
 * kept and offered again when the guest makes room, so nothing typed or piped is lost. On a terminal,
 * Ctrl-A is an escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends a Ctrl-A.
 */
public final class ConsoleInput {
    static final int CTRL_A = 0x01;

    private final int fd;
    private final EventLoop loop;
    private final ConsoleEndpoint sink;
    private final boolean escapes;
    private final Runnable quit;
    private final MemorySegment readBuf = Arena.ofAuto().allocate(4096);
    private final byte[] pending = new byte[4096];
    private int pendingOff, pendingLen;
    private boolean watching;
    private boolean eof;
    private boolean escapeSeen;

    /**
     * @param escapes whether Ctrl-A is an escape (on a terminal in raw mode)
     * @param quit    what Ctrl-A x does: end the run
     */
    public ConsoleInput(int fd, EventLoop loop, ConsoleEndpoint sink, boolean escapes, Runnable quit) {
        this.fd = fd;
        this.loop = loop;
        this.sink = sink;
        this.escapes = escapes;
        this.quit = quit;
        sink.onInputSpace(this::spaceAvailable);
    }

    public void start() {
        setWatching(true);
    }

    /** The guest made room in its receive FIFO. Any thread. */
    public void spaceAvailable() {
        loop.execute(this::drain);
    }

    private void setWatching(boolean on) {
        if (on == watching || (on && eof)) return;
        watching = on;
        if (on) loop.watch(fd, (f, revents) -> readInput(revents));
        else loop.unwatch(fd);
    }

    private void readInput(short revents) {
        if ((revents & LibC.POLLNVAL) != 0) {
            ended();
            return;
        }
        long n = LibC.read(fd, readBuf, readBuf.byteSize());
        if (n < 0) {
            int errno = LibC.errno();
            if (errno == Errno.EAGAIN || errno == Errno.EINTR) return;
            n = 0;
        }
        if (n == 0) { // end of input: the guest gets no more, and the endpoint may tell it so
            ended();
            return;
        }
        pendingOff = 0;
        pendingLen = 0;
        for (int i = 0; i < n; i++) {
            int b = readBuf.get(JAVA_BYTE, i) & 0xff;
            if (escapes && escapeSeen) {
                escapeSeen = false;
                if (b == 'x' || b == 'X') {
                    drain(); // what was typed before the escape still reaches the guest
                    setWatching(false);
                    quit.run();
                    return;
                }
                if (b != CTRL_A) continue; // unknown escape: dropped, like QEMU
            } else if (escapes && b == CTRL_A) {
                escapeSeen = true;
                continue;
            }
            pending[pendingLen++] = (byte) b;
        }
        drain();
    }

    /** Stdin is done. Reads stop only once everything read was taken, so the endpoint has it all now. */
    private void ended() {
        eof = true;
        setWatching(false);
        sink.endOfInput();
    }

    private void drain() {
        if (pendingLen > 0) {
            int taken = sink.offer(pending, pendingOff, pendingLen);
            pendingOff += taken;
            pendingLen -= taken;
        }
        // Read more from stdin only once the guest has taken everything read so far.
        setWatching(pendingLen == 0);
    }
}
