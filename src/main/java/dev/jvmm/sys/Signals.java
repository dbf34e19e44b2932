package dev.jvmm.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Thread-directed signals, used only to kick a vCPU thread out of KVM_RUN: the thread keeps
 * {@link #KICK_SIGNAL} blocked, KVM unblocks it for the duration of KVM_RUN (KVM_SET_SIGNAL_MASK), so
 * a {@code tgkill} makes KVM_RUN return EINTR; the thread then consumes the pending signal with
 * {@code rt_sigtimedwait}. The calls are the kernel's (rt_sigprocmask on its 8-byte sigset), through
 * {@link LibC}'s one downcall. No handler runs, so no Java code ever runs in signal context.
 */
public final class Signals {
    private Signals() { }

    /** SIGURG: ignored by default and unused by HotSpot. */
    public static final int KICK_SIGNAL = 23;
    public static final int SIGINT = 2, SIGTERM = 15;
    public static final int SIG_BLOCK = 0, SIG_UNBLOCK = 1, SIG_SETMASK = 2;
    /** glibc's sigset_t is 1024 bits; the kernel's (what KVM_SET_SIGNAL_MASK takes) is 64. */
    public static final long SIGSET_BYTES = 128, KERNEL_SIGSET_BYTES = 8;

    /** A sigset_t holding just {@code signal}, allocated in {@code arena}. */
    public static MemorySegment sigset(Arena arena, int signal) {
        MemorySegment set = arena.allocate(SIGSET_BYTES, 8);
        set.set(JAVA_LONG, 0, 1L << (signal - 1));
        return set;
    }

    private static volatile long pid;

    /** The calling thread's kernel thread id (gettid), what {@link #kill} takes. */
    public static long currentThreadId() {
        return LibC.syscall(LibC.SYS_GETTID, 0, 0, 0);
    }

    /** Sends {@code signal} to thread {@code tid} of this process (tgkill). Returns 0 or an error number. */
    public static int kill(long tid, int signal) {
        long p = pid;
        if (p == 0) pid = p = LibC.syscall(LibC.SYS_GETPID, 0, 0, 0);
        return LibC.syscall(LibC.SYS_TGKILL, p, tid, signal) == 0 ? 0 : LibC.errno();
    }

    private static void sigprocmask(int how, MemorySegment set, MemorySegment old) {
        long rc;
        try {
            rc = LibC.syscall(LibC.SYS_RT_SIGPROCMASK, how, LibC.addr(set), LibC.addr(old), KERNEL_SIGSET_BYTES, 0, 0);
        } finally {
            Reference.reachabilityFence(set);
            Reference.reachabilityFence(old);
        }
        if (rc != 0) throw new SyscallException("rt_sigprocmask", LibC.errno());
    }

    public static void blockInThisThread(MemorySegment set) {
        sigprocmask(SIG_BLOCK, set, MemorySegment.NULL);
    }

    /** The first 64 signals of the calling thread's blocked mask (what the kernel's sigset holds). */
    public static long currentMask(Arena arena) {
        MemorySegment old = arena.allocate(SIGSET_BYTES, 8);
        sigprocmask(SIG_BLOCK, MemorySegment.NULL, old);
        return old.get(JAVA_LONG, 0);
    }

    /**
     * Consumes {@code set}'s pending signal if there is one, without waiting.
     * @param zeroTimeout a {@code struct timespec} of zeros
     * @return the signal number, or -1 if none was pending
     */
    public static int consumePending(MemorySegment set, MemorySegment zeroTimeout) {
        try {
            return (int) LibC.syscall(LibC.SYS_RT_SIGTIMEDWAIT, LibC.addr(set), 0, LibC.addr(zeroTimeout), KERNEL_SIGSET_BYTES, 0, 0);
        } finally {
            Reference.reachabilityFence(set);
            Reference.reachabilityFence(zeroTimeout);
        }
    }

    /**
     * Gives {@code signal} its default action back if it is ignored (SIG_IGN inherited from the parent,
     * as a non-interactive shell does for SIGINT in background jobs), so a handler can be installed for
     * it; a signal that has a handler keeps it. Returns whether it was ignored.
     */
    public static boolean unignore(int signal) {
        long sigactionBytes = 32; // the kernel's struct sigaction: handler, flags, restorer, 8-byte mask
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment old = arena.allocate(sigactionBytes, 8);
            if (LibC.syscall(LibC.SYS_RT_SIGACTION, signal, 0, LibC.addr(old), KERNEL_SIGSET_BYTES, 0, 0) != 0) {
                throw new SyscallException("rt_sigaction", LibC.errno());
            }
            if (old.get(JAVA_LONG, 0) != 1) return false; // not SIG_IGN: not ours to change
            MemorySegment dfl = arena.allocate(sigactionBytes, 8); // SIG_DFL, no flags, empty mask
            if (LibC.syscall(LibC.SYS_RT_SIGACTION, signal, LibC.addr(dfl), 0, KERNEL_SIGSET_BYTES, 0, 0) != 0) {
                throw new SyscallException("rt_sigaction", LibC.errno());
            }
            return true;
        }
    }
}
