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
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --expect, --on-reboot, and refusing Linux where it cannot run. */
class RunControlTest {
    @BeforeEach
    void kvm() {
        KvmSupport.requireKvm();
    }

    /** Runs jvmm with {@code args}, which must end with {@code status} (the failure shows the whole result). */
    private static Jvmm.Result runEndingWith(int status, String... args) {
        Jvmm.Result r = Jvmm.run(args);
        assertEquals(status, r.status(), r::toString);
        return r;
    }

    @Test
    void expectEndsTheRunAsSoonAsTheOutputMatches() {
        // echo.bin waits for input forever after its banner: only the match can end this run
        Jvmm.Result r = runEndingWith(ExitStatus.OK, "run", "--no-stdin", "--timeout", "20s", "--expect", "^echo re.dy$",
                KvmSupport.guest("echo.bin").toString());
        assertTrue(r.stdout().contains("echo ready"), r::toString);
        assertTrue(r.millis() < 15_000, "ended by the match, not the timeout: " + r);
    }

    @Test
    void expectCountsAMatchPrintedJustBeforeTheGuestStops() {
        runEndingWith(ExitStatus.OK, "run", "--expect", "Hello from", KvmSupport.guest("hello.bin").toString());
    }

    @Test
    void expectFailsWhenTheGuestStopsFirst() {
        Jvmm.Result r = runEndingWith(ExitStatus.EXPECT_UNMATCHED, "run", "--expect", "never printed", KvmSupport.guest("reset.bin").toString());
        assertTrue(r.stderr().contains("before its output matched --expect"), r::toString);
    }

    @Test
    void expectFailsOnTimeout() {
        runEndingWith(ExitStatus.TIMEOUT, "run", "--timeout", "1s", "--expect", "x", KvmSupport.guest("spin.bin").toString());
    }

    @Test
    void badExpectIsAUsageError() {
        Jvmm.Result r = runEndingWith(ExitStatus.USAGE, "run", "--expect", "(", KvmSupport.guest("hello.bin").toString());
        assertTrue(r.stderr().contains("not a valid regular expression"), r::toString);
    }

    @Test
    void rebootEndsTheRunByDefaultAndRestartsWhenAsked() {
        Jvmm.Result once = runEndingWith(ExitStatus.OK, "run", KvmSupport.guest("reset.bin").toString());
        assertEquals(1, count(once.stdout(), "resetting"), once::toString);
        Jvmm.Result again = runEndingWith(ExitStatus.TIMEOUT, "run", "--on-reboot=restart", "--timeout", "4s", KvmSupport.guest("reset.bin").toString());
        assertTrue(count(again.stdout(), "resetting") >= 2, "the VM restarted after each reset: " + again);
    }

    @Test
    void linuxKernelIsRefusedWhereKvmOnlyEmulates(@TempDir Path tmp) throws IOException {
        Path fake = tmp.resolve("vmlinux");
        Files.copy(KvmSupport.guest("hello64.elf"), fake);
        Files.write(fake, "\0Linux version 6.1.0-test (jvmm)\0".getBytes(StandardCharsets.US_ASCII), StandardOpenOption.APPEND);
        Jvmm.Result r = Jvmm.run("run", fake.toString());
        if (HostInfo.virtualization() == HostInfo.Virtualization.EMULATED) {
            assertEquals(ExitStatus.HOST_UNSUITABLE, r.status(), r::toString);
            assertTrue(r.stderr().contains("is a Linux kernel") && r.stderr().contains("nested-kvm"), r::toString);
            assertEquals(1, r.stderr().strip().split("\n").length, r::toString);
            runEndingWith(33, "run", "--force", fake.toString());
        } else {
            assertEquals(33, r.status(), r::toString);
        }
    }

