package dev.jvmm.sys;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ShutdownHooksTest {
    @Test
    void aRegisteredHookIsPendingUntilRemoved() {
        boolean before = ShutdownHooks.pending(); // another test in this JVM may have left one (a helper's)
        Thread hook = new Thread(() -> { }, "test hook");
        ShutdownHooks.add(hook);
        assertTrue(ShutdownHooks.pending());
        ShutdownHooks.remove(hook);
        assertTrue(ShutdownHooks.pending() == before, "removing the hook left the state as it was");
        assertFalse(Runtime.getRuntime().removeShutdownHook(hook), "the JVM no longer holds the hook");
    }
}
