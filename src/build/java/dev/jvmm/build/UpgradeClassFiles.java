package dev.jvmm.build;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassFileVersion;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.CodeTransform;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

/**
 * Build step: rewrites the classes of a jar that are older than Java 6 (class file version &lt; 50) as
 * version 52 with stack maps, so the JDK's AOT cache can hold them.
 *
 * <p>Why: picocli is compiled for Java 5, and the JVM keeps such classes out of an AOT cache ("Unlinked
 * class not supported by AOTClassLinking"): each run then loads, parses and verifies its ~100 classes
 * from the jar, the old, slow verifier included. The code itself is unchanged: the transform passes
 * every instruction through and only adds the StackMapTable the newer class file version requires.
 * Every rewritten class is then loaded and linked once (which verifies it), so a bad frame fails the
 * build, not a run.
 *
 * <p>{@code java -cp target/build-classes dev.jvmm.build.UpgradeClassFiles JAR} (pom.xml runs it after
 * the shade plugin made target/jvmm.jar).
 */
public final class UpgradeClassFiles {
    private UpgradeClassFiles() { }

    static final int OLDEST_KEPT = 50, TARGET = 52;

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: UpgradeClassFiles JAR");
            System.exit(2);
        }
        Path jar = Path.of(args[0]);
        Path tmp = jar.resolveSibling(jar.getFileName() + ".upgrading");
        List<String> upgraded = new ArrayList<>();
        try (URLClassLoader resources = new URLClassLoader(new URL[] {jar.toUri().toURL()}, null)) {
            ClassFile cf = ClassFile.of(ClassFile.StackMapsOption.GENERATE_STACK_MAPS,
                    ClassFile.ClassHierarchyResolverOption.of(ClassHierarchyResolver.defaultResolver()
                            .orElse(ClassHierarchyResolver.ofResourceParsing(resources))));
            ClassTransform version = (builder, element) -> {
                if (element instanceof ClassFileVersion) builder.with(ClassFileVersion.of(TARGET, 0));
                else builder.with(element);
            };
            ClassTransform transform = version.andThen(ClassTransform.transformingMethodBodies(CodeTransform.ACCEPT_ALL));
            try (InputStream in = Files.newInputStream(jar); ZipInputStream zin = new ZipInputStream(in);
                 OutputStream out = Files.newOutputStream(tmp); ZipOutputStream zout = new ZipOutputStream(out)) {
                for (ZipEntry e; (e = zin.getNextEntry()) != null; ) {
                    byte[] bytes = zin.readAllBytes();
                    if (e.getName().endsWith(".class") && !e.getName().startsWith("META-INF/")) {
                        ClassModel cm = cf.parse(bytes);
                        if (cm.majorVersion() < OLDEST_KEPT) {
                            bytes = cf.transformClass(cm, transform);
                            upgraded.add(e.getName().substring(0, e.getName().length() - ".class".length()).replace('/', '.'));
                        }
                    }
                    ZipEntry copy = new ZipEntry(e.getName());
                    copy.setTime(e.getTime());
                    zout.putNextEntry(copy);
                    zout.write(bytes);
                    zout.closeEntry();
                }
            }
        }
        verify(tmp, upgraded);
        Files.move(tmp, jar, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        System.out.println("UpgradeClassFiles: " + upgraded.size() + " classes of " + jar.getFileName() + " rewritten as version " + TARGET);
    }

    /** Loads and links every rewritten class (HotSpot links a class, so verifies it, before listing its methods). */
    private static void verify(Path jar, List<String> classes) throws Exception {
        try (URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, ClassLoader.getPlatformClassLoader())) {
            for (String name : classes) Class.forName(name, false, loader).getDeclaredMethods();
        } catch (VerifyError | ClassFormatError e) {
            Files.deleteIfExists(jar);
            throw new IOException("a rewritten class does not verify: " + e, e);
        }
    }
}
