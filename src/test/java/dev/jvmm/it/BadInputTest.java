package dev.jvmm.it;

import dev.jvmm.vmm.ExitStatus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad user input: one line on stderr, no stack trace, a documented status. Each case runs through the
 * CLI's entry point in this JVM (none of them gets as far as running a VM).
 */
class BadInputTest {
    @TempDir
    Path tmp;

    /** Asserts the run failed with {@code status} and a single "jvmm: ..." line containing {@code text}. */
    static void assertOneLineError(Jvmm.Result r, int status, String text) {
        assertEquals(status, r.status(), r::toString);
        String[] lines = r.stderr().strip().split("\n");
        assertEquals(1, lines.length, "exactly one line on stderr: " + r);
        assertTrue(lines[0].startsWith("jvmm: "), r::toString);
        assertTrue(lines[0].contains(text), "expected '" + text + "' in: " + lines[0]);
        assertFalse(r.stderr().contains("Exception") || r.stderr().contains("\tat "), "no stack trace: " + r);
        assertEquals("", r.stdout(), "nothing on stdout");
    }

    /** Usage errors: status 2 and one line naming what is wrong. */
    static Stream<Arguments> usageErrors() {
        return Stream.of(
                Arguments.of("--mem 0 is too small", List.of("run", "--mem", "0", "x.bin")),
                Arguments.of("invalid size '12Q'", List.of("run", "--mem", "12Q", "x.bin")),
                Arguments.of("more than this host's", List.of("run", "--mem", "64T", "x.bin")),
                Arguments.of("--smp must be at least 1", List.of("run", "--smp", "0", "x.bin")),
                Arguments.of("invalid duration 'soon'", List.of("run", "--timeout", "soon", "x.bin")),
                Arguments.of("--frobnicate", List.of("run", "--frobnicate", "x.bin")),
                Arguments.of("unknown --format 'pe'", List.of("run", "--format", "pe", "x.bin")),
                Arguments.of("--mem 1025K is not a whole number of 4 KiB pages", List.of("run", "--mem", "1025K", "x.bin")),
                Arguments.of("is longer than jvmm supports", List.of("run", "--timeout", "3000000h", "x.bin")),
                Arguments.of("--out /dev/full is not a directory", List.of("dump-acpi", "--out", "/dev/full")),
                Arguments.of("use tcp:[HOST:]PORT or unix:PATH", List.of("run", "--gdb", "1234", "x.bin")),
                Arguments.of("the port must be a number 0-65535", List.of("run", "--gdb", "tcp:70000", "x.bin")),
                Arguments.of("--gdb-wait needs --gdb", List.of("run", "--gdb-wait", "x.bin")));
    }

    @ParameterizedTest(name = "{1}")
    @MethodSource("usageErrors")
    void usageError(String expected, List<String> args) {
        assertOneLineError(Jvmm.inProcess(args.toArray(String[]::new)), ExitStatus.USAGE, expected);
    }

    @Test
    void missingKernel() {
        Path k = tmp.resolve("nope.bin");
        assertOneLineError(Jvmm.inProcess("run", k.toString()), ExitStatus.BAD_IMAGE, k.toString());
    }

    @Test
    void emptyKernel() throws IOException {
        Path k = Files.createFile(tmp.resolve("empty.bin"));
        assertOneLineError(Jvmm.inProcess("run", k.toString()), ExitStatus.BAD_IMAGE, "empty");
    }

    @Test
    void kernelThatIsADirectory() {
        assertOneLineError(Jvmm.inProcess("run", tmp.toString()), ExitStatus.BAD_IMAGE, tmp.toString());
    }

    @Test
    void truncatedMultibootKernel() throws IOException {
        byte[] full = Files.readAllBytes(KvmSupport.guest("mbhello.elf"));
        Path k = tmp.resolve("truncated.elf");
        int header = indexOf(full, new byte[] {0x02, (byte) 0xb0, (byte) 0xad, 0x1b}); // multiboot magic
        assertTrue(header >= 0 && header + 64 < full.length, "mbhello.elf has a multiboot header before its end");
        // keep the headers (so it is still recognised as multiboot) but cut the loadable segment short
        Files.write(k, Arrays.copyOf(full, header + 64));
        Jvmm.Result r = Jvmm.inProcess("run", k.toString());
        assertOneLineError(r, ExitStatus.BAD_IMAGE, k.toString());
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }

    @Test
    void kernelLargerThanGuestMemory() throws IOException {
        Path k = tmp.resolve("big.bin");
        Files.write(k, new byte[3 << 20]);
        assertOneLineError(Jvmm.inProcess("run", "--mem", "2M", k.toString()), ExitStatus.BAD_IMAGE, k.toString());
    }

