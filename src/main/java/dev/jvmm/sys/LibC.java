package dev.jvmm.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.ref.Reference;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The system calls jvmm makes, as FFM downcalls. Each returns what libc returns; a failing call's
 * errno is captured per thread and read with {@link #errno()} right after the call.
 *
 * <p>Every call goes through one downcall handle of one shape, libc's {@code long syscall(long number,
 * ...)} with six long arguments (pointers passed as addresses): linking a downcall handle costs 10-15
 * ms at start-up for each new shape (measured: a dozen shapes took about 75 ms more than one), and the
 * first one far more. Only strerror, used on the way to an error message, has a handle of its own.
 */
public final class LibC {
    private LibC() { }

    static final Linker LINKER = Linker.nativeLinker();
    static final SymbolLookup LOOKUP = LINKER.defaultLookup();
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    /** Where the JDK's capture state keeps errno (a holder: not a C header fact for KvmApiHeaderTest). */
    private static final class Capture {
        static final long ERRNO = CAPTURE_LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement("errno"));
    }
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    /** One errno capture buffer per thread: the downcall writes it, the same thread reads it. */
    private static final ThreadLocal<MemorySegment> CAPTURE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));

    public static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CLOEXEC = 0x80000, O_NONBLOCK = 0x800;
    public static final int PROT_READ = 1, PROT_WRITE = 2;
    public static final int MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    public static final int MADV_HUGEPAGE = 14, MADV_DONTDUMP = 16;
    public static final int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;
    public static final short POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 16, POLLNVAL = 32;
    public static final MemorySegment MAP_FAILED = MemorySegment.ofAddress(-1L);
    static final int AT_FDCWD = -100;

    // x86-64 system call numbers (<sys/syscall.h>), checked against the headers by KvmApiHeaderTest
    static final long SYS_READ = 0, SYS_WRITE = 1, SYS_CLOSE = 3, SYS_POLL = 7, SYS_MMAP = 9, SYS_MUNMAP = 11,
            SYS_RT_SIGACTION = 13, SYS_RT_SIGPROCMASK = 14, SYS_IOCTL = 16, SYS_MADVISE = 28, SYS_GETPID = 39,
            SYS_SOCKET = 41, SYS_CONNECT = 42, SYS_SENDTO = 44, SYS_RECVFROM = 45, SYS_SENDMSG = 46, SYS_RECVMSG = 47,
            SYS_SHUTDOWN = 48, SYS_BIND = 49, SYS_LISTEN = 50,
            SYS_SOCKETPAIR = 53, SYS_FCNTL = 72, SYS_FCHMOD = 91, SYS_FTRUNCATE = 77, SYS_RT_SIGTIMEDWAIT = 128, SYS_GETTID = 186,
            SYS_TGKILL = 234, SYS_OPENAT = 257, SYS_PREADV = 295, SYS_PWRITEV = 296, SYS_ACCEPT4 = 288, SYS_EVENTFD2 = 290, SYS_MEMFD_CREATE = 319;

    static MethodHandle downcall(String name, FunctionDescriptor fd, Linker.Option... options) {
        MemorySegment symbol = LOOKUP.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
        return LINKER.downcallHandle(symbol, fd, options);
    }

    /** A downcall whose first argument is this thread's errno capture buffer (see {@link #capture()}). */
    static MethodHandle withErrno(String name, FunctionDescriptor fd, Linker.Option... more) {
        Linker.Option[] options = new Linker.Option[more.length + 1];
        options[0] = CAPTURE_ERRNO;
        System.arraycopy(more, 0, options, 1, more.length);
        return downcall(name, fd, options);
    }

    /** This thread's errno capture buffer; pass it as the first argument of an errno-capturing handle. */
    public static MemorySegment capture() {
        return CAPTURE.get();
    }

    /** The errno of this thread's last failing errno-capturing call. */
    public static int errno() {
        return CAPTURE.get().get(JAVA_INT, Capture.ERRNO);
    }

    /** errno read from an explicit capture buffer (the vCPU loop keeps its own to avoid the thread-local). */
    public static int errno(MemorySegment capture) {
        return capture.get(JAVA_INT, Capture.ERRNO);
    }

    public static MemorySegment newCapture(Arena arena) {
        return arena.allocate(CAPTURE_LAYOUT);
    }

    /**
     * Links the system call handle on a thread of its own, so the 20-50 ms it takes (the FFM linker's
     * start-up and this one downcall shape) overlaps what the caller does meanwhile (parsing options,
     * reading the kernel) instead of delaying the first call. A thread that needs the handle before it
     * is ready waits for it (class initialization). Call it as {@code LibC.Background.link()}: that
     * does not initialize LibC on the calling thread, which is part of the work.
     */
    public static final class Background {
        private Background() { }

        public static void link() {
            Thread.ofPlatform().name("jvmm link").daemon(true).start(Background::run);
        }

        private static void run() {
            try {
                Sys.SYSCALL.type();
            } catch (Throwable t) {
                // the first real call reports it
            }
        }
    }

    /**
     * The one handle. {@code syscall} is declared variadic in C, but it is linked here as a plain
     * function of seven longs, without {@code Linker.Option.firstVariadicArg(1)}. On x86-64 (System V)
     * both pass every argument here in the same registers and stack slot. The one difference is
     * {@code %al}, which a variadic caller sets to the number of vector registers it used. Only a
     * callee that saves vector registers for {@code va_arg} reads it. glibc's {@code syscall} is
     * hand-written assembly whose first instruction overwrites {@code %rax} with the call number
     * (README, "FFM notes"). The option made the JDK bind one more argument (the
     * vector count) onto the handle: 9 more classes spun at link time, on the start-up's critical
     * path (measured 2026-12-03: 31 classes against 22).
     */
    private static final class Sys {
        static final MethodHandle SYSCALL = withErrno("syscall", FunctionDescriptor.of(JAVA_LONG,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
    }

    private static final class Strerror {
        static final MethodHandle STRERROR = downcall("strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    /**
     * {@code syscall(nr, a, b, c, d, e, f)} with {@code capture} as the errno buffer: the result, or -1
     * with errno set. Segments passed by address must stay reachable until it returns (see {@link #addr}).
     */
    static long syscall(MemorySegment capture, long nr, long a, long b, long c, long d, long e, long f) {
        try {
            return (long) Sys.SYSCALL.invokeExact(capture, nr, a, b, c, d, e, f);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static long syscall(long nr, long a, long b, long c, long d, long e, long f) {
        return syscall(capture(), nr, a, b, c, d, e, f);
    }

    static long syscall(long nr, long a, long b, long c) {
        return syscall(capture(), nr, a, b, c, 0, 0, 0);
    }

    /**
     * The address of a native segment, to pass to {@link #syscall}; the caller keeps {@code s} reachable
     * until the call returns ({@link Reference#reachabilityFence}), so an automatic arena cannot free it
     * meanwhile. NULL is 0; a heap segment has no address a system call could use.
     */
    static long addr(MemorySegment s) {
        if (!s.isNative()) throw new IllegalArgumentException("a system call needs native memory, not a heap segment");
        return s.address();
    }

    public static int open(String path, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            return (int) syscall(SYS_OPENAT, AT_FDCWD, addr(arena.allocateFrom(path)), flags);
        }
    }

    public static int close(int fd) {
        return (int) syscall(SYS_CLOSE, fd, 0, 0);
    }

    public static long read(int fd, MemorySegment buf, long len) {
        try {
            return syscall(SYS_READ, fd, addr(buf), len);
        } finally {
            Reference.reachabilityFence(buf);
        }
    }

    public static long write(int fd, MemorySegment buf, long len) {
        try {
            return syscall(SYS_WRITE, fd, addr(buf), len);
        } finally {
            Reference.reachabilityFence(buf);
        }
    }

    /**
     * preadv(2) / pwritev(2) at file offset {@code offset} over {@code count} {@code struct iovec}s
     * (address, length: 16 bytes each) in {@code iov}: bytes moved, or -1 with errno. The buffers the
     * iovecs name are the caller's to keep mapped until it returns.
     */
    public static long preadv(int fd, MemorySegment iov, int count, long offset) {
        try {
            return syscall(capture(), SYS_PREADV, fd, addr(iov), count, offset, 0, 0); // pos_l, pos_h: one 64-bit offset
        } finally {
            Reference.reachabilityFence(iov);
        }
    }

    public static long pwritev(int fd, MemorySegment iov, int count, long offset) {
        try {
            return syscall(capture(), SYS_PWRITEV, fd, addr(iov), count, offset, 0, 0);
        } finally {
            Reference.reachabilityFence(iov);
        }
    }

    public static int eventfd(int initval, int flags) {
        return (int) syscall(SYS_EVENTFD2, Integer.toUnsignedLong(initval), flags, 0);
    }

    /** poll(2) over an array of {@code struct pollfd} (see {@link #POLLFD}). */
    public static int poll(MemorySegment fds, long nfds, int timeoutMs) {
        try {
            return (int) syscall(SYS_POLL, addr(fds), nfds, timeoutMs);
        } finally {
            Reference.reachabilityFence(fds);
        }
    }

    /** TCGETS: the ioctl isatty(3) makes; its kernel {@code struct termios} is 36 bytes. */
    static final long TCGETS = 0x5401;

    public static boolean isatty(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            return syscall(SYS_IOCTL, fd, TCGETS, addr(arena.allocate(64, 8))) == 0;
        }
    }

    public static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) Strerror.STRERROR.invokeExact(errno);
            return s.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static MemorySegment mmap(MemorySegment addr, long len, int prot, int flags, int fd, long offset) {
        try {
            return MemorySegment.ofAddress(syscall(capture(), SYS_MMAP, addr(addr), len, prot, flags, fd, offset));
        } finally {
            Reference.reachabilityFence(addr);
        }
    }

    public static int munmap(MemorySegment addr, long len) {
        return (int) syscall(SYS_MUNMAP, addr(addr), len, 0);
    }

    public static int madvise(MemorySegment addr, long len, int advice) {
        return (int) syscall(SYS_MADVISE, addr(addr), len, advice);
    }

    public static int ioctl(int fd, long request, MemorySegment arg) {
        try {
            return (int) syscall(SYS_IOCTL, fd, request, addr(arg));
        } finally {
            Reference.reachabilityFence(arg);
        }
    }

    public static int ioctl(int fd, long request, long arg) {
        return (int) syscall(SYS_IOCTL, fd, request, arg);
    }

    /** ioctl with an integer argument and a caller-owned capture buffer: the allocation-free KVM_RUN path. */
    public static int ioctl(MemorySegment capture, int fd, long request, long arg) {
        return (int) syscall(capture, SYS_IOCTL, fd, request, arg, 0, 0, 0);
    }

    /** {@code struct pollfd { int fd; short events; short revents; }} */
    public static final StructLayout POLLFD = MemoryLayout.structLayout(
            JAVA_INT.withName("fd"), java.lang.foreign.ValueLayout.JAVA_SHORT.withName("events"),
            java.lang.foreign.ValueLayout.JAVA_SHORT.withName("revents")).withName("pollfd");
}
