package dev.jvmm.host;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Telling the two virtiofsd apart and building their command lines, with stand-in scripts that print
 * what each one's --help and --version print (only the C one can be installed on Debian 12, so the Rust
 * one is known here only from its documented options).
 */
class VirtiofsdTest {

    private static Path script(Path dir, String name, String help, String version) throws Exception {
        Path p = dir.resolve(name);
        Files.writeString(p, "#!/bin/sh\ncase \"$1\" in\n--help) cat <<'EOF'\n" + help + "\nEOF\n;;\n--version) echo '" + version + "';;\nesac\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwx------"));
        return p;
    }

    private static final String C_HELP = """
            usage: virtiofsd [options]
                -o source=PATH             shared directory tree
                --socket-path=PATH         path for the vhost-user socket""";
    private static final String RUST_HELP = """
            Usage: virtiofsd [OPTIONS]
                  --shared-dir <SHARED_DIR>  Shared directory path
                  --socket-path <SOCKET_PATH>  vhost-user socket path
                  --readonly  Disable write access""";

    @Test
    void theQemuOneTakesDashOSourceAndCannotShareReadOnly(@TempDir Path dir) throws Exception {
        Virtiofsd.Binary b = Virtiofsd.identify(script(dir, "c-virtiofsd", C_HELP, "virtiofsd version 7.2.22"));
        assertEquals(Virtiofsd.Flavor.QEMU_C, b.flavor());
        assertEquals("virtiofsd version 7.2.22", b.version());
        assertFalse(b.readOnlySupported());
        assertEquals(List.of(b.path().toString(), "--socket-path=/run/x/v.sock", "-o", "source=/srv/share"),
                Virtiofsd.command(b, Path.of("/srv/share"), false, Path.of("/run/x/v.sock")));
        HelperProcess.HelperException e = assertThrows(HelperProcess.HelperException.class,
                () -> Virtiofsd.command(b, Path.of("/srv/share"), true, Path.of("/run/x/v.sock")));
        assertTrue(e.getMessage().contains("cannot share a directory read-only: QEMU's C virtiofsd has no such option"), e.getMessage());
        e = assertThrows(HelperProcess.HelperException.class, () -> Virtiofsd.command(b, Path.of("/srv/a,b"), false, Path.of("v.sock")));
        assertTrue(e.getMessage().contains("contains a comma"), e.getMessage());
    }

    @Test
    void theRustOneTakesSharedDirAndReadonlyWhenItListsIt(@TempDir Path dir) throws Exception {
        Virtiofsd.Binary b = Virtiofsd.identify(script(dir, "rust-virtiofsd", RUST_HELP, "virtiofsd 1.13.0"));
        assertEquals(Virtiofsd.Flavor.RUST, b.flavor());
        assertTrue(b.readOnlySupported());
        assertEquals(List.of(b.path().toString(), "--socket-path", "/run/x/v.sock", "--shared-dir", "/srv/a,b", "--readonly"),
                Virtiofsd.command(b, Path.of("/srv/a,b"), true, Path.of("/run/x/v.sock")));
        assertEquals(List.of(b.path().toString(), "--socket-path", "/run/x/v.sock", "--shared-dir", "/srv/a,b"),
                Virtiofsd.command(b, Path.of("/srv/a,b"), false, Path.of("/run/x/v.sock")));

        Virtiofsd.Binary old = Virtiofsd.identify(script(dir, "old-rust", RUST_HELP.replace("--readonly", ""), "virtiofsd 1.5.0"));
        assertFalse(old.readOnlySupported());
        HelperProcess.HelperException e = assertThrows(HelperProcess.HelperException.class,
                () -> Virtiofsd.command(old, Path.of("/srv"), true, Path.of("v.sock")));
        assertTrue(e.getMessage().contains("its --help lists no --readonly"), e.getMessage());
    }

    @Test
    void somethingElseNamedVirtiofsdIsRefused(@TempDir Path dir) throws Exception {
        Path p = script(dir, "impostor", "hello, I am a shell script", "1.0");
        HelperProcess.HelperException e = assertThrows(HelperProcess.HelperException.class, () -> Virtiofsd.identify(p));
        assertEquals(p + " does not look like virtiofsd: its --help mentions neither --shared-dir nor -o source= (it printed: hello, I am a shell script)",
                e.getMessage());
    }

    @Test
    void theInstalledOneIsFoundAndIdentifiedWhenThereIsOne() throws Exception {
        boolean installed = Files.isExecutable(Path.of("/usr/lib/qemu/virtiofsd")) || Files.isExecutable(Path.of("/usr/libexec/virtiofsd"));
        if (!installed) {
            HelperProcess.HelperException e = assertThrows(HelperProcess.HelperException.class, Virtiofsd::find);
            assertTrue(e.getMessage().contains("apt-get install qemu-system-common"), e.getMessage());
            return;
        }
        Virtiofsd.Binary b = Virtiofsd.find();
        assertTrue(Files.isExecutable(b.path()));
        if (b.path().equals(Path.of("/usr/lib/qemu/virtiofsd"))) assertEquals(Virtiofsd.Flavor.QEMU_C, b.flavor());
    }
}
