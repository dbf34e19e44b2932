package dev.jvmm.host;

import java.util.List;

/**
 * A stand-in for jvmm in {@link HelperProcessTest}: starts {@code sleep 1000} as a helper, prints its pid
 * and directory, and waits to be killed.
 */
public final class HelperProcessChild {
    private HelperProcessChild() { }

    public static void main(String[] args) throws Exception {
        HelperProcess h = HelperProcess.start("sleeper", dir -> List.of("sleep", "1000"));
        System.out.println("HELPER " + h.pid() + " " + h.directory() + " " + HelperProcess.diesWithJvmm());
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
