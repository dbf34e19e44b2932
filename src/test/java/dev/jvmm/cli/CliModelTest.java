package dev.jvmm.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

import java.io.PrintStream;
import java.io.OutputStream;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLI's models generated at build time (dev.jvmm.build.CliModelProcessor, the *Cli classes) are
 * picocli's reflective models: the same usage help, the same options and parameters with the same
 * attributes, and the same field values after parsing, for every command. A command the generator
 * could not handle would fall back to reflection (slow start-up): that fails here too.
 */
class CliModelTest {
    private static final PrintStream NOWHERE = new PrintStream(OutputStream.nullOutputStream());

    /** A command: a fresh instance, and its generated model for an instance. */
    private record Command<T>(String name, Supplier<T> make, Function<T, CommandSpec> generated, boolean isGenerated) { }

    private static final List<Command<?>> COMMANDS = List.of(
            new Command<>("jvmm", Main::new, MainCli::spec, MainCli.GENERATED),
            new Command<>("run", () -> new RunCommand(NOWHERE), RunCommandCli::spec, RunCommandCli.GENERATED),
            new Command<>("check", CheckCommand::new, CheckCommandCli::spec, CheckCommandCli.GENERATED),
            new Command<>("extract-vmlinux", ExtractVmlinuxCommand::new, ExtractVmlinuxCommandCli::spec, ExtractVmlinuxCommandCli.GENERATED),
            new Command<>("dump-acpi", DumpAcpiCommand::new, DumpAcpiCommandCli::spec, DumpAcpiCommandCli.GENERATED),
            new Command<>("ctl", CtlCommand::new, CtlCommandCli::spec, CtlCommandCli.GENERATED));

    @Test
    void everyCommandHasAGeneratedModel() {
        for (Command<?> c : COMMANDS) assertTrue(c.isGenerated(), c.name() + ": the generator fell back to reflection (see the compiler's warning)");
    }

    @Test
    void usageHelpIsTheReflectiveModels() {
        for (Command<?> c : COMMANDS) {
            CommandLine generated = new CommandLine(generated(c));
            if (c.name().equals("jvmm")) MainCli.addSubcommands(generated); // left to reflection: picocli's own HelpCommand
            assertEquals(usage(new CommandLine(c.make().get())), usage(generated), c.name());
        }
    }

    @Test
    void optionsAndParametersHaveTheReflectiveAttributes() {
        for (Command<?> c : COMMANDS) {
            CommandSpec reflective = new CommandLine(c.make().get()).getCommandSpec();
            CommandSpec generated = new CommandLine(generated(c)).getCommandSpec();
            assertEquals(describe(reflective), describe(generated), c.name());
            assertEquals(reflective.name(), generated.name(), c.name());
            assertEquals(reflective.mixins().keySet(), generated.mixins().keySet(), c.name());
            assertEquals(Arrays.toString(reflective.version()), Arrays.toString(generated.version()), c.name());
            assertEquals(reflective.usageMessage().sortOptions(), generated.usageMessage().sortOptions(), c.name());
        }
    }

    @Test
    void parsingSetsTheSameFields() {
        List<List<String>> runArgs = List.of(
                List.of("k.bin"),
                List.of("--smp", "3", "--mem=64M", "--cmdline", "a b", "k.bin"),
                List.of("--initrd", "x", "--initrd=y", "--disk", "d1", "--disk", "d2,ro", "--net", "tap=t0", "--stats", "k"),
                List.of("--no-acpi", "--no-stdin", "--force", "--rng", "-v", "--timeout", "2s", "--expect", "ok", "--fail-on", "BUG", "k"),
                List.of("--serial-log", "/tmp/x", "--stats-json", "/tmp/y", "--kvm", "/dev/null", "--pit", "user", "--on-reboot", "restart",
                        "--console", "virtio", "--share", "/tmp", "--virtiofsd", "/bin/true", "--cpu-features", "-xsave", "--boot", "pvh",
                        "--format", "elf", "--no-host-decompress", "--api-socket", "/tmp/api", "k"),
                List.of("--host-decompress", "--no-kernel-cache", "k"),
                List.of("--rootfs", "/srv/root,rw", "--modules", "/lib/modules/6.1", "--user", "k", "--", "ls", "-l", "/"),
                List.of("--", "--k"));
        for (List<String> args : runArgs) sameFields(COMMANDS.get(1), args);
        sameFields(COMMANDS.get(2), List.of());
        sameFields(COMMANDS.get(2), List.of("--kvm", "/dev/x"));
        sameFields(COMMANDS.get(3), List.of("in", "out"));
        sameFields(COMMANDS.get(4), List.of("--out", "d", "--smp", "4"));
        sameFields(COMMANDS.get(5), List.of("/tmp/s", "info"));
        sameFields(COMMANDS.get(5), List.of("--timeout", "2s", "/tmp/s", "stop", "status=3"));
    }

