package dev.jvmm.cli;

import dev.jvmm.loader.LinuxLoader;
import dev.jvmm.loader.LoadException;
import dev.jvmm.vmm.ExitStatus;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code jvmm extract-vmlinux}: the ELF inside a bzImage, as host-side decompression sees it. */
@Command(name = "extract-vmlinux", mixinStandardHelpOptions = true,
        description = "Write the vmlinux ELF inside BZIMAGE (gzip, xz, lzma, lz4, zstd or bzip2 payload) to OUT.",
        footer = {"", "Exit status: 0, or 4 if BZIMAGE cannot be read or decompressed, 2 if OUT cannot be written."})
public final class ExtractVmlinuxCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "BZIMAGE")
    Path bzImage;

    @Parameters(index = "1", paramLabel = "OUT")
    Path out;

    @Override
    public Integer call() {
        var err = spec.commandLine().getErr();
        byte[] vmlinux;
        try {
            // checks the file and its header first and reads only the payload, within bounds
            vmlinux = LinuxLoader.extractVmlinux(bzImage);
        } catch (LoadException e) {
            err.println("jvmm: " + e.getMessage());
            return ExitStatus.BAD_IMAGE;
        }
        try {
            Files.write(out, vmlinux);
        } catch (IOException e) {
            err.println("jvmm: cannot write " + out + ": " + e.getMessage());
            return ExitStatus.USAGE;
        }
        spec.commandLine().getOut().println(out + ": " + vmlinux.length + " bytes");
        return ExitStatus.OK;
    }
}
