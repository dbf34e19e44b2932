package dev.jvmm.loader.initramfs;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Finds the module files a run needs in a kernel's modules directory ({@code /lib/modules/RELEASE})
 * and puts them in load order, every module after the ones it depends on.
 *
 * <p>Dependencies come from {@code modules.dep} when the directory has one (depmod writes it on
 * install), else from each module's own {@code .modinfo} "depends=" (an unpacked kernel package has
 * no modules.dep). Modules listed in {@code modules.builtin} are part of the kernel and are left
 * out, wanted or depended on. Names treat '-' and '_' alike.
 */
public final class ModuleResolver {
    /** modules.dep and modules.builtin are well under a megabyte in Debian's kernels. */
    static final long MAX_INDEX_FILE = 16L << 20;
    /** A modules directory with more files than this is not one (a mistyped path such as "/"). */
    static final int MAX_FILES = 100_000;
    static final int MAX_DEPTH = 16;
    private static final Pattern MODULE_NAME = Pattern.compile("[A-Za-z0-9_-]{1,64}");

    private final Path dir;
    private final Set<String> builtin;
    /** name → module file */
    private final Map<String, Path> files;
    /** name → dependencies from modules.dep; null when there is none (then .modinfo says) */
    private final Map<String, List<String>> depTable;
    /** files came from modules.order: paths as listed there, to be {@link #locate}d */
    private boolean fromOrder;
    /** every module file, by name, once a walk was needed */
    private Map<String, Path> walked;

    /**
     * Reads the index of {@code modulesDir}: modules.dep and modules.builtin if present, else a walk
     * of the tree for module files.
     */
    public ModuleResolver(Path modulesDir) throws InitramfsException {
        this.dir = modulesDir;
        if (!Files.isDirectory(modulesDir)) throw new InitramfsException(modulesDir + ": no such modules directory");
        this.builtin = readBuiltin(modulesDir.resolve("modules.builtin"));
        Path dep = modulesDir.resolve("modules.dep");
        if (Files.isRegularFile(dep)) {
            this.files = new HashMap<>();
            this.depTable = new HashMap<>();
            readDep(dep);
        } else {
            // modules.order spares the walk of thousands of files (an unpacked package has one)
            Map<String, Path> ordered = readOrder(modulesDir.resolve("modules.order"));
            this.fromOrder = ordered != null;
            this.files = fromOrder ? ordered : walk(modulesDir);
            this.depTable = null;
        }
    }

    public Path directory() {
        return dir;
    }

    /** True if the kernel has module {@code name} built in (per modules.builtin). */
    public boolean isBuiltin(String name) {
        return builtin.contains(KernelModule.canonical(name));
    }

    /** True if the directory has a file for module {@code name}. */
    public boolean hasModule(String name) throws InitramfsException {
        return locate(KernelModule.canonical(name)) != null;
    }

    /** {@link #resolve(Collection, Collection)} without optional modules. */
    public List<KernelModule> resolve(Collection<String> required) throws InitramfsException {
        return resolve(required, List.of());
    }

    /**
     * The module files for {@code required} and {@code optional} and everything they depend on, in
     * load order, each once. A required module that is neither a file here nor built in is an error;
     * an optional one is skipped. Built-in modules are never in the result.
     */
    public List<KernelModule> resolve(Collection<String> required, Collection<String> optional) throws InitramfsException {
        Resolution r = new Resolution();
        for (String name : required) r.visit(checkedName(name), null);
        for (String name : optional) {
            String n = checkedName(name);
            if (locate(n) != null) r.visit(n, null);
        }
        return List.copyOf(r.order);
    }

    private static String checkedName(String name) {
        if (name == null || !MODULE_NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("bad module name '" + name + "'");
        }
        return KernelModule.canonical(name);
    }

    /** One depth-first walk: a module is added once all its dependencies are. */
    private final class Resolution {
        final Set<KernelModule> order = new LinkedHashSet<>();
        final Set<String> done = new HashSet<>();
        final Deque<String> path = new ArrayDeque<>();   // the chain being visited, for cycles

        void visit(String name, String neededBy) throws InitramfsException {
            if (builtin.contains(name) || done.contains(name)) return;
            if (path.contains(name)) {
                List<String> cycle = new ArrayList<>(path.reversed());
                cycle = cycle.subList(cycle.indexOf(name), cycle.size());
                throw new InitramfsException(dir + ": module dependency cycle: " + String.join(" -> ", cycle) + " -> " + name);
            }
            Path file = locate(name);
            if (file == null) {
                throw new InitramfsException(neededBy == null
                        ? dir + ": no module '" + name + "' (no module file, and not in modules.builtin)"
                        : dir + ": no module '" + name + "', which '" + neededBy + "' needs");
            }
            path.push(name);
            List<String> deps = new ArrayList<>();
            for (String d : dependencies(name, file)) {
                if (builtin.contains(d) || d.equals(name)) continue;
                deps.add(d);
                visit(d, name);
            }
            path.pop();
            done.add(name);
            order.add(new KernelModule(name, file, deps));
        }
    }

    private List<String> dependencies(String name, Path file) throws InitramfsException {
        if (!Files.isRegularFile(file)) {
            throw new InitramfsException(depTable != null
                    ? dir + ": modules.dep names " + file + " for '" + name + "', but there is no such file (out of date? run depmod)"
                    : file + ": module file vanished");
        }
        if (depTable != null) return depTable.getOrDefault(name, List.of());
        return Modinfo.parse(file, KernelModule.read(file, KernelModule.MAX_SIZE)).depends();
    }

    // ------------------------------------------------------------------ the index files