    /** A guest that jumps to the reset vector (as Linux's BIOS reboot fallback does) resets the machine. */
    @Test
    void jumpingToTheResetVectorResetsTheMachine(@TempDir Path tmp) throws IOException {
        Path k = Files.write(tmp.resolve("jmp.bin"), new byte[] {(byte) 0xea, (byte) 0xf0, (byte) 0xff, 0x00, (byte) 0xf0});
        Jvmm.Result acpi = runEndingWith(ExitStatus.OK, "run", "-v", k.toString());
        assertTrue(acpi.stderr().contains("reset the machine (ACPI)"), acpi::toString);
        Jvmm.Result kbd = runEndingWith(ExitStatus.OK, "run", "-v", "--no-acpi", k.toString());
        assertTrue(kbd.stderr().contains("i8042"), kbd::toString);
    }

    @Test
    void aGuestThatHaltsForGoodEndsTheRun() {
        Jvmm.Result r = runEndingWith(ExitStatus.OK, "run", "--smp", "2", "--timeout", "30s", KvmSupport.guest("halt.bin").toString());
        assertTrue(r.stdout().contains("halting"), r::toString);
        assertTrue(r.millis() < 25_000, "ended by the halt probe, not the timeout: " + r);
    }

    @Test
    void longModeEntry() {
        Jvmm.Result r = runEndingWith(33, "run", KvmSupport.guest("hello64.elf").toString());
        assertTrue(r.stdout().contains("hello from long mode"), r::toString);
    }

    @Test
    void pvhEntry() {
        Jvmm.Result r = runEndingWith(33, "run", KvmSupport.guest("pvh.elf").toString());
        assertTrue(r.stdout().contains("hello from PVH") && r.stdout().contains("pvh magic ok"), r::toString);
    }

    static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) n++;
        return n;
    }

    /** A kernel panic is never a success, even when the guest then reboots (panic=-1): pvpanic. */
    @Test
    void aPanicReportedThroughPvpanicEndsTheRunWith20() {
        Jvmm.Result r = Jvmm.run("p".getBytes(StandardCharsets.US_ASCII), 60, "run", "--timeout", "30s",
                KvmSupport.guest("panic.bin").toString());
        assertEquals(ExitStatus.GUEST_PANIC, r.status(), r::toString);
        assertTrue(r.stderr().contains("the guest kernel panicked (pvpanic)"), r::toString);
    }

    /** ... and through the panic line, for kernels without the pvpanic driver. */
    @Test
    void aPanicLineOnTheConsoleEndsTheRunWith20() {
        Jvmm.Result r = Jvmm.run("l".getBytes(StandardCharsets.US_ASCII), 60, "run", "--timeout", "30s",
                KvmSupport.guest("panic.bin").toString());
        assertEquals(ExitStatus.GUEST_PANIC, r.status(), r::toString);
        assertTrue(r.stderr().contains("Attempted to kill init!"), r::toString);
        assertTrue(r.stdout().contains("Kernel panic - not syncing"), "the panic line is still in the output: " + r);
    }

    /** The run ends once the report after the panic line is written, not half-way through it. */
    @Test
    void aSlowPanicReportReachesTheOutputWhole() {
        Jvmm.Result r = Jvmm.run("r".getBytes(StandardCharsets.US_ASCII), 60, "run", "--timeout", "30s", "--stats",
                KvmSupport.guest("panic.bin").toString());
        assertEquals(ExitStatus.GUEST_PANIC, r.status(), r::toString);
        assertEquals(12, r.stdout().lines().filter(l -> l.equals("  a line of the panic report")).count(), r::toString);
        assertTrue(r.stdout().contains("end of the panic report"), "the whole report is in the output: " + r);
        assertTrue(r.stderr().contains("Attempted to kill init!") && !r.stderr().contains("--timeout"), r::toString);
    }

    @Test
    void failOnEndsTheRunWith22() {
        Jvmm.Result r = runEndingWith(ExitStatus.FAIL_ON_MATCHED, "run", "--fail-on", "BUG:", "--fail-on", "fr[o]m a jvmm", KvmSupport.guest("hello.bin").toString());
        assertTrue(r.stderr().contains("matched --fail-on 'fr[o]m a jvmm'"), r::toString);
        runEndingWith(33, "run", "--fail-on", "BUG:", KvmSupport.guest("hello.bin").toString());
    }
}
