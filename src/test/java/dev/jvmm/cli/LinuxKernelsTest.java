package dev.jvmm.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LinuxKernelsTest {
    @Test
    void linuxBannerSearchStreams() throws IOException {
        byte[] needle = "Linux version ".getBytes(StandardCharsets.US_ASCII);
        byte[] hay = ("\0\0LLinux versio" + "x".repeat(70000) + "LLinux version 6.1").getBytes(StandardCharsets.US_ASCII);
        assertTrue(LinuxKernels.contains(new ByteArrayInputStream(hay), needle));
        assertFalse(LinuxKernels.contains(new ByteArrayInputStream("Linux versio".getBytes(StandardCharsets.US_ASCII)), needle));
    }
}