    @Test
    void badInputGivesTheSameErrors() {
        List<List<String>> bad = List.of(List.of(), List.of("--smp"), List.of("--smp", "x", "k"), List.of("--nope", "k"), List.of("a", "b"));
        for (List<String> args : bad) {
            assertEquals(error(new CommandLine(COMMANDS.get(1).make().get()), args), error(new CommandLine(generated(COMMANDS.get(1))), args),
                    String.join(" ", args));
        }
        assertEquals(error(new CommandLine(COMMANDS.get(4).make().get()), List.of()), error(new CommandLine(generated(COMMANDS.get(4))), List.of()));
    }

    @SuppressWarnings("unchecked")
    private static <T> CommandSpec generated(Command<T> c) {
        return c.generated().apply(c.make().get());
    }

    @SuppressWarnings("unchecked")
    private static <T> void sameFields(Command<T> c, List<String> args) {
        T a = c.make().get(), b = c.make().get();
        new CommandLine(a).parseArgs(args.toArray(String[]::new));
        new CommandLine(c.generated().apply(b)).parseArgs(args.toArray(String[]::new));
        assertEquals(fields(a), fields(b), c.name() + " " + args);
    }

    private static String error(CommandLine cl, List<String> args) {
        try {
            cl.parseArgs(args.toArray(String[]::new));
            return "(no error)";
        } catch (CommandLine.ParameterException e) {
            return e.getClass().getSimpleName() + ": " + e.getMessage();
        }
    }

    private static String usage(CommandLine cl) {
        return cl.getUsageMessage(CommandLine.Help.Ansi.OFF);
    }

    /** Every field of a command and its mixins, by name (the @Spec fields only as present or not). */
    private static List<String> fields(Object o) {
        List<String> out = new ArrayList<>();
        try {
            for (Field f : o.getClass().getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers())) continue;
                f.setAccessible(true);
                Object v = f.get(o);
                if (v instanceof CommandSpec) out.add(f.getName() + "=<spec>");
                else if (v instanceof SizeOptions m) out.add(f.getName() + "=" + fields(m));
                else if (v instanceof PrintStream) out.add(f.getName() + "=<stream>");
                else out.add(f.getName() + "=" + v);
            }
        } catch (IllegalAccessException e) {
            throw new AssertionError(e);
        }
        return out;
    }

    private static List<String> describe(CommandSpec spec) {
        List<String> out = new ArrayList<>();
        for (OptionSpec o : spec.options()) out.add("option " + Arrays.toString(o.names()) + " " + common(o) + " help=" + o.usageHelp()
                + " version=" + o.versionHelp() + " negatable=" + o.negatable() + " fallback=" + o.fallbackValue());
        for (PositionalParamSpec p : spec.positionalParameters()) out.add("positional " + p.index() + " " + common(p));
        return out;
    }

    private static String common(ArgSpec a) {
        return String.join(" ", "arity=" + a.arity() + (a.arity().isUnspecified() ? "(unspecified)" : ""), "required=" + a.required(),
                "label=" + a.paramLabel(), "description=" + Arrays.toString(a.description()), "default=" + a.defaultValue(),
                "type=" + a.type().getName(), "aux=" + Arrays.toString(a.auxiliaryTypes()), "hidden=" + a.hidden(),
                "split=" + a.splitRegex(), "initial=" + Objects.toString(a.initialValue()), "hasInitial=" + a.hasInitialValue(),
                "interactive=" + a.interactive(), "inherited=" + a.inherited(), "multi=" + a.isMultiValue(),
                "showDefault=" + a.showDefaultValue(), "descriptionKey=" + a.descriptionKey());
    }
}
