package dev.jvmm.it;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import dev.jvmm.host.HostInfo;
import dev.jvmm.vmm.ExitStatus;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Debian's gdb, in batch mode, debugging guests/gdbtest64.elf on the real /dev/kvm through
 * {@code --gdb unix:PATH --gdb-wait}.
 */
class GdbStubTest {
    static final Path GDB = Path.of("/usr/bin/gdb");

    @BeforeEach
    void kvm() {
        KvmSupport.requireKvm();
        assumeTrue(Files.isExecutable(GDB), "no /usr/bin/gdb (Debian's gdb package) on this host");
    }

    record Session(Jvmm.Result jvmm, String gdbOut, int gdbStatus) {
        @Override
        public String toString() {
            return "--- gdb (status " + gdbStatus + ") ---\n" + gdbOut + "\n--- jvmm ---\n" + jvmm;
        }
    }

    /** jvmm waits for a debugger; gdb runs {@code commands} in batch mode against it; both end. */
    static Session debug(Path tmp, List<String> commands, String... jvmmArgs) throws Exception {
        Files.createDirectories(tmp);
        Path sock = tmp.resolve("gdb.sock");
        Path elf = KvmSupport.guest("gdbtest64.elf");
        // the timeout only ends a run that went wrong, so the test fails instead of hanging
        List<String> args = new ArrayList<>(List.of("run", "--no-stdin", "--stats", "--timeout", "120s",
                "--gdb", "unix:" + sock, "--gdb-wait"));
        args.addAll(List.of(jvmmArgs));
        args.add(elf.toString());
        ProcessBuilder pb = Jvmm.command(args.toArray(String[]::new));
        Process vm = pb.start();
        CompletableFuture<String> out = Jvmm.drain(vm.getInputStream());
        CompletableFuture<String> err = Jvmm.drain(vm.getErrorStream());
        while (!Files.exists(sock) && vm.isAlive()) Thread.sleep(10);
        List<String> cmd = new ArrayList<>(List.of(GDB.toString(), "-batch", "-nx", "-ex", "set pagination off",
                "-ex", "set confirm off", "-ex", "target remote " + sock));
        for (String c : commands) {
            cmd.add("-ex");
            cmd.add(c);
        }
        cmd.add(elf.toString());
        Process gdb = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        gdb.getOutputStream().close();
        CompletableFuture<String> gdbOut = Jvmm.drain(gdb.getInputStream());
        boolean gdbDone = gdb.waitFor(150, TimeUnit.SECONDS);
        if (!gdbDone) gdb.destroyForcibly();
        boolean vmDone = vm.waitFor(150, TimeUnit.SECONDS);
        if (!vmDone) vm.destroyForcibly();
        Jvmm.Result r = new Jvmm.Result(vmDone ? vm.exitValue() : -1, out.get(), err.get(), 0);
        Session s = new Session(r, gdbOut.get(), gdbDone ? gdb.exitValue() : -1);
        assertTrue(gdbDone && vmDone, "gdb or jvmm did not end:\n" + s);
        return s;
    }

    static final int GUEST_OK = 33;
    static final boolean EMULATED = HostInfo.virtualization() == HostInfo.Virtualization.EMULATED;

    private static long value(String gdbOut, String var) {
        Matcher m = Pattern.compile("^" + Pattern.quote(var) + " = 0x([0-9a-f]+)$", Pattern.MULTILINE).matcher(gdbOut);
        assertTrue(m.find(), var + " not printed:\n" + gdbOut);
        return Long.parseUnsignedLong(m.group(1), 16);
    }

