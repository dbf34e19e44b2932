package dev.jvmm.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Thread-directed signals, used only to kick a vCPU thread out of KVM_RUN: the thread keeps
 * {@link #KICK_SIGNAL} blocked, KVM unblocks it for the duration of KVM_RUN (KVM_SET_SIGNAL_MASK), so
 * a {@code pthread_kill} makes KVM_RUN return EINTR; the thread then consumes the pending signal with
 * {@code sigtimedwait}. No handler runs, so no Java code ever runs in signal context.
 */
public final class Signals {
    private Signals() { }

    /** SIGURG: ignored by default and unused by HotSpot. */
    public static final int KICK_SIGNAL = 23;
    public static final int SIGINT = 2, SIGTERM = 15;
    public static final int SIG_BLOCK = 0, SIG_UNBLOCK = 1, SIG_SETMASK = 2;
    /** glibc's sigset_t is 1024 bits; the kernel's (what KVM_SET_SIGNAL_MASK takes) is 64. */
    public static final long SIGSET_BYTES = 128, KERNEL_SIGSET_BYTES = 8;

    private static final MethodHandle PTHREAD_SELF = LibC.downcall("pthread_self", FunctionDescriptor.of(JAVA_LONG));
    private static final MethodHandle PTHREAD_KILL = LibC.downcall("pthread_kill", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle PTHREAD_SIGMASK = LibC.downcall("pthread_sigmask",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SIGTIMEDWAIT = LibC.withErrno("sigtimedwait",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));

    /** A sigset_t holding just {@code signal}, allocated in {@code arena}. */
    public static MemorySegment sigset(Arena arena, int signal) {
        MemorySegment set = arena.allocate(SIGSET_BYTES, 8);
        set.set(JAVA_LONG, 0, 1L << (signal - 1));
        return set;
    }

    public static long pthreadSelf() {
        try {
            return (long) PTHREAD_SELF.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Returns 0 or an error number (pthread functions do not set errno). */
    public static int pthreadKill(long thread, int signal) {
        try {
            return (int) PTHREAD_KILL.invokeExact(thread, signal);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    public static void blockInThisThread(MemorySegment set) {
        int rc;
        try {
            rc = (int) PTHREAD_SIGMASK.invokeExact(SIG_BLOCK, set, MemorySegment.NULL);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        if (rc != 0) throw new SyscallException("pthread_sigmask", rc);
    }

    /** The first 64 signals of the calling thread's blocked mask (what the kernel's sigset holds). */
    public static long currentMask(Arena arena) {
        MemorySegment old = arena.allocate(SIGSET_BYTES, 8);
        int rc;
        try {
            rc = (int) PTHREAD_SIGMASK.invokeExact(SIG_BLOCK, MemorySegment.NULL, old);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        if (rc != 0) throw new SyscallException("pthread_sigmask", rc);
        return old.get(JAVA_LONG, 0);
    }

    /**
     * Consumes {@code set}'s pending signal if there is one, without waiting.
     * @param zeroTimeout a {@code struct timespec} of zeros
     * @return the signal number, or -1 if none was pending
     */
    public static int consumePending(MemorySegment set, MemorySegment zeroTimeout) {
        try {
            return (int) SIGTIMEDWAIT.invokeExact(LibC.capture(), set, MemorySegment.NULL, zeroTimeout);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static final class Disposition {
        static final MethodHandle SIGNAL = LibC.downcall("signal", FunctionDescriptor.of(ADDRESS, JAVA_INT, ADDRESS));
    }

    /**
     * Gives {@code signal} its default action back if it is ignored (SIG_IGN inherited from the parent,
     * as a non-interactive shell does for SIGINT in background jobs), so a handler can be installed for
     * it; a signal that has a handler keeps it. Returns whether it was ignored.
     */
    public static boolean unignore(int signal) {
        try {
            MemorySegment old = (MemorySegment) Disposition.SIGNAL.invokeExact(signal, MemorySegment.NULL);
            if (old.address() == 1) return true; // SIG_IGN
            MemorySegment unused = (MemorySegment) Disposition.SIGNAL.invokeExact(signal, old); // not ours to change
            return false;
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }
}
