package dev.jvmm.loader;

import dev.jvmm.memory.Chunk;
import dev.jvmm.arch.x86.EntryState;

import dev.jvmm.arch.x86.Layout;
import java.nio.file.Path;
import java.util.List;

/**
 * kvmtool-style flat binaries: the whole file is copied to {@link Layout#FLAT_LOAD} (0x1000:0000) and
 * entered in real mode with CS = DS = ES = SS = 0x1000, IP = 0, SP = 0x8000. A command line is
 * ignored (nothing in the convention passes one); modules/initrd are rejected.
 */
public final class FlatLoader {
    private FlatLoader() { }

    public static BootImage load(Path file, byte[] image, LoadOptions opts) throws LoadException {
        if (!opts.modules().isEmpty()) {
            throw new LoadException(file + ": an initrd or modules cannot be used with a flat binary kernel"
                    + " (use a multiboot kernel)");
        }
        long ramEnd = Math.min(Layout.lowRamSize(opts.memSize()), Layout.MMIO_HOLE_START);
        long end = Layout.FLAT_LOAD + image.length;
        if (end > ramEnd) {
            throw new LoadException(file + ": flat binary too large for guest memory: " + image.length
                    + " bytes at " + Bytes.hex(Layout.FLAT_LOAD) + " would end at " + Bytes.hex(end)
                    + ", RAM ends at " + Bytes.hex(ramEnd));
        }
        return new BootImage(KernelFormat.FLAT,
                List.of(new Chunk("flat binary " + file.getFileName(), Layout.FLAT_LOAD, image, 0)),
                new EntryState.RealMode(Layout.FLAT_CS, 0, Layout.FLAT_SP));
    }
}