    @Test
    void extractVmlinuxOfAFileOverTwoGib() throws IOException {
        Path big = tmp.resolve("big.bzImage");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(big.toFile(), "rw")) {
            f.setLength(3L << 30);   // sparse: no disk space
        }
        assertOneLineError(Jvmm.inProcess("extract-vmlinux", big.toString(), tmp.resolve("out").toString()),
                ExitStatus.BAD_IMAGE, big.toString());
    }

    @Test
    void elfThatIsNoKernelIsNotRunAsAFlatBinary() throws IOException {
        // an i386 ELF executable without a multiboot header: one PT_LOAD of 16 bytes at 1 MiB
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(0x100).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x7f, 'E', 'L', 'F', 1, 1, 1});
        b.position(16);
        b.putShort((short) 2).putShort((short) 3).putInt(1).putInt(0x100000).putInt(52).putInt(0).putInt(0);
        b.putShort((short) 52).putShort((short) 32).putShort((short) 1).putShort((short) 40).putInt(0);
        b.position(52);
        b.putInt(1).putInt(0x80).putInt(0x100000).putInt(0x100000).putInt(16).putInt(16).putInt(5).putInt(0x1000);
        Path k = Files.write(tmp.resolve("plain.elf"), b.array());
        assertOneLineError(Jvmm.inProcess("run", "--timeout", "10s", k.toString()), ExitStatus.BAD_IMAGE, "--format flat");
    }

    @Test
    void initrdTooLargeForGuestMemoryIsNamedWithItsSize() throws IOException {
        Path rd = tmp.resolve("huge.cpio");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(rd.toFile(), "rw")) {
            f.setLength(100L << 20);   // sparse
        }
        assertOneLineError(Jvmm.inProcess("run", "--mem", "64M", "--initrd", rd.toString(),
                KvmSupport.guest("hello64.elf").toString()), ExitStatus.BAD_IMAGE, rd + ": initrd of 104857600 bytes");
    }

    @Test
    void kernelLargerThanTheJavaHeapIsOneLine() throws Exception {
        Path k = tmp.resolve("big.bin");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(k.toFile(), "rw")) {
            f.setLength(200L << 20);   // sparse: a 200 MiB flat binary
        }
        // a heap the kernel does not fit in; --timeout in case it ran anyway
        Jvmm.Result r = Jvmm.run(Jvmm.command(List.of("-Xmx64m"), "run", "--no-stdin", "--timeout", "20s", "--mem", "512M",
                k.toString()), null, 60);
        assertOneLineError(r, ExitStatus.BAD_IMAGE, "-Xmx");
    }

    @Test
    void tooManyCpus() {
        KvmSupport.requireKvm();
        assertOneLineError(Jvmm.inProcess("run", "--smp", "5000", KvmSupport.guest("hello.bin").toString()),
                ExitStatus.USAGE, "at most");
    }

    @Test
    void noKvmDevice() {
        Path missing = tmp.resolve("kvm");
        Jvmm.Result r = Jvmm.inProcess("run", "--kvm", missing.toString(), KvmSupport.guest("hello.bin").toString());
        assertOneLineError(r, ExitStatus.HOST_UNSUITABLE, "does not exist");
    }

    @Test
    void kvmDeviceWithoutPermission() throws IOException {
        // root opens anything, so make the open fail the same way with a file that is not a KVM device
        Path notKvm = Files.writeString(tmp.resolve("kvm"), "");
        Jvmm.Result r = Jvmm.inProcess("run", "--kvm", notKvm.toString(), KvmSupport.guest("hello.bin").toString());
        assertEquals(ExitStatus.HOST_UNSUITABLE, r.status(), r::toString);
        assertFalse(r.stderr().contains("Exception"), r::toString);
    }

    @Test
    void checkWithoutKvm() {
        Jvmm.Result r = Jvmm.inProcess("check", "--kvm", tmp.resolve("kvm").toString());
        assertEquals(ExitStatus.HOST_UNSUITABLE, r.status(), r::toString);
        assertTrue(r.stderr().contains("does not exist"), r::toString);
    }

    /** The guest's output cannot be written: one line with the reason (not a bug's status 14), once. */
    @Test
    void aSerialLogOnAFullDisk() {
        KvmSupport.requireKvm();
        Jvmm.Result r = Jvmm.run("run", "--serial-log", "/dev/full", KvmSupport.guest("hello.bin").toString());
        assertOneLineError(r, ExitStatus.OUTPUT_FAILED, "cannot write the guest's console output to --serial-log /dev/full: No space left on device");
    }

    @Test
    void stdoutClosedByItsReader() throws Exception {
        KvmSupport.requireKvm();
        // stdout is a pipe whose reader is gone (`jvmm run ... | true`): EPIPE on the first write
        java.util.List<String> cmd = Jvmm.command("run", KvmSupport.guest("hello.bin").toString()).command();
        StringBuilder sh = new StringBuilder("exec 3>&1; { ");
        for (String c : cmd) sh.append(" '").append(c.replace("'", "'\\''")).append('\'');
        sh.append(" 2>&3; echo \"status $?\" >&3; } | true");
        Process p = new ProcessBuilder("sh", "-c", sh.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
        assertTrue(out.contains("status " + ExitStatus.OUTPUT_FAILED), out);
        assertEquals(1, out.lines().filter(l -> l.startsWith("jvmm: ")).count(), "one line: " + out);
        assertTrue(out.contains("jvmm: cannot write the guest's console output to stdout: Broken pipe"), out);
    }
}
