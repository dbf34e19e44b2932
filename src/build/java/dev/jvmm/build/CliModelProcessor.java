package dev.jvmm.build;

import javax.annotation.processing.AbstractProcessor;
import javax.annotation.processing.RoundEnvironment;
import javax.annotation.processing.SupportedAnnotationTypes;
import javax.lang.model.SourceVersion;
import javax.lang.model.element.AnnotationMirror;
import javax.lang.model.element.AnnotationValue;
import javax.lang.model.element.Element;
import javax.lang.model.element.ElementKind;
import javax.lang.model.element.ExecutableElement;
import javax.lang.model.element.Modifier;
import javax.lang.model.element.TypeElement;
import javax.lang.model.element.VariableElement;
import javax.lang.model.type.DeclaredType;
import javax.lang.model.type.TypeKind;
import javax.lang.model.type.TypeMirror;
import javax.lang.model.util.ElementFilter;
import javax.tools.Diagnostic;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Build-time code generation for jvmm's CLI: for each class annotated with picocli's {@code @Command},
 * writes {@code <Class>Cli} with {@code static CommandSpec spec(<Class> command)}, the same picocli model
 * that {@code new CommandLine(command)} would build by reflection, built with picocli's programmatic API
 * and bound to the command's fields directly.
 *
 * <p>Why: reading annotations at run time makes the JDK spin a proxy class per annotation type, and
 * picocli reflects over every field; together that was the largest part of jvmm's start-up (see the
 * README's start-up table). The annotations stay the single description of the options: this only
 * reads them earlier.
 *
 * <p>What it understands is what jvmm uses (listed in {@link #OPTION_ATTRIBUTES} and the others); a
 * command using anything else gets a {@code spec} that falls back to picocli's reflection, with a
 * compiler warning saying so. {@code CliModelTest} checks that every command's generated model equals
 * the reflective one (usage help, options, parse results).
 *
 * <p>Compiled before the main sources (pom.xml, antrun's javac into target/build-classes) and run by
 * javac with {@code -processor}; it is not part of jvmm.jar.
 */
@SupportedAnnotationTypes("picocli.CommandLine.Command")
public final class CliModelProcessor extends AbstractProcessor {
    static final String COMMAND = "picocli.CommandLine.Command", OPTION = "picocli.CommandLine.Option",
            PARAMETERS = "picocli.CommandLine.Parameters", MIXIN = "picocli.CommandLine.Mixin", SPEC = "picocli.CommandLine.Spec";
    static final Set<String> COMMAND_ATTRIBUTES = Set.of("name", "description", "footer", "header", "sortOptions",
            "mixinStandardHelpOptions", "versionProvider", "subcommands");
    static final Set<String> OPTION_ATTRIBUTES = Set.of("names", "paramLabel", "description", "defaultValue", "required",
            "arity", "hidden", "split");
    static final Set<String> PARAMETERS_ATTRIBUTES = Set.of("index", "paramLabel", "description", "defaultValue", "arity",
            "hidden", "split");
    static final String SPEC_TYPE = "picocli.CommandLine.Model.CommandSpec";

    @Override
    public SourceVersion getSupportedSourceVersion() {
        return SourceVersion.latestSupported();
    }

    /** A command or mixin field bound to an option or positional parameter. */
    private record Binding(String path, TypeMirror type, String kind, Map<String, Object> attributes) { }

    /** Something the generator does not handle: the command falls back to reflection. */
    private static final class Unsupported extends Exception {
        Unsupported(String message) {
            super(message);
        }
    }

    @Override
    public boolean process(Set<? extends TypeElement> annotations, RoundEnvironment round) {
        TypeElement command = processingEnv.getElementUtils().getTypeElement(COMMAND);
        if (command == null) return false;
        for (Element e : round.getElementsAnnotatedWith(command)) {
            if (e.getKind() != ElementKind.CLASS) continue;
            TypeElement type = (TypeElement) e;
            String source;
            try {
                source = generate(type);
            } catch (Unsupported u) {
                processingEnv.getMessager().printMessage(Diagnostic.Kind.WARNING, type.getSimpleName() + ": " + u.getMessage()
                        + "; its generated CLI model falls back to picocli's reflection (slower start-up)", type);
                source = fallback(type);
            }
            write(type, source);
        }
        return false;
    }

    private void write(TypeElement type, String source) {
        String name = type.getQualifiedName() + "Cli";
        try (PrintWriter w = new PrintWriter(processingEnv.getFiler().createSourceFile(name, type).openWriter())) {
            w.print(source);
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    private String packageOf(TypeElement type) {
        return processingEnv.getElementUtils().getPackageOf(type).getQualifiedName().toString();
    }

    private String header(TypeElement type) {
        return "package " + packageOf(type) + ";\n\n"
                + "/** Generated by dev.jvmm.build.CliModelProcessor from the picocli annotations of " + type.getSimpleName()
                + ": its command model without reflection. */\n"
                + "@javax.annotation.processing.Generated(\"dev.jvmm.build.CliModelProcessor\")\n"
                + "final class " + type.getSimpleName() + "Cli {\n"
                + "    private " + type.getSimpleName() + "Cli() { }\n\n";
    }

    private String fallback(TypeElement type) {
        return header(type)
                + "    static picocli.CommandLine.Model.CommandSpec spec(" + type.getSimpleName() + " c) {\n"
                + "        return picocli.CommandLine.Model.CommandSpec.forAnnotatedObject(c);\n"
                + "    }\n\n"
                + "    static void addSubcommands(picocli.CommandLine cl) {\n    }\n\n"
                + "    static final boolean GENERATED = false;\n}\n";
    }

    private String generate(TypeElement type) throws Unsupported {
        if (!type.getModifiers().contains(Modifier.FINAL)) throw new Unsupported("not final (a subclass could add options)");
        if (type.getSuperclass().getKind() == TypeKind.DECLARED
                && !((DeclaredType) type.getSuperclass()).asElement().toString().equals("java.lang.Object")) {
            throw new Unsupported("extends another class");
        }
        Map<String, Object> cmd = attributes(find(type, COMMAND), COMMAND_ATTRIBUTES);
        for (ExecutableElement m : ElementFilter.methodsIn(type.getEnclosedElements())) {
            for (AnnotationMirror a : m.getAnnotationMirrors()) {
                if (a.getAnnotationType().toString().startsWith("picocli.")) throw new Unsupported("annotated method " + m);
            }
        }
        String simple = type.getSimpleName().toString();
        StringBuilder sb = new StringBuilder(header(type));
        List<Binding> bindings = new ArrayList<>();
        List<String> specFields = new ArrayList<>();
        List<String> body = new ArrayList<>();
        StringBuilder mixins = new StringBuilder();
        for (VariableElement f : ElementFilter.fieldsIn(type.getEnclosedElements())) {
            String name = f.getSimpleName().toString();
            AnnotationMirror option = find(f, OPTION), params = find(f, PARAMETERS), mixin = find(f, MIXIN), spec = find(f, SPEC);
            checkOnlyKnownAnnotations(f);
            if (spec != null) {
                if (!f.asType().toString().equals(SPEC_TYPE)) throw new Unsupported("@Spec on " + name + " of type " + f.asType());
                if (!attributes(spec, Set.of()).isEmpty()) throw new Unsupported("@Spec with attributes on " + name);
                specFields.add(name);
            } else if (mixin != null) {
                if (!attributes(mixin, Set.of()).isEmpty()) throw new Unsupported("@Mixin with attributes on " + name);
                TypeElement mt = (TypeElement) ((DeclaredType) f.asType()).asElement();
                if (find(mt, COMMAND) != null) throw new Unsupported("@Mixin " + name + "'s class has @Command");
                if (!mt.getModifiers().contains(Modifier.FINAL)) throw new Unsupported("@Mixin " + name + "'s class is not final");
                mixins.append("        if (c.").append(name).append(" == null) c.").append(name).append(" = new ")
                        .append(mt.getQualifiedName()).append("();\n");
                String mixinVar = "m" + body.size();
                body.add("        CommandSpec " + mixinVar + " = CommandSpec.create();\n");
                for (VariableElement mf : ElementFilter.fieldsIn(mt.getEnclosedElements())) {
                    checkOnlyKnownAnnotations(mf);
                    if (find(mf, MIXIN) != null || find(mf, SPEC) != null) throw new Unsupported("nested @Mixin or @Spec in " + mt);
                    Binding b = binding(name + "." + mf.getSimpleName(), mf);
                    if (b == null) continue;
                    body.add("        " + mixinVar + "." + argSpec(b, bindings.size()) + ";\n");
                    bindings.add(b);
                }
                body.add("        s.addMixin(\"" + name + "\", " + mixinVar + ");\n");
            } else if (option != null || params != null) {
                Binding b = binding(name, f);
                body.add("        s." + argSpec(b, bindings.size()) + ";\n");
                bindings.add(b);
            }
        }
        sb.append("    static CommandSpec spec(").append(simple).append(" c) {\n");
        sb.append(mixins);
        sb.append("        CommandSpec s = CommandSpec.wrapWithoutInspection(c);\n");
        if (cmd.containsKey("name")) sb.append("        s.name(").append(lit(cmd.get("name"))).append(");\n");
        if (cmd.containsKey("description")) sb.append("        s.usageMessage().description(").append(lit(cmd.get("description"))).append(");\n");
        if (cmd.containsKey("header")) sb.append("        s.usageMessage().header(").append(lit(cmd.get("header"))).append(");\n");
        if (cmd.containsKey("footer")) sb.append("        s.usageMessage().footer(").append(lit(cmd.get("footer"))).append(");\n");
        if (cmd.containsKey("sortOptions")) sb.append("        s.usageMessage().sortOptions(").append(cmd.get("sortOptions")).append(");\n");
        if (cmd.containsKey("versionProvider")) {
            sb.append("        s.versionProvider(new ").append(cmd.get("versionProvider")).append("());\n");
        }
        body.forEach(sb::append);
        if (Boolean.TRUE.equals(cmd.get("mixinStandardHelpOptions"))) {
            // picocli's AutoHelpMixin, added last as the reflective model does
            sb.append("        CommandSpec help = CommandSpec.create();\n");
            sb.append("        help.addOption(OptionSpec.builder(\"-h\", \"--help\").usageHelp(true).type(boolean.class)")
                    .append(".paramLabel(\"<helpRequested>\").initialValue(false).hasInitialValue(true)")
                    .append(".descriptionKey(\"mixinStandardHelpOptions.help\").description(\"Show this help message and exit.\").build());\n");
            sb.append("        help.addOption(OptionSpec.builder(\"-V\", \"--version\").versionHelp(true).type(boolean.class)")
                    .append(".paramLabel(\"<versionRequested>\").initialValue(false).hasInitialValue(true)")
                    .append(".descriptionKey(\"mixinStandardHelpOptions.version\").description(\"Print version information and exit.\").build());\n");
            sb.append("        s.addMixin(\"mixinStandardHelpOptions\", help);\n");
        }
        for (String sf : specFields) sb.append("        c.").append(sf).append(" = s;\n");
        sb.append("        return s;\n    }\n\n");

        sb.append("    /** The classes of @Command(subcommands = ...), which this model leaves out: picocli adds them by reflection. */\n");
        sb.append("    static void addSubcommands(picocli.CommandLine cl) {\n");
        @SuppressWarnings("unchecked")
        List<Object> subs = (List<Object>) cmd.getOrDefault("subcommands", List.of());
        for (Object sub : subs) sb.append("        cl.addSubcommand(new ").append(sub).append("());\n");
        sb.append("    }\n\n");
        sb.append("    static final boolean GENERATED = true;\n\n");

        if (bindings.isEmpty()) return imports(sb.append("}\n").toString());
        sb.append("    private static final class Field implements IGetter, ISetter {\n");
        sb.append("        private final ").append(simple).append(" c;\n        private final int i;\n\n");
        sb.append("        Field(").append(simple).append(" c, int i) {\n            this.c = c;\n            this.i = i;\n        }\n\n");
        sb.append("        @Override\n        @SuppressWarnings(\"unchecked\")\n        public <T> T get() {\n            switch (i) {\n");
        for (int i = 0; i < bindings.size(); i++) {
            sb.append("                case ").append(i).append(": return (T) (Object) c.").append(bindings.get(i).path()).append(";\n");
        }
        sb.append("                default: throw new IllegalStateException(\"field \" + i);\n            }\n        }\n\n");
        sb.append("        @Override\n        public <T> T set(T value) {\n            T old = get();\n            switch (i) {\n");
        for (int i = 0; i < bindings.size(); i++) {
            Binding b = bindings.get(i);
            sb.append("                case ").append(i).append(": c.").append(b.path()).append(" = (").append(boxed(b.type()))
                    .append(") value; break;\n");
        }
        sb.append("                default: throw new IllegalStateException(\"field \" + i);\n            }\n            return old;\n        }\n    }\n");
        sb.append("}\n");
        return imports(sb.toString());
    }

    private static String imports(String text) {
        return text.replaceFirst("\n\n/\\*\\* Generated", "\n\nimport picocli.CommandLine.Model.CommandSpec;\n"
                + "import picocli.CommandLine.Model.IGetter;\nimport picocli.CommandLine.Model.ISetter;\n"
                + "import picocli.CommandLine.Model.OptionSpec;\nimport picocli.CommandLine.Model.PositionalParamSpec;\n"
                + "import picocli.CommandLine.Range;\n\n/** Generated");
    }

    private void checkOnlyKnownAnnotations(VariableElement f) throws Unsupported {
        for (AnnotationMirror a : f.getAnnotationMirrors()) {
            String t = a.getAnnotationType().toString();
            if (t.startsWith("picocli.") && !Set.of(OPTION, PARAMETERS, MIXIN, SPEC).contains(t)) {
                throw new Unsupported("@" + t + " on " + f.getSimpleName());
            }
        }
    }

    private Binding binding(String path, VariableElement f) throws Unsupported {
        AnnotationMirror option = find(f, OPTION), params = find(f, PARAMETERS);
        if (option == null && params == null) return null;
        if (option != null && params != null) throw new Unsupported("both @Option and @Parameters on " + path);
        if (f.getModifiers().contains(Modifier.PRIVATE) || f.getModifiers().contains(Modifier.FINAL)
                || f.getModifiers().contains(Modifier.STATIC)) {
            throw new Unsupported(path + " is private, final or static");
        }
        Map<String, Object> attrs = option != null ? attributes(option, OPTION_ATTRIBUTES) : attributes(params, PARAMETERS_ATTRIBUTES);
        typeLiteral(f.asType()); // throws for types the generator does not handle
        return new Binding(path, f.asType(), option != null ? "option" : "positional", attrs);
    }

    /** One {@code addOption(...)} or {@code addPositional(...)} call, as picocli's reflective builder would make it. */
    private String argSpec(Binding b, int index) throws Unsupported {
        Map<String, Object> a = b.attributes();
        boolean option = b.kind().equals("option");
        StringBuilder sb = new StringBuilder();
        if (option) {
            sb.append("addOption(OptionSpec.builder(").append(lit(a.get("names"))).append(")");
        } else {
            sb.append("addPositional(PositionalParamSpec.builder()");
            if (a.containsKey("index")) sb.append(".index(").append(lit(a.get("index"))).append(")");
        }
        TypeMirror t = b.type();
        sb.append(".type(").append(typeLiteral(t)).append(")");
        List<String> aux = auxiliaryTypes(t);
        if (!aux.isEmpty()) sb.append(".auxiliaryTypes(").append(String.join(", ", aux)).append(")");
        boolean multi = !aux.isEmpty();
        String arity;
        if (a.containsKey("arity")) {
            arity = "Range.valueOf(" + lit(a.get("arity")) + ")";
        } else if (option) {
            boolean bool = t.toString().equals("boolean") || t.toString().equals("java.lang.Boolean");
            arity = "Range.valueOf(\"" + (bool ? "0" : "1") + "\").unspecified(true)";
        } else {
            arity = "Range.valueOf(\"" + (multi ? "0..1" : "1") + "\").unspecified(true)";
        }
        sb.append(".arity(").append(arity).append(")");
        if (option) {
            sb.append(".required(").append(Boolean.TRUE.equals(a.get("required"))).append(")");
        } else {
            sb.append(".required(").append(arity).append(".min() > 0)");
        }
        String name = b.path().substring(b.path().lastIndexOf('.') + 1);
        String label = a.containsKey("paramLabel") && !((String) a.get("paramLabel")).isEmpty()
                ? ((String) a.get("paramLabel")).trim() : "<" + name + ">";
        sb.append(".paramLabel(").append(lit(label)).append(")");
        sb.append(".description(").append(a.containsKey("description") ? lit(a.get("description")) : "new String[0]").append(")");
        sb.append(".descriptionKey(\"\")");
        if (a.containsKey("defaultValue")) sb.append(".defaultValue(").append(lit(a.get("defaultValue"))).append(")");
        if (a.containsKey("hidden")) sb.append(".hidden(").append(a.get("hidden")).append(")");
        if (a.containsKey("split")) sb.append(".splitRegex(").append(lit(a.get("split"))).append(")");
        sb.append(".splitRegexSynopsisLabel(\"\")");
        sb.append(".getter(new Field(c, ").append(index).append(")).setter(new Field(c, ").append(index).append("))");
        sb.append(".initialValue(c.").append(b.path()).append(").hasInitialValue(true)");
        sb.append(".build())");
        return sb.toString();
    }

    private static final Set<String> SIMPLE_TYPES = Set.of("java.lang.String", "java.nio.file.Path", "java.io.File",
            "java.lang.Integer", "java.lang.Long", "java.lang.Boolean");

    private String typeLiteral(TypeMirror t) throws Unsupported {
        switch (t.getKind()) {
            case BOOLEAN, INT, LONG -> {
                return t + ".class";
            }
            case DECLARED -> {
                DeclaredType d = (DeclaredType) t;
                String raw = ((TypeElement) d.asElement()).getQualifiedName().toString();
                if (SIMPLE_TYPES.contains(raw) && d.getTypeArguments().isEmpty()) return raw + ".class";
                if (raw.equals("java.util.List") && d.getTypeArguments().size() == 1) {
                    String element = d.getTypeArguments().get(0).toString();
                    if (SIMPLE_TYPES.contains(element)) return "java.util.List.class";
                }
                throw new Unsupported("field type " + t);
            }
            default -> throw new Unsupported("field type " + t);
        }
    }

    private List<String> auxiliaryTypes(TypeMirror t) {
        if (t.getKind() != TypeKind.DECLARED) return List.of();
        List<String> aux = new ArrayList<>();
        for (TypeMirror arg : ((DeclaredType) t).getTypeArguments()) aux.add(arg + ".class");
        return aux;
    }

    private static String boxed(TypeMirror t) {
        return switch (t.getKind()) {
            case BOOLEAN -> "Boolean";
            case INT -> "Integer";
            case LONG -> "Long";
            default -> t.toString();
        };
    }

    private static AnnotationMirror find(Element e, String annotation) {
        for (AnnotationMirror a : e.getAnnotationMirrors()) {
            if (a.getAnnotationType().toString().equals(annotation)) return a;
        }
        return null;
    }

    /** The attributes written in the source (not the defaults), as String, Boolean, class name or List of them. */
    private static Map<String, Object> attributes(AnnotationMirror a, Set<String> supported) throws Unsupported {
        Map<String, Object> m = new LinkedHashMap<>();
        if (a == null) return m;
        for (Map.Entry<? extends ExecutableElement, ? extends AnnotationValue> e : a.getElementValues().entrySet()) {
            String key = e.getKey().getSimpleName().toString();
            if (!supported.contains(key)) throw new Unsupported("@" + a.getAnnotationType().asElement().getSimpleName() + "(" + key + ")");
            m.put(key, value(e.getValue().getValue()));
        }
        return m;
    }

    private static Object value(Object v) {
        if (v instanceof List<?> list) {
            List<Object> out = new ArrayList<>();
            for (Object o : list) out.add(value(((AnnotationValue) o).getValue()));
            return out;
        }
        if (v instanceof TypeMirror t) return t.toString().replace('$', '.');
        return v;
    }

    /** A Java literal: a string, or {@code new String[] {...}} for a list (a single string stays a string's array). */
    private static String lit(Object v) {
        if (v instanceof List<?> list) {
            List<String> parts = new ArrayList<>();
            for (Object o : list) parts.add(lit(o));
            return "new String[] {" + String.join(", ", parts) + "}";
        }
        if (v instanceof String s) {
            StringBuilder sb = new StringBuilder("\"");
            for (char ch : s.toCharArray()) {
                switch (ch) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\t' -> sb.append("\\t");
                    case '\r' -> sb.append("\\r");
                    default -> {
                        if (ch < 0x20 || ch > 0x7e) sb.append(String.format("\\u%04x", (int) ch));
                        else sb.append(ch);
                    }
                }
            }
            return sb.append('"').toString();
        }
        return String.valueOf(v);
    }
}
