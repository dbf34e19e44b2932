package dev.jvmm.sys;

import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Every shutdown hook and delete-on-exit file of jvmm's goes through here (ArchitectureTest holds the
 * sources to that), so the end of a run knows whether {@code System.exit} has anything to do.
 *
 * <p>Why it matters: {@link Runtime#exit} first looks up a {@link System.Logger} for its debug line
 * ("Runtime.exit logging", JDK 21 on), which sets up the JDK's logger back end (a service-loader scan of
 * the class path): a few ms of a 100 ms run in a profile of 2026-12-04. A run that registered
 * nothing ends with {@link Runtime#halt} instead, which skips only the hooks and the logger; the JVM's
 * own exit work (its logs, an AOT cache being written) happens either way.
 */
public final class ShutdownHooks {
    private ShutdownHooks() { }

    private static final Set<Thread> HOOKS = ConcurrentHashMap.newKeySet();
    /** A file was marked delete-on-exit: the JDK's own hook must run, and it cannot be taken back. */
    private static volatile boolean deleteOnExit;

    /** {@link Runtime#addShutdownHook}, remembered. */
    public static void add(Thread hook) {
        HOOKS.add(hook);
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /** {@link Runtime#removeShutdownHook}; nothing if the JVM is already shutting down (the hook runs then). */
    public static void remove(Thread hook) {
        try {
            if (Runtime.getRuntime().removeShutdownHook(hook)) HOOKS.remove(hook);
        } catch (IllegalStateException e) {
            // the JVM is shutting down: the hook runs anyway
        }
    }

    /** {@link java.io.File#deleteOnExit} of {@code file}. */
    public static void deleteOnExit(Path file) {
        deleteOnExit = true;
        file.toFile().deleteOnExit();
    }

    /** Whether a hook or a delete-on-exit file is registered: then the process must end through System.exit. */
    public static boolean pending() {
        return deleteOnExit || !HOOKS.isEmpty();
    }

    /**
     * Ends the process with {@code status}: System.out and System.err flushed, then {@link Runtime#halt}
     * when nothing is {@link #pending}, else {@link System#exit}.
     */
    public static void exit(int status) {
        System.out.flush();
        System.err.flush();
        if (!pending()) Runtime.getRuntime().halt(status);
        System.exit(status);
    }
}
