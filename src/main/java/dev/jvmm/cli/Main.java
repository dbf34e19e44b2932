package dev.jvmm.cli;

import dev.jvmm.sys.LibC;
import dev.jvmm.sys.ShutdownHooks;
import dev.jvmm.vmm.ExitStatus;
import dev.jvmm.vmm.RunGuard;
import dev.jvmm.vmm.Timeline;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;

/** The jvmm command: {@code jvmm run ...}, {@code jvmm check}, {@code jvmm --version}. */
@Command(name = "jvmm", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "A KVM virtual machine monitor in Java: boots test kernels from scripts and CI.",
        subcommands = {CommandLine.HelpCommand.class},
        footer = {"", "Exit codes: see 'jvmm run --help' and the README."})
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is required: run or check");
    }

    public static void main(String[] args) {
        Timeline.mainEntered();
        LibC.Background.link();
        // picocli looks up converters for java.sql and java.time types by reflection for every command
        // line; jvmm has no such options: 80 classes fewer to load (and to keep in the AOT cache)
        if (System.getProperty("picocli.converters.excludes") == null) {
            System.setProperty("picocli.converters.excludes", "java\\.(sql|time)\\..*");
        }
        int status;
        try {
            status = execute(args, System.out, System.err);
        } catch (Throwable t) { // an Error (out of memory, say) from anywhere: one line, not a stack trace
            System.err.println("jvmm: internal error: " + t);
            if (List.of(args).contains("-v") || List.of(args).contains("--verbose")) t.printStackTrace();
            status = ExitStatus.VMM_ERROR;
        }
        ShutdownHooks.exit(status);
    }

    /** Runs the CLI with the given streams and returns the exit status (the tests call this). */
    public static int execute(String[] args, PrintStream out, PrintStream err) {
        try (RunGuard guard = RunGuard.install(err)) { // signals end the process from here on
            return executeGuarded(args, out, err);
        }
    }

    /** The subcommands, in the order the help lists them. */
    static final List<String> SUBCOMMANDS = List.of("run", "check", "ctl", "extract-vmlinux", "dump-acpi");

    private static int executeGuarded(String[] args, PrintStream out, PrintStream err) {
        // The models come from the annotations at build time (the generated *Cli classes), so no
        // reflection runs; a run builds only its own subcommand's model. Anything else (help, --version,
        // a mistyped command) gets all of them, so picocli's help and suggestions see every command.
        CommandLine cl = new CommandLine(MainCli.spec(new Main()));
        String first = args.length > 0 ? args[0] : "";
        boolean all = !SUBCOMMANDS.contains(first);
        if (all) MainCli.addSubcommands(cl);
        for (String name : SUBCOMMANDS) {
            if (all || name.equals(first)) cl.addSubcommand(name, new CommandLine(subcommand(name, err)));
        }
        // picocli's own Path converter calls Paths.get by reflection, which spins a method accessor at
        // run time (a few ms of start-up in a profile of 2026-12-04); the same conversion, directly
        cl.registerConverter(java.nio.file.Path.class, java.nio.file.Path::of);
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        cl.setParameterExceptionHandler((ex, a) -> {
            err.println("jvmm: " + ex.getMessage() + " (see '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help')");
            return ExitStatus.USAGE;
        });
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            err.println("jvmm: internal error: " + ex);
            if (verbose(parseResult)) ex.printStackTrace(err);
            else err.println("jvmm: run with -v for details");
            return ExitStatus.VMM_ERROR;
        });
        return cl.execute(args);
    }

    private static CommandLine.Model.CommandSpec subcommand(String name, PrintStream err) {
        return switch (name) {
            case "run" -> {
                CommandLine.Model.CommandSpec run = RunCommandCli.spec(new RunCommand(err));
                List<String> footer = new ArrayList<>(List.of("", "Exit codes:"));
                footer.addAll(ExitStatus.HELP);
                run.usageMessage().footer(footer.toArray(String[]::new));
                yield run;
            }
            case "check" -> CheckCommandCli.spec(new CheckCommand());
            case "ctl" -> CtlCommandCli.spec(new CtlCommand());
            case "extract-vmlinux" -> ExtractVmlinuxCommandCli.spec(new ExtractVmlinuxCommand());
            case "dump-acpi" -> DumpAcpiCommandCli.spec(new DumpAcpiCommand());
            default -> throw new IllegalArgumentException(name);
        };
    }

    private static boolean verbose(CommandLine.ParseResult pr) {
        for (CommandLine.ParseResult p = pr; p != null; p = p.subcommand()) {
            if (p.hasMatchedOption("-v")) return true;
        }
        return false;
    }

    static void configureLogging(boolean verbose) {
        dev.jvmm.log.Log.verbose(verbose);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"jvmm " + (v == null ? "(development build)" : v),
                    "Java " + Runtime.version() + " on " + System.getProperty("os.name") + " " + System.getProperty("os.arch")};
        }
    }
}
