package dev.jvmm.log;

import org.slf4j.LoggerFactory;

/**
 * jvmm's diagnostics, through slf4j (logback behind it), started only when something is logged:
 * debug messages only with -v, warnings whenever they happen. A run that has nothing to say never
 * initialises the logging framework, which costs tens of milliseconds of start-up.
 */
public final class Log {
    private Log() { }

    private static volatile boolean verbose;

    /** -v: debug messages on, and stack traces with errors. */
    public static void verbose(boolean on) {
        verbose = on;
        if (on) LogSetup.level(true);
    }

    public static boolean verbose() {
        return verbose;
    }

    public static void debug(Class<?> where, String format, Object... args) {
        if (verbose) LoggerFactory.getLogger(where).debug(format, args);
    }

    public static void warn(Class<?> where, String format, Object... args) {
        LoggerFactory.getLogger(where).warn(format, args);
    }
}
