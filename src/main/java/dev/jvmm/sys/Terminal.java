package dev.jvmm.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/** Raw mode for a terminal on stdin, and its restoration. */
public final class Terminal {
    /** glibc's struct termios is 60 bytes; allocate a little more. */
    private static final long TERMIOS_BYTES = 64;
    private static final long C_OFLAG = 4;
    private static final int OPOST = 1;
    private static final int TCSANOW = 0;

    private static final MethodHandle TCGETATTR = LibC.withErrno("tcgetattr", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle TCSETATTR = LibC.withErrno("tcsetattr", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle CFMAKERAW = LibC.downcall("cfmakeraw", FunctionDescriptor.ofVoid(ADDRESS));

    private final int fd;
    private final MemorySegment saved;
    private boolean raw;

    private Terminal(int fd, MemorySegment saved) {
        this.fd = fd;
        this.saved = saved;
    }

    /**
     * Puts the terminal on {@code fd} into raw mode (keeping output post-processing so "\n" still
     * starts a new line) and returns a handle that restores it.
     */
    public static Terminal makeRaw(int fd) {
        MemorySegment saved = Arena.global().allocate(TERMIOS_BYTES, 8);
        try {
            if ((int) TCGETATTR.invokeExact(LibC.capture(), fd, saved) != 0) throw new SyscallException("tcgetattr", LibC.errno());
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment raw = arena.allocate(TERMIOS_BYTES, 8);
                raw.copyFrom(saved);
                CFMAKERAW.invokeExact(raw);
                raw.set(JAVA_INT, C_OFLAG, raw.get(JAVA_INT, C_OFLAG) | OPOST);
                if ((int) TCSETATTR.invokeExact(LibC.capture(), fd, TCSANOW, raw) != 0) {
                    throw new SyscallException("tcsetattr", LibC.errno());
                }
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        Terminal t = new Terminal(fd, saved);
        t.raw = true;
        return t;
    }

    /** Restores the saved settings; safe to call more than once and from any thread. */
    public synchronized void restore() {
        if (!raw) return;
        raw = false;
        try {
            int rc = (int) TCSETATTR.invokeExact(LibC.capture(), fd, TCSANOW, saved);
            if (rc != 0) throw new SyscallException("tcsetattr", LibC.errno());
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
