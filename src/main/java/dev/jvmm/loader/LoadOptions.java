package dev.jvmm.loader;

import java.nio.file.Path;
import java.util.List;

/**
 * What the user asked for that a loader needs to know.
 *
 * @param memSize  guest RAM size in bytes (RAM layout per {@link dev.jvmm.arch.x86.Layout})
 * @param cmdline  kernel command line, may be empty
 * @param modules  initrd / multiboot modules, in order; each may be followed by its own string
 */
public record LoadOptions(long memSize, String cmdline, List<Path> modules) {
    public LoadOptions {
        cmdline = cmdline == null ? "" : cmdline;
        modules = List.copyOf(modules);
    }
}