    private static long symbol(String name) throws IOException {
        // the guest's link map: guests/linux64.ld puts .text at 1 MiB, and nm knows where each label is
        Process p = new ProcessBuilder("nm", KvmSupport.guest("gdbtest64.elf").toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        Matcher m = Pattern.compile("^([0-9a-f]+) [Tt] " + name + "$", Pattern.MULTILINE).matcher(out);
        assertTrue(m.find(), "nm does not list " + name + ":\n" + out);
        return Long.parseLong(m.group(1), 16);
    }

    /**
     * Before the first instruction (--gdb-wait) the 64-bit entry's page tables map Linux's kernel text
     * range too (0xffffffff80000000 is physical 0), so a debugger can read, and put software breakpoints
     * on, a kernel's symbols then: the same bytes at the guest's _start through both mappings.
     */
    @Test
    void theKernelTextMappingIsThereBeforeTheFirstInstruction(@TempDir Path tmp) throws Exception {
        long start = symbol("_start");
        long high = dev.jvmm.arch.x86.CpuSetup.KERNEL_TEXT_MAP + start;
        Session s = debug(tmp, List.of("x/2xg " + start, "x/2xg " + high, "detach"));
        Matcher low = Pattern.compile("^0x0*" + Long.toHexString(start) + " <_start>:\\s+(0x[0-9a-f]+)\\s+(0x[0-9a-f]+)$", Pattern.MULTILINE).matcher(s.gdbOut());
        Matcher hi = Pattern.compile("^0x" + Long.toHexString(high) + ":\\s+(0x[0-9a-f]+)\\s+(0x[0-9a-f]+)$", Pattern.MULTILINE).matcher(s.gdbOut());
        assertTrue(low.find(), "the identity mapping:\n" + s);
        assertTrue(hi.find(), "the kernel text mapping:\n" + s);
        assertEquals(low.group(1) + " " + low.group(2), hi.group(1) + " " + hi.group(2), s::toString);
        assertTrue(!low.group(1).equals("0x0000000000000000"), "the guest's code, not zeros:\n" + s);
        assertEquals(GUEST_OK, s.jvmm().status(), s::toString);
    }

    @Test
    void registersHardwareBreakpointMemoryRegisterWriteStepAndDetach(@TempDir Path tmp) throws Exception {
        Session s = debug(tmp, List.of(
                "p/x $rip", "p/x $cr0", "p/x $efer", "p/x $cs", "p/x $fs_base", "info threads",
                "hbreak checkpoint", "continue", "p/x $pc",
                "set $r12 = 0x5a", "p/x $r12",
                "set {int}&value = 0x0a77656e", "x/s &value",
                "stepi", "p/x $pc",
                // with the scheduler locked, vCPU 1 stays stopped while vCPU 0 steps (vCont;s:1 alone)
                "set scheduler-locking on", "stepi", "p/x $pc", "set scheduler-locking off",
                "thread 2", "p/x $pc", "thread 1",
                // on from one hardware breakpoint to the next
                "hbreak last", "continue", "p/x $pc",
                "delete", "detach"), "--smp", "2");
        String g = s.gdbOut();
        // registers at the entry point: long mode (CR0.PG|PE, EFER.LMA|LME), a 64-bit code segment
        assertEquals(symbol("_start"), value(g, "$1"), s::toString);
        assertEquals(0x80000001L, value(g, "$2") & 0x80000001L, s::toString);
        assertEquals(0x500L, value(g, "$3") & 0x500L, s::toString);
        assertTrue(value(g, "$4") != 0, s::toString);
        assertEquals(0, value(g, "$5"), s::toString);
        // threads are vCPUs
        assertTrue(g.contains("Thread 1 (vCPU 0)") && g.contains("Thread 2 (vCPU 1)"), s::toString);
        // the hardware breakpoint stops there, on vCPU 0
        assertTrue(g.contains("Breakpoint 1, 0x" + String.format("%016x", symbol("checkpoint")) + " in checkpoint ()"), s::toString);
        assertEquals(symbol("checkpoint"), value(g, "$6"), s::toString);
        assertEquals(0x5a, value(g, "$7"), s::toString);
        assertTrue(g.contains("<value>:\t\"new\\n\""), s::toString);
        // a single step: one nop further
        assertEquals(symbol("checkpoint") + 1, value(g, "$8"), s::toString);
        assertEquals(symbol("checkpoint") + 2, value(g, "$9"), s::toString);
        // vCPU 1 never left its reset state (the boot protocol starts only vCPU 0)
        assertEquals(0xfff0, value(g, "$10"), s::toString);
        assertEquals(symbol("last"), value(g, "$11"), s::toString);
        assertTrue(g.contains("Detaching from program") || g.contains("[Inferior 1 (Remote target) detached]"), s::toString);
        // detached, the guest finishes: its output shows the register and memory gdb wrote
        assertEquals(GUEST_OK, s.jvmm().status(), s::toString);
        assertTrue(s.jvmm().stdout().contains("reg=Z\nmem=new\n"), s::toString);
        // --stats counts the debug exits: the breakpoint and the step
        Matcher m = Pattern.compile("vCPU 0: .*DEBUG=(\\d+)").matcher(s.jvmm().stderr());
        assertTrue(m.find() && Integer.parseInt(m.group(1)) >= 2, s::toString);
    }

    @Test
    void softwareBreakpoint(@TempDir Path tmp) throws Exception {
        Session s = debug(tmp, List.of("break last", "continue", "p/x $pc", "delete", "detach"));
        if (EMULATED) {
            // the stub refuses Z0 here rather than let the guest die on an int3 the emulator cannot run
            assertTrue(s.gdbOut().contains("Cannot insert breakpoint 1"), s::toString);
            assertEquals(GUEST_OK, s.jvmm().status(), "the guest goes on after the refusal and the detach:\n" + s);
            assertTrue(s.jvmm().stdout().contains("reg=A\nmem=old\n"), s::toString);
            assumeTrue(false, "this host's KVM emulates guest code and cannot execute int3: software breakpoints (Z0)"
                    + " are unsupported here, and the stub refused one (gdb: 'Cannot insert breakpoint'); hbreak works");
        }
        assertEquals(symbol("last"), value(s.gdbOut(), "$1"), s::toString);
        assertEquals(GUEST_OK, s.jvmm().status(), s::toString);
        assertTrue(s.jvmm().stdout().contains("reg=A\nmem=old\n"), "the int3 was removed again:\n" + s);
    }

    @Test
    void accessWatchpoint(@TempDir Path tmp) throws Exception {
        Session s = debug(tmp, List.of("awatch *(char*)&value", "continue", "p/x $pc", "delete", "detach"));
        boolean stopped = s.gdbOut().contains("Hardware access (read/write) watchpoint 1: *(char*)&value\n\nValue = ");
        if (EMULATED && !stopped && s.gdbOut().contains("exited with code 041")) {
            assumeTrue(false, "this host's KVM emulates guest code and does not check data breakpoints on the accesses it"
                    + " emulates: watchpoints (Z2-Z4) are unsupported here (the guest read the watched byte and ran on to its end)");
        }
        assertTrue(stopped, s::toString);
        assertEquals(GUEST_OK, s.jvmm().status(), s::toString);
    }

    @Test
    void killEndsTheRunWithItsOwnStatus(@TempDir Path tmp) throws Exception {
        Session s = debug(tmp, List.of("p/x $rip", "kill"));
        assertEquals(ExitStatus.GDB_KILL, s.jvmm().status(), s::toString);
        assertTrue(s.jvmm().stderr().contains("the debugger killed the VM"), s::toString);
        assertTrue(!s.jvmm().stdout().contains("gdb guest: start"), "the guest never ran:\n" + s);
    }

    /** One packet's payload from the stub (acks skipped), checksum checked. */
    private static String packet(java.io.InputStream in) throws IOException {
        int c;
        while ((c = in.read()) != '$') if (c < 0) throw new AssertionError("the stub closed the connection");
        StringBuilder sb = new StringBuilder();
        while ((c = in.read()) != '#') {
            if (c < 0) throw new AssertionError("the stub closed the connection mid-packet");
            sb.append((char) c);
        }
        String cs = "" + (char) in.read() + (char) in.read();
        int sum = 0;
        for (int i = 0; i < sb.length(); i++) sum += sb.charAt(i);
        assertEquals(String.format("%02x", sum & 0xff), cs);
        return sb.toString();
    }

    private static void send(java.io.OutputStream out, String payload) throws IOException {
        out.write(dev.jvmm.gdb.Rsp.frame(payload));
        out.flush();
    }

    @Test
    void attachToARunningGuestOverTcpInterruptItAndSurviveBadRequests() throws Exception {
        // no --gdb-wait: the guest spins until the debugger attaches, which stops it
        Process vm = Jvmm.command("run", "--no-stdin", "--timeout", "120s", "--gdb", "tcp:0",
                KvmSupport.guest("spin.bin").toString()).start();
        CompletableFuture<String> out = Jvmm.drain(vm.getInputStream());
        java.io.BufferedReader err = new java.io.BufferedReader(new java.io.InputStreamReader(vm.getErrorStream()));
        StringBuilder errText = new StringBuilder();
        String line;
        Matcher port = null;
        while ((line = err.readLine()) != null) {
            errText.append(line).append('\n');
            Matcher m = Pattern.compile("gdb stub listening on tcp:127\\.0\\.0\\.1:(\\d+)").matcher(line);
            if (m.find()) {
                port = m;
                break;
            }
        }
        assertTrue(port != null, "no listening line:\n" + errText);
        CompletableFuture<String> restOfErr = CompletableFuture.supplyAsync(() -> {
            StringBuilder sb = new StringBuilder();
            try {
                String l;
                while ((l = err.readLine()) != null) sb.append(l).append('\n');
            } catch (IOException e) {
                // ended
            }
            return sb.toString();
        });
        try (java.net.Socket sock = new java.net.Socket("127.0.0.1", Integer.parseInt(port.group(1)))) {
            java.io.InputStream in = sock.getInputStream();
            java.io.OutputStream o = sock.getOutputStream();
            send(o, "?");
            assertEquals("T05thread:1;", packet(in));
            send(o, "vCont;c");
            o.write(0x03); // Ctrl-C
            o.flush();
            assertEquals("T02thread:1;", packet(in), "the interrupt stops the guest and names the thread");
            String g;
            send(o, "g");
            g = packet(in);
            assertEquals(dev.jvmm.gdb.X86Registers.IMAGE_BYTES * 2, g.length());
            // paging is off (real mode): addresses are physical; the flat binary sits at 0x10000
            byte[] image = Files.readAllBytes(KvmSupport.guest("spin.bin"));
            send(o, "m10000," + Integer.toHexString(image.length));
            assertEquals(dev.jvmm.gdb.Rsp.hex(image), packet(in));
            // hostile requests: an error each, and the stub goes on
            send(o, "m" + "f".repeat(16) + ",10");
            assertEquals("E14", packet(in), "an address beyond RAM");
            send(o, "m0,fffffffffffff");
            assertEquals("E22", packet(in));
            send(o, "p99999999");
            assertEquals("E22", packet(in));
            o.write("$g#00".getBytes());
            o.flush();
            send(o, "Hg7");
            assertEquals("E01", packet(in));
            send(o, "qC");
            assertEquals("QC1", packet(in));
            send(o, "k");
        }
        assertTrue(vm.waitFor(150, TimeUnit.SECONDS), "jvmm did not end after the kill");
        String stderr = errText + restOfErr.get();
        assertEquals(ExitStatus.GDB_KILL, vm.exitValue(), stderr + out.get());
    }

    @Test
    void aSecondDebuggerIsRefusedClearly(@TempDir Path tmp) throws Exception {
        Path sock = tmp.resolve("gdb.sock");
        Path api = tmp.resolve("api.sock");
        Process vm = Jvmm.command("run", "--no-stdin", "--timeout", "120s", "--gdb", "unix:" + sock, "--gdb-wait",
                "--api-socket", api.toString(), KvmSupport.guest("gdbtest64.elf").toString())
                // files, not drain threads: those share the common pool with the ctl run's below
                .redirectOutput(tmp.resolve("out").toFile()).redirectError(tmp.resolve("err").toFile()).start();
        while (!Files.exists(sock) && vm.isAlive()) Thread.sleep(10);
        String second;
        try (java.nio.channels.SocketChannel first = java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            first.connect(java.net.UnixDomainSocketAddress.of(sock));
            java.io.InputStream in = java.nio.channels.Channels.newInputStream(first);
            java.io.OutputStream o = java.nio.channels.Channels.newOutputStream(first);
            send(o, "?");
            assertEquals("T05thread:1;", packet(in), "the first debugger is attached");
            Process gdb = new ProcessBuilder(GDB.toString(), "-batch", "-nx", "-ex", "target remote " + sock)
                    .redirectErrorStream(true).start();
            gdb.getOutputStream().close();
            second = new String(gdb.getInputStream().readAllBytes());
            assertTrue(gdb.waitFor(150, TimeUnit.SECONDS), "the second gdb ended");
            // the first is still served, and detaches: the guest runs to its end
            send(o, "qC");
            assertEquals("QC1", packet(in));
            // the control socket cannot resume what the debugger stopped
            Jvmm.Result resume = Jvmm.run("ctl", api.toString(), "resume");
            assertTrue(resume.status() != 0 && (resume.stdout() + resume.stderr()).contains("a debugger attached with --gdb"), resume::toString);
            send(o, "D");
            assertEquals("OK", packet(in));
        }
        assertTrue(vm.waitFor(150, TimeUnit.SECONDS), "jvmm ended");
        String errText = Files.readString(tmp.resolve("err")), outText = Files.readString(tmp.resolve("out"));
        assertTrue(second.contains("Remote failure reply: E.another debugger is attached to this VM"), second);
        assertTrue(errText.contains("refused a second debugger"), errText);
        assertEquals(GUEST_OK, vm.exitValue(), errText + outText);
    }
}
