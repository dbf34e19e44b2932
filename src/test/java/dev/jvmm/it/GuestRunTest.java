package dev.jvmm.it;

import dev.jvmm.vmm.ExitStatus;
import dev.jvmm.host.HostInfo;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Boots the guests from guests/ on the real /dev/kvm through the CLI and checks output and status. */
class GuestRunTest {
    static final int GUEST_OK = 33; // the guests write 0x10 to isa-debug-exit on success

    @BeforeEach
    void kvm() {
        KvmSupport.requireKvm();
    }

    @Test
    void helloFlatBinaryPrintsAndExitsThroughDebugExit() {
        Jvmm.Result r = Jvmm.run("run", KvmSupport.guest("hello.bin").toString());
        assertEquals(GUEST_OK, r.status(), r::toString);
        assertTrue(r.stdout().contains("Hello from a jvmm guest"), r::toString);
        assertEquals("", r.stderr(), "a successful run prints nothing of its own");
    }

    @Test
    void multibootKernelGetsCommandLineModulesAndMemoryMap(@TempDir Path tmp) throws IOException {
        Path module = tmp.resolve("mod.txt");
        Files.writeString(module, "MODULE-CONTENT-1234");
        Jvmm.Result r = Jvmm.run("run", "--mem", "64M", "--cmdline", "hello world=1", "--initrd", module.toString(),
                KvmSupport.guest("mbhello.elf").toString());
        assertEquals(GUEST_OK, r.status(), r::toString);
        assertTrue(r.stdout().contains("multiboot ok"), r::toString);
        assertTrue(r.stdout().contains("cmdline: hello world=1"), r::toString);
        assertTrue(r.stdout().contains("module 0: mod.txt 19 bytes"), r::toString);
        assertTrue(r.stdout().contains("MODULE-C"), r::toString);
    }

    @Test
    void smpGuestStartsEveryApplicationProcessorWithInitSipi() {
        Jvmm.Result r = Jvmm.run("run", "--smp", "4", "--cmdline", "cpus=4", KvmSupport.guest("smp.elf").toString());
        assertEquals(GUEST_OK, r.status(), r::toString);
        for (int i = 1; i < 4; i++) assertTrue(r.stdout().contains("AP " + i + " up"), r::toString);
        assertTrue(r.stdout().contains("all 4 cpus up"), r::toString);
    }

    @Test
    void echoGuestReadsStdin() {
        Jvmm.Result r = Jvmm.run("hello jvmm\nq".getBytes(StandardCharsets.US_ASCII), 60, "run",
                KvmSupport.guest("echo.bin").toString());
        assertEquals(GUEST_OK, r.status(), r::toString);
        assertTrue(r.stdout().contains("echo ready"), r::toString);
        assertTrue(r.stdout().contains("hello jvmm"), r::toString);
        assertTrue(r.stdout().contains("bye"), r::toString);
    }

    @Test
    void spinningGuestIsStoppedByTimeoutWith124() {
        Jvmm.Result r = Jvmm.run("run", "--timeout", "2s", KvmSupport.guest("spin.bin").toString());
        assertEquals(ExitStatus.TIMEOUT, r.status(), r::toString);
        assertTrue(r.stderr().contains("timed out after 2s"), r::toString);
        // the bound for the whole command; --timeout counts from process start, JVM start-up included
        assertTrue(r.millis() < 3000, "jvmm --timeout 2s took " + r.millis() + " ms");
    }

    @Test
    void i8042ResetEndsTheRunWithZero() {
        Jvmm.Result r = Jvmm.run("run", KvmSupport.guest("reset.bin").toString());
        assertEquals(ExitStatus.OK, r.status(), r::toString);
        assertTrue(r.stdout().contains("resetting"), r::toString);
    }

    @Test
    void tripleFaultEndsWithShutdownStatusAndRegisterDump() {
        Jvmm.Result r = Jvmm.run("run", KvmSupport.guest("triple.bin").toString());
        if (HostInfo.virtualization() == HostInfo.Virtualization.EMULATED) {
            // this host's emulator delivers real-mode interrupts without checking the IDT limit, so
            // the guest's fallback handler reports it and fails through debug-exit instead
            assertEquals(35, r.status(), r::toString);
            assertTrue(r.stdout().contains("int3 delivered despite empty IDT"), r::toString);
            return;
        }
        assertEquals(ExitStatus.GUEST_SHUTDOWN, r.status(), r::toString);
        assertTrue(r.stderr().contains("triple-faulted"), r::toString);
        assertTrue(r.stderr().contains("rip=") && r.stderr().contains("cr0="), r::toString);
    }

    @Test
    void unemulatableInstructionIsExplained() {
        Jvmm.Result r = Jvmm.run("run", KvmSupport.guest("pmint3.bin").toString());
        assertTrue(r.stdout().contains("pm"), r::toString);
        if (HostInfo.virtualization() == HostInfo.Virtualization.EMULATED) {
            assertEquals(ExitStatus.INTERNAL_ERROR, r.status(), r::toString);
            assertTrue(r.stderr().contains("could not emulate the instruction"), r::toString);
            assertTrue(r.stderr().contains("bytes cc"), "names the int3 opcode at RIP: " + r);
        } else {
            // real hardware delivers the int3 through an empty IDT: a triple fault
            assertEquals(ExitStatus.GUEST_SHUTDOWN, r.status(), r::toString);
        }
    }

    @Test
    void serialLogAndStatsJson(@TempDir Path tmp) throws IOException {
        Path log = tmp.resolve("serial.log");
        Path json = tmp.resolve("stats.json");
        Jvmm.Result r = Jvmm.run("run", "--serial-log", log.toString(), "--stats", "--stats-json", json.toString(),
                KvmSupport.guest("hello.bin").toString());
        assertEquals(GUEST_OK, r.status(), r::toString);
        assertTrue(Files.readString(log).contains("Hello from a jvmm guest"));
        assertTrue(!r.stdout().contains("Hello"), "output went to the log, not stdout");
        assertTrue(r.stderr().contains("vCPU 0:") && r.stderr().contains("com1"), r::toString);
        String j = Files.readString(json);
        assertTrue(j.contains("\"exit_status\": 33"), j);
        assertTrue(j.matches("(?s).*\"IO\": [1-9][0-9]*.*"), j);
        assertTrue(j.contains("\"device\": \"com1\""), j);
        // the timeline: every milestone of a run that printed and stopped, in order, in ms since the process start
        assertTrue(r.stderr().contains("timeline, ms since process start: main "), r::toString);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"timeline_ms\": \\{([^}]*)}").matcher(j);
        assertTrue(m.find(), j);
        List<String> names = new java.util.ArrayList<>();
        double last = -1;
        for (String kv : m.group(1).split(", ")) {
            String[] p = kv.split(": ");
            names.add(p[0].replace("\"", ""));
            double ms = Double.parseDouble(p[1]);
            assertTrue(ms >= 0, j);
            if (!p[0].contains("first_console_byte") && !p[0].contains("stop_requested")) { // the vCPU's marks race the main thread's
                assertTrue(ms >= last, "milestones in order: " + j);
                last = ms;
            }
        }
        assertEquals(List.of("process_start", "main", "command", "kernel_loaded", "vm_created", "vcpus_started",
                "first_console_byte", "stop_requested", "exit"), names, j);
    }
}