    private static List<String> lines(Path file) throws InitramfsException {
        try {
            long size = Files.size(file);
            if (size > MAX_INDEX_FILE) throw new InitramfsException(file + ": " + size + " bytes, too big for a module index");
            try (InputStream in = Files.newInputStream(file)) {
                // module paths are bytes on disk; ISO-8859-1 keeps every byte as one char, both ways
                return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1).lines().toList();
            }
        } catch (IOException e) {
            throw new InitramfsException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static Set<String> readBuiltin(Path file) throws InitramfsException {
        Set<String> names = new HashSet<>();
        if (!Files.isRegularFile(file)) return names;
        int n = 0;
        for (String line : lines(file)) {
            n++;
            String s = line.strip();
            if (s.isEmpty()) continue;
            String name = KernelModule.nameOf(s.substring(s.lastIndexOf('/') + 1));
            if (name == null) throw new InitramfsException(file + ":" + n + ": not a module path: '" + s + "'");
            names.add(name);
        }
        return names;
    }

    /** modules.dep: "kernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko kernel/drivers/virtio/virtio.ko ..." */
    private void readDep(Path file) throws InitramfsException {
        int n = 0;
        for (String line : lines(file)) {
            n++;
            if (line.isBlank()) continue;
            int colon = line.indexOf(':');
            if (colon <= 0) throw new InitramfsException(file + ":" + n + ": no ':' after the module path");
            Path module = modulePath(file, n, line.substring(0, colon).strip());
            String name = KernelModule.nameOf(module.getFileName().toString());
            List<String> deps = new ArrayList<>();
            for (String d : line.substring(colon + 1).strip().split("\\s+")) {
                if (d.isEmpty()) continue;
                deps.add(KernelModule.nameOf(modulePath(file, n, d).getFileName().toString()));
            }
            if (files.putIfAbsent(name, module) == null) depTable.put(name, deps);
        }
    }

    /**
     * The index modules.order gives (every in-tree module, one path a line), or null if there is no
     * modules.order. Its paths are uncompressed names ("kernel/fs/fuse/fuse.ko") even where the
     * files are compressed: {@link #locate} finds the file.
     */
    private Map<String, Path> readOrder(Path file) throws InitramfsException {
        if (!Files.isRegularFile(file)) return null;
        Map<String, Path> map = new HashMap<>();
        int n = 0;
        for (String line : lines(file)) {
            n++;
            String s = line.strip();
            if (s.isEmpty()) continue;
            Path p = modulePath(file, n, s);
            map.putIfAbsent(KernelModule.nameOf(p.getFileName().toString()), p);
        }
        return map;
    }

    /**
     * The file of module {@code name}: from the index; for a modules.order entry, with whichever
     * compression suffix exists; failing that (an out-of-date modules.order, an updates/ directory),
     * from a walk of the tree. Null if there is none.
     */
    private Path locate(String name) throws InitramfsException {
        Path p = files.get(name);
        if (!fromOrder) return p;
        if (p != null && !Files.isDirectory(dir.resolve("updates"))) {
            String stem = p.getFileName().toString();
            stem = stem.substring(0, stem.length() - KernelModule.Compression.of(stem).suffix.length());
            for (KernelModule.Compression c : KernelModule.Compression.values()) {
                Path candidate = p.resolveSibling(stem + c.suffix);
                if (Files.isRegularFile(candidate)) return candidate;
            }
        }
        if (walked == null) walked = walk(dir);
        return walked.get(name);
    }

    /** A module path in modules.dep: relative to the directory (or absolute, as old depmods wrote). */
    private Path modulePath(Path file, int line, String s) throws InitramfsException {
        Path p;
        try {
            p = Path.of(s);
        } catch (RuntimeException e) {
            throw new InitramfsException(file + ":" + line + ": bad module path '" + s + "'");
        }
        if (p.getFileName() == null || KernelModule.nameOf(p.getFileName().toString()) == null) {
            throw new InitramfsException(file + ":" + line + ": not a module path: '" + s + "'");
        }
        if (!p.isAbsolute()) {
            for (Path part : p) {
                if (part.toString().equals("..")) throw new InitramfsException(file + ":" + line + ": module path '" + s + "' leaves the directory");
            }
            p = dir.resolve(p);
        }
        return p;
    }

    /**
     * Every module file under {@code root}, by name. When a name is there twice, depmod's default
     * search order decides: the updates/ directory first, then the rest (sorted, for a stable answer).
     */
    private static Map<String, Path> walk(Path root) throws InitramfsException {
        TreeMap<String, Path> byPath = new TreeMap<>();
        try {
            Files.walkFileTree(root, Set.of(), MAX_DEPTH, new SimpleFileVisitor<>() {
                int count;

                @Override
                public FileVisitResult visitFile(Path f, BasicFileAttributes attrs) throws IOException {
                    if (++count > MAX_FILES) throw new IOException("more than " + MAX_FILES + " files: not a modules directory");
                    if (attrs.isRegularFile() && KernelModule.nameOf(f.getFileName().toString()) != null) {
                        byPath.put(root.relativize(f).toString(), f);
                    }
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path f, IOException e) {
                    return FileVisitResult.CONTINUE;   // an unreadable corner need not spoil the rest
                }
            });
        } catch (IOException e) {
            throw new InitramfsException(root + ": cannot list the modules: " + e.getMessage(), e);
        }
        Map<String, Path> files = new HashMap<>();
        for (boolean updates : new boolean[] {true, false}) {
            for (Map.Entry<String, Path> e : byPath.entrySet()) {
                if (e.getKey().startsWith("updates/") != updates) continue;
                files.putIfAbsent(KernelModule.nameOf(e.getValue().getFileName().toString()), e.getValue());
            }
        }
        return files;
    }
}
