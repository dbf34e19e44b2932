package dev.jvmm.cli;

import dev.jvmm.arch.x86.acpi.AcpiConfig;
import dev.jvmm.arch.x86.acpi.AcpiTables;
import dev.jvmm.vmm.ExitStatus;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code jvmm dump-acpi}: write the ACPI tables a VM would get to files, for {@code iasl -d}. */
@Command(name = "dump-acpi", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write the ACPI tables (RSDP, XSDT, FADT, MADT, DSDT) a VM would get into DIR as NAME.dat files; "
                + "'iasl -d DIR/*.dat' disassembles them.")
public final class DumpAcpiCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @CommandLine.Mixin
    SizeOptions size;

    @Option(names = "--out", paramLabel = "DIR", required = true, description = "Directory to write the tables to (created if missing).")
    Path out;

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }

    @Override
    public Integer call() {
        int cpus = size.cpus;
        if (cpus < 1 || cpus > AcpiTables.MAX_CPUS) {
            throw usage("--smp must be between 1 and " + AcpiTables.MAX_CPUS + " (got " + cpus + ")");
        }
        try {
            size.memBytes(); // the tables do not depend on it yet; a malformed size is still an error
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        if (Files.exists(out) && !Files.isDirectory(out)) throw usage("--out " + out + " is not a directory");
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter stderr = spec.commandLine().getErr();
        AcpiTables.Layouted tables = AcpiTables.build(new AcpiConfig(cpus));
        try {
            Files.createDirectories(out);
            for (Map.Entry<String, byte[]> t : tables.tables().entrySet()) {
                Path file = out.resolve(t.getKey() + ".dat");
                Files.write(file, t.getValue());
                stdout.printf("%s: %d bytes at 0x%x%n", file, t.getValue().length, tables.address(t.getKey()));
            }
        } catch (IOException e) {
            stdout.flush();
            String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) why = f.getFile() + ": " + f.getReason();
            stderr.println("jvmm: cannot write the tables to " + out + ": " + why);
            stderr.flush();
            return ExitStatus.OUTPUT_FAILED;
        }
        stdout.flush();
        return ExitStatus.OK;
    }
}
