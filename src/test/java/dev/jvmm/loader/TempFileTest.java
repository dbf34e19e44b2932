package dev.jvmm.loader;

import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Loader tests that write their images and initrds to files: a fresh directory for each test. */
abstract class TempFileTest {
    @TempDir
    Path dir;

    /** {@code data} as the file {@code name} in the test's directory. */
    Path write(String name, byte[] data) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, data);
        return p;
    }
}
