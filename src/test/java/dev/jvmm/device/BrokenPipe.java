package dev.jvmm.device;

import java.io.IOException;
import java.io.OutputStream;

/** An output every write to fails with "Broken pipe", as a stdout whose reader went away. */
public final class BrokenPipe extends OutputStream {
    @Override
    public void write(int b) throws IOException {
        throw new IOException("Broken pipe");
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        throw new IOException("Broken pipe");
    }
}
