package dev.jvmm.it;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * scripts/nested-kvm: jvmm inside a QEMU (TCG) VM whose /dev/kvm is AMD-V with nested paging, as a
 * normal KVM host would have. Slow (a VM boot per test, tens of seconds the first time while it fetches
 * the Debian kernel and builds its cache), so it runs only with -Djvmm.nested=true.
 */
class NestedKvmTest {
    private static final Path SCRIPT = Path.of("scripts", "nested-kvm").toAbsolutePath();

    @BeforeAll
    static void gate() {
        Assumptions.assumeTrue(Boolean.getBoolean("jvmm.nested"),
                "nested-KVM tests are off: run with -Djvmm.nested=true (boots QEMU VMs, needs apt access on first use)");
        Assumptions.assumeTrue(Files.isExecutable(SCRIPT), SCRIPT + " is missing");
    }

    @Test
    void jvmmCheckSeesHardwareVirtualization() {
        Jvmm.Result r = nested("--", "jvmm", "check");
        assertEquals(0, r.status(), r::toString);
        assertTrue(r.stdout().contains("hardware virtualization"), r::toString);
        assertTrue(r.stdout().contains("KVM API version 12"), r::toString);
    }

    @Test
    void exitStatusOfTheCommandComesBack() {
        Jvmm.Result r = nested("--", "sh", "-c", "echo out; echo err >&2; exit 7");
        assertEquals(7, r.status(), r::toString);
        assertEquals("out\n", r.stdout(), r::toString);
        assertTrue(r.stderr().contains("err\n"), r::toString);
    }

    /**
     * Debian's cloud kernel, unmodified, booted by jvmm inside the nested VM with a busybox initramfs and
     * 2 vCPUs: as a bzImage decompressed on the host, as a bzImage decompressing itself, and as the
     * vmlinux inside it through the 64-bit entry. The guest's nproc, /proc/cmdline and poweroff decide.
     */
    @Test
    void unmodifiedLinuxBootsToInitAndPowersOff(@TempDir Path tmp) throws Exception {
        Process fetch = new ProcessBuilder(Path.of("scripts", "fetch-guest-kernel").toAbsolutePath().toString())
                .redirectErrorStream(true).start();
        String fetched = new String(fetch.getInputStream().readAllBytes());
        assertEquals(0, fetch.waitFor(), fetched);
        String vmlinuz = fetched.lines().filter(l -> l.startsWith("vmlinuz=")).findFirst()
                .orElseThrow(() -> new AssertionError("no vmlinuz= in " + fetched)).substring("vmlinuz=".length());
        Path bz = tmp.resolve("bzImage");
        Files.copy(Path.of(vmlinuz), bz);
        Files.write(tmp.resolve("vmlinux"), dev.jvmm.loader.LinuxLoader.extractVmlinux(bz, Files.readAllBytes(bz)));
        Files.writeString(tmp.resolve("init"), """
                #!/bin/sh
                /bin/busybox mount -t proc proc /proc
                echo "SMOKE nproc=$(/bin/busybox nproc) cmdline=$(/bin/busybox cat /proc/cmdline)"
                /bin/busybox poweroff -f
                """);
        Process mk = new ProcessBuilder(Path.of("scripts", "mkinitramfs").toAbsolutePath().toString(), "--init",
                tmp.resolve("init").toString(), "--out", tmp.resolve("initrd.gz").toString()).redirectErrorStream(true).start();
        String mkOut = new String(mk.getInputStream().readAllBytes());
        assertEquals(0, mk.waitFor(), mkOut);
        String[][] variants = {{"bzImage"}, {"--host-decompress", "bzImage"}, {"--boot", "64", "vmlinux"}};
        StringBuilder script = new StringBuilder("#!/bin/sh\n");
        for (String[] v : variants) {
            String opts = String.join(" ", java.util.Arrays.copyOf(v, v.length - 1));
            script.append("jvmm run --smp 2 --mem 256M --timeout 150s ").append(opts)
                    .append(" --cmdline 'console=ttyS0 quiet panic=-1 jvmm.test=").append(v.length).append("'")
                    .append(" --initrd ").append(tmp.resolve("initrd.gz")).append(' ').append(tmp.resolve(v[v.length - 1]))
                    .append(" > /tmp/out 2>&1; echo \"RESULT ").append(String.join(" ", v))
                    .append(" status=$? $(grep SMOKE /tmp/out)\"; grep -q SMOKE /tmp/out || tail -20 /tmp/out\n");
        }
        Files.writeString(tmp.resolve("run.sh"), script.toString());
        assertTrue(tmp.resolve("run.sh").toFile().setExecutable(true));
        Jvmm.Result r = nested("--smp", "2", "--share", tmp.toString(), "--", tmp.resolve("run.sh").toString());
        assertEquals(0, r.status(), r::toString);
        for (String[] v : variants) {
            String line = r.stdout().lines().filter(l -> l.startsWith("RESULT " + String.join(" ", v) + " "))
                    .findFirst().orElseThrow(() -> new AssertionError("no result for " + String.join(" ", v) + ": " + r));
            assertTrue(line.contains("status=0 "), "poweroff ends jvmm with 0: " + line + "\n" + r);
            assertTrue(line.contains("nproc=2 "), "the guest sees 2 CPUs: " + line);
            assertTrue(line.contains("jvmm.test=" + v.length), "the guest sees our command line: " + line);
        }
    }

    /**
     * Linux's reboot ends jvmm with 0 (--on-reboot exit); the reboot after a panic with panic=-1 with the
     * panic status. The guests have one vCPU: the guests' triple faults seen in CI (2 s into a boot, and
     * mid-transfer in the virtio check) were all in 2-vCPU guests. The nested VM's own stalls are not
     * only theirs: on 2026-12-03 one came in 23 short 2-vCPU boots in a row, and one in this check with
     * 1-vCPU guests, before the first guest printed anything (nested() runs a stalled VM once more).
     * SMP under Linux is checked where it is the point: the boot check (nproc=2, three ways), gdb's
     * two threads, and the snapshot of a 2-vCPU guest.
     */
    @Test
    void linuxRebootAndPanicEndTheRun(@TempDir Path tmp) throws Exception {
        String vmlinuz = keyValue(script("fetch-guest-kernel"), "vmlinuz");
        StringBuilder run = new StringBuilder("#!/bin/sh\n");
        for (String mode : new String[] {"reboot", "panic"}) {
            Files.writeString(tmp.resolve("init-" + mode), "#!/bin/sh\n/bin/busybox mount -t proc proc /proc\n"
                    + "echo RB " + mode + "\n"
                    + (mode.equals("reboot") ? "/bin/busybox reboot -f\n" : "echo c > /proc/sysrq-trigger\n")
                    + "/bin/busybox sleep 1000\n");
            script("mkinitramfs", "--init", tmp.resolve("init-" + mode).toString(), "--out", tmp.resolve(mode + ".gz").toString());
            // not quiet: a boot that sticks (seen once in CI: the panic run printed nothing in 100 s) shows where.
            // A run that triple-faults (status 8: seen in CI mid-boot, 2 s in, and in other nested checks
            // mid-run; TCG's emulation of nested SVM, as far as seen) runs once more, its end printed first.
            int shutdown = dev.jvmm.vmm.ExitStatus.GUEST_SHUTDOWN;
            run.append("for try in 1 2; do\n")
                    .append("  jvmm run --smp 1 --mem 256M --timeout 100s --cmdline 'console=ttyS0 panic=-1' --initrd ")
                    .append(tmp.resolve(mode + ".gz")).append(' ').append(vmlinuz).append(" > /tmp/o 2>&1; st=$?\n")
                    .append("  { [ $st = ").append(shutdown).append(" ] && [ $try = 1 ]; } || break\n")
                    .append("  echo \"RETRY ").append(mode).append(": the first run triple-faulted (status $st)\"\n")
                    .append("  tail -n 40 /tmp/o | sed 's/^/  first ").append(mode).append(": /'\n")
                    .append("done\n")
                    .append("echo \"RESULT ").append(mode).append(" status=$st $(grep -c 'RB ' /tmp/o)\"\n")
                    // the end of the run's output, for a failure's message
                    .append("tail -n 30 /tmp/o | sed 's/^/  ").append(mode).append(": /'\n");
        }
        Files.writeString(tmp.resolve("run.sh"), run.toString());
        assertTrue(tmp.resolve("run.sh").toFile().setExecutable(true));
        Jvmm.Result r = nested("--smp", "2", "--share", tmp.toString(), "--share", vmlinuz, "--", tmp.resolve("run.sh").toString());
        if (r.stdout().contains("RETRY ")) System.err.println("NestedKvmTest: a Linux run triple-faulted and ran once more: " + r);
        assertEquals(0, r.status(), r::toString);
        assertTrue(r.stdout().contains("RESULT reboot status=0 1"), "reboot ends the run with 0: " + r);
        // a panic is never a success, though panic=-1 makes the kernel reboot after it (the issue asks for this)
        assertTrue(r.stdout().contains("RESULT panic status=" + dev.jvmm.vmm.ExitStatus.GUEST_PANIC + " 1"),
                "a panic with panic=-1 ends the run with the panic status: " + r);
    }

    /** Runs a helper script of the project, returning its output; fails the test if it fails. */
    private static String script(String name, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of("scripts", name).toAbsolutePath().toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        CompletableFuture<String> out = Jvmm.drain(p.getInputStream());
        assertTrue(p.waitFor(40, TimeUnit.MINUTES), name + " did not finish");
        assertEquals(0, p.exitValue(), () -> name + " failed:\n" + out.join());
        return out.join();
    }

    private static String keyValue(String output, String key) {
        return output.lines().filter(l -> l.startsWith(key + "=")).reduce((a, b) -> b)
                .orElseThrow(() -> new AssertionError("no " + key + "= in " + output)).substring(key.length() + 1);
    }

    /**
     * The virtio devices under Linux (the kernel from scripts/build-guest-kernel with
     * guests/linux/jvmm.config): an ext4 image made with mke2fs -d mounts and a file's checksum
     * matches; a file the guest writes and syncs is in the image after jvmm is killed with -9 (a
     * second boot reads it back; a read-only disk there refuses writes); /dev/hwrng gives bytes;
     * the guest pings the host end of a tap and moves 4 MB over TCP each way; the second boot's
     * console is a virtio console (hvc0).
     */
    @Test
    void virtioDevicesUnderLinux(@TempDir Path tmp) throws Exception {
        String kernel = keyValue(script("build-guest-kernel", "--out", tmp.resolve("k").toString()), "bzImage");
        Path files = Files.createDirectories(tmp.resolve("files"));
        byte[] blob = new byte[300_000];
        new java.util.Random(7).nextBytes(blob);
        Files.write(files.resolve("blob.bin"), blob);
        String md5 = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("MD5").digest(blob));
        Path disk = tmp.resolve("disk.img");
        Process mkfs = new ProcessBuilder("mke2fs", "-q", "-F", "-d", files.toString(), "-t", "ext4", disk.toString(), "16M")
                .redirectErrorStream(true).start();
        String mkfsOut = new String(mkfs.getInputStream().readAllBytes());
        assertEquals(0, mkfs.waitFor(), mkfsOut);
        Files.writeString(tmp.resolve("init"), """
                #!/bin/sh
                B=/bin/busybox
                $B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
                $B mkdir -p /mnt
                if $B grep -q phase=1 /proc/cmdline; then
                  $B mount -t ext4 /dev/vda /mnt && echo "VX md5 $($B md5sum /mnt/blob.bin | $B cut -d' ' -f1)"
                  echo "written before kill -9" > /mnt/guest.txt; $B sync; echo "VX synced"
                  echo "VX hwrng $($B head -c 16 /dev/hwrng | $B od -An -tx1 | $B tr -d ' \n')"
                  $B ip addr add 10.0.0.2/24 dev eth0; $B ip link set eth0 up; $B sleep 1
                  $B ping -c 3 -W 5 10.0.0.1 >/dev/null && echo "VX ping ok"
                  $B dd if=/dev/zero bs=1024 count=4096 2>/dev/null | $B nc 10.0.0.1 5001 && echo "VX sent 4194304"
                  echo "VX received $($B nc 10.0.0.1 5002 | $B wc -c)"
                  echo "VX waiting"; $B sleep 1000
                else
                  $B mount -t ext4 /dev/vda /mnt && echo "VX after kill: $($B cat /mnt/guest.txt)"
                  echo x > /dev/vdb 2>/dev/null || echo "VX read-only refused"
                  echo "VX console $($B cat /sys/class/tty/console/active)"
                  $B poweroff -f
                fi
                """);
        script("mkinitramfs", "--init", tmp.resolve("init").toString(), "--out", tmp.resolve("initrd.gz").toString());
        // one vCPU, as in the reboot check (see there); 2-vCPU guests with devices: the snapshot check
        String common = "jvmm run --smp 1 --mem 256M --timeout 240s --initrd " + tmp.resolve("initrd.gz");
        Files.writeString(tmp.resolve("run.sh"), "#!/bin/sh\nB=/bin/busybox\n"
                + common + " --disk " + disk + " --rng --net tap=t0 --cmdline 'console=ttyS0 quiet phase=1' " + kernel
                + " > /tmp/one 2>&1 &\n"
                + "jp=$!; i=0; while [ ! -e /sys/class/net/t0 ] && [ $i -lt 600 ]; do $B sleep 0.1; i=$((i+1)); done\n"
                + "$B ip addr add 10.0.0.1/24 dev t0; $B ip link set t0 up\n"
                + "($B sleep 200 | $B nc -l -p 5001 > /tmp/got) &\n"
                + "($B dd if=/dev/zero bs=1024 count=4096 2>/dev/null | $B nc -l -p 5002) &\n"
                + "i=0; while ! $B grep -q 'VX waiting' /tmp/one && [ $i -lt 2000 ]; do $B sleep 0.1; i=$((i+1)); done\n"
                + "kill -9 $jp; wait $jp; st=$?; echo \"HOST killed status=$st\"\n"
                + "$B grep VX /tmp/one\n"
                + "[ $st = 137 ] || { echo 'HOST the first run ended before the kill:'; $B tail -40 /tmp/one; }\n"
                + "$B cp " + disk + " " + disk + ".ro\n"
                + common + " --disk " + disk + " --disk " + disk + ".ro,ro --console virtio --cmdline 'console=hvc0 quiet phase=2' " + kernel
                + " > /tmp/two 2>&1; echo \"HOST second status=$?\"\n"
                + "$B grep VX /tmp/two\n"
                + "$B grep -q 'VX' /tmp/one || $B tail -30 /tmp/one\n");
        assertTrue(tmp.resolve("run.sh").toFile().setExecutable(true));
        Jvmm.Result r = nested("--smp", "2", "--share", tmp.toString(), "--", tmp.resolve("run.sh").toString());
        if (r.stdout().contains("HOST killed status=" + dev.jvmm.vmm.ExitStatus.GUEST_SHUTDOWN)
                || r.stdout().contains("HOST second status=" + dev.jvmm.vmm.ExitStatus.GUEST_SHUTDOWN)) {
            // A nested guest triple-faulted (seen in CI in the first run, mid-transfer, and on 2026-12-04 in
            // the second, a 1-vCPU guest, right after it read the disk; PVH boots did it now and then as
            // well): TCG's emulation of nested SVM, as far as seen. Its register dump is in r.
            System.err.println("NestedKvmTest: a Linux run triple-faulted; running the check once more. First run: " + r);
            r = nested("--smp", "2", "--share", tmp.toString(), "--", tmp.resolve("run.sh").toString());
        }
        assertEquals(0, r.status(), r::toString);
        String out = r.stdout();
        assertTrue(out.contains("VX md5 " + md5), "the file read through virtio-blk has the right checksum: " + r);
        assertTrue(out.contains("VX synced"), r::toString);
        assertTrue(out.matches("(?s).*VX hwrng [0-9a-f]{32}.*"), "/dev/hwrng gave 16 bytes: " + r);
        assertTrue(out.contains("VX ping ok"), "the guest pinged the tap's host end: " + r);
        assertTrue(out.contains("VX sent 4194304") && out.contains("VX received 4194304"), "4 MB each way over TCP: " + r);
        assertTrue(out.contains("HOST killed status=137"), "jvmm was killed with -9: " + r);
        assertTrue(out.contains("VX after kill: written before kill -9"), "the synced write survived kill -9: " + r);
        assertTrue(out.contains("VX read-only refused"), r::toString);
        assertTrue(out.contains("VX console hvc0"), "the console was the virtio console: " + r);
        assertTrue(out.contains("HOST second status=0"), r::toString);
    }

    /**
     * {@code jvmm run --rootfs / KERNEL -- COMMAND} with Debian's cloud kernel, unmodified, and its
     * modules as a kernel package unpacked with dpkg -x has them (no modules.dep), all in one nested VM:
     * <ul>
     *   <li>R1: the command's stdout and stderr come back apart, its status is jvmm's, stdin reaches it;</li>
     *   <li>R2: a missing command is 127; the second run used the cached initramfs base (-v says so);</li>
     *   <li>R3: a file written into a --share is on the host afterwards, a ro share refuses writes, and
     *       a 100 MB file read through virtio-fs has the host's MD5;</li>
     *   <li>R5: a panic of the kernel ends the run with 20;</li>
     *   <li>R8: with {@code --rootfs TREE} (a small directory), host paths outside TREE are not there,
     *       and neither {@code ..} nor symlinks pointing out of TREE (absolute, relative) reach them;</li>
     *   <li>R9: the root's virtiofsd is chrooted into TREE (its /proc/PID/root); killing it with -9
     *       mid-run ends jvmm with status 6 and one line naming it;</li>
     *   <li>R10, R11: SIGTERM to jvmm (143) and --timeout (124) mid-run leave no virtiofsd behind
     *       (and none is left after any run: R6);</li>
     *   <li>R14: Debian's generic kernel (XZ payload, its own modules) runs a command too; its
     *       --stats-json timeline has the host's and the guest init's milestones, in order.</li>
     * </ul>
     * The nested VM's busybox has no pgrep: processes are found by their /proc/PID/cmdline. The lines
     * "T LABEL UPTIME" time the script's steps (seconds inside the nested VM).
     */
    @Test
    void aCommandRunsInTheKernelAgainstTheHostsFiles(@TempDir Path tmp) throws Exception {
        TrimmedKernel cloud = trimmedKernel(tmp.resolve("k"), "cloud");
        TrimmedKernel generic = trimmedKernel(tmp.resolve("kg"), "generic");
        Path kernel = cloud.kernel();
        Path rw = Files.createDirectories(tmp.resolve("rw"));
        Path ro = Files.createDirectories(tmp.resolve("ro"));
        Files.writeString(ro.resolve("file.txt"), "read-only content\n");
        String jvmm = "jvmm run --mem 256M --timeout 200s ";
        String run = jvmm + "--rootfs / --share " + rw + " --share " + ro + ",ro " + kernel + " -- ";
        // a small root: a static busybox, a file inside, symlinks pointing out, a secret outside it
        String tree = "/srv/tree", secret = "/srv/outside/secret.txt";
        String runTree = jvmm + "--rootfs " + tree + " " + kernel + " -- ";
        Files.writeString(tmp.resolve("run.sh"), "#!/bin/sh\nB=/bin/busybox\n"
                + "t() { echo \"T $1 $($B cut -d' ' -f1 /proc/uptime)\"; }\n"
                // pids PATTERN: the processes whose command line contains PATTERN (the shell's own
                // children started for this are not yet in the list the glob made)
                + "pids() { for f in /proc/[0-9]*/cmdline; do if $B tr '\\0' ' ' < \"$f\" 2>/dev/null | $B grep -q -- \"$1\"; then"
                + " p=${f#/proc/}; echo ${p%/cmdline}; fi; done; }\n"
                + "count() { pids \"$1\" | $B wc -l; }\n"
                // waitfor FILE: until the command wrote its "ready" line (or 120 s)
                + "waitfor() { i=0; while ! $B grep -q ready \"$1\" 2>/dev/null && [ $i -lt 1200 ]; do $B sleep 0.1; i=$((i+1)); done; }\n"
                + "$B dd if=/dev/urandom of=" + rw + "/big.bin bs=1M count=100 2>/dev/null\n"
                + "echo \"R3 big=$($B md5sum " + rw + "/big.bin | $B cut -d' ' -f1) size=$($B stat -c %s " + rw + "/big.bin)\"\n"
                + "t start\n"
                + "echo hello-stdin | " + run + "sh -c 'read l; echo out; echo got:$l; echo err >&2; exit 42' > /tmp/o1 2> /tmp/e1;"
                + " echo \"R1 status=$?\"\n"
                + "echo \"R1 out=[$($B tr '\\n' ' ' < /tmp/o1)] err=$($B grep -c '^err$' /tmp/e1)\"\n"
                + "t R1\n"
                + run.replace("jvmm run ", "jvmm run -v ") + "no-such-command-here > /tmp/o2 2> /tmp/e2; echo \"R2 status=$?\"\n"
                + "echo \"R2 cached=$($B grep -c 'initramfs base .*: cached' /tmp/e2) made=$($B grep -c 'initramfs base .*: made' /tmp/e2)\"\n"
                + "t R2\n"
                + run + "sh -c 'echo written-in-the-guest > " + rw + "/out.txt; cat " + ro + "/file.txt; echo x > " + ro
                + "/new.txt || echo ro-refused; echo guest-md5=$(md5sum " + rw + "/big.bin | cut -d\" \" -f1)' > /tmp/o3 2>&1;"
                + " echo \"R3 status=$?\"\n"
                + "echo \"R3 host=[$($B cat " + rw + "/out.txt)] guest=$($B tr '\\n' ' ' < /tmp/o3)\"\n"
                + "$B rm -f " + rw + "/big.bin\n"
                + "t R3\n"
                + run + "sh -c 'echo c > /proc/sysrq-trigger' > /tmp/o5 2> /tmp/e5; echo \"R5 status=$?\"\n"
                + "echo \"R6 virtiofsd=$(count virtiofsd)\"\n"
                + "t R5\n"
                // R8: nothing outside the tree
                + "$B mkdir -p " + tree + "/bin " + tree + "/dev " + tree + "/proc " + tree + "/sys " + tree + "/tmp " + tree + "/sub/dir /srv/outside\n"
                + "$B cp /bin/busybox " + tree + "/bin/busybox; $B ln -s busybox " + tree + "/bin/sh\n"
                + "echo HOST-SECRET > " + secret + "; echo inside-the-tree > " + tree + "/inside.txt\n"
                + "$B ln -s " + secret + " " + tree + "/abs-link\n"
                + "$B ln -s ../../../../../../outside/secret.txt " + tree + "/sub/dir/rel-link\n"
                + "$B ln -s / " + tree + "/root-link\n"
                + runTree + "/bin/busybox sh -c 'B=/bin/busybox; $B cat /inside.txt; for p in " + secret + " /abs-link /sub/dir/rel-link"
                + " /../../srv/outside/secret.txt /sub/../../../srv/outside/secret.txt /root-link/../srv/outside/secret.txt"
                + " /proc/1/root" + secret + "; do if $B cat $p 2>/dev/null | $B grep -q HOST-SECRET; then echo \"E leak $p\";"
                + " else echo \"E hidden $p\"; fi; done; cd /../../..; echo \"E pwd=$($B pwd) ls=$($B ls | $B tr \"\\n\" ,)\"'"
                + " > /tmp/o8 2> /tmp/e8; echo \"R8 status=$?\"; $B cat /tmp/o8\n"
                + "t R8\n"
                // R9: the root's virtiofsd chrooted into the tree; killed with -9 mid-run
                + runTree + "/bin/busybox sh -c 'echo ready; /bin/busybox sleep 120' > /tmp/o9 2> /tmp/e9 &\n"
                + "jp=$!; waitfor /tmp/o9; vp=$(pids 'source=" + tree + "' | $B head -n1)\n"
                + "echo \"R9 ready=$($B grep -c ready /tmp/o9) root=$($B readlink /proc/$vp/root)\"\n"
                + "[ -n \"$vp\" ] && kill -9 $vp; wait $jp; echo \"R9 status=$?\"\n"
                + "echo \"R9 hungup=$($B grep -c '^jvmm: .*hung up.*virtiofsd.*killed by signal 9' /tmp/e9)"
                + " other=$($B grep '^jvmm:' /tmp/e9 | $B grep -v -c 'setpriv\\|hung up')\"\n"
                + "$B grep '^jvmm:' /tmp/e9\n"
                + "echo \"R9 virtiofsd=$(count virtiofsd)\"\n"
                + "t R9\n"
                // R10: SIGTERM to jvmm mid-run
                + run + "sh -c 'echo ready; sleep 120' > /tmp/o10 2> /tmp/e10 &\n"
                + "jp=$!; waitfor /tmp/o10; echo \"R10 ready=$($B grep -c ready /tmp/o10) before=$(count virtiofsd)\"\n"
                + "kill -TERM $jp; wait $jp; echo \"R10 status=$? virtiofsd=$(count virtiofsd)\"\n"
                + "t R10\n"
                // R11: --timeout mid-run (the command is running when it strikes: it said ready)
                + run.replace("--timeout 200s", "--timeout 75s") + "sh -c 'echo ready; sleep 120' > /tmp/o11 2> /tmp/e11;"
                + " echo \"R11 status=$? ready=$($B grep -c ready /tmp/o11) virtiofsd=$(count virtiofsd) lines=$($B grep -c '^jvmm:' /tmp/e11)\"\n"
                + "t R11\n"
                // R14: the generic kernel
                + jvmm + "--stats-json /tmp/s14.json --rootfs / " + generic.kernel() + " -- sh -c 'uname -r; echo err >&2; exit 3' > /tmp/o14 2> /tmp/e14;"
                + " echo \"R14 status=$? out=[$($B cat /tmp/o14)] err=$($B grep -c '^err$' /tmp/e14)\"\n"
                + "echo \"R14 json $($B tr -d '\\n ' < /tmp/s14.json)\"\n"
                + "t R14\n"
                + "$B tail -3 /tmp/e1 /tmp/e5 /tmp/e8 /tmp/e10 /tmp/e11 /tmp/e14; true\n");
        assertTrue(tmp.resolve("run.sh").toFile().setExecutable(true));
        Jvmm.Result r = nested(20, "--smp", "2", "--share", tmp.toString(), "--", tmp.resolve("run.sh").toString());
        assertEquals(0, r.status(), r::toString);
        String out = r.stdout();
        assertTrue(out.contains("R1 status=42"), "the command's status is jvmm's: " + r);
        assertTrue(out.contains("R1 out=[out got:hello-stdin ] err=1"),
                "stdout and stderr apart, no kernel messages in stdout, stdin reaches the command: " + r);
        assertTrue(out.contains("R2 status=127"), "a missing command: " + r);
        assertTrue(out.contains("R2 cached=1 made=0"), "a second run does not rebuild the initramfs base: " + r);
        assertTrue(out.contains("R3 status=0"), r::toString);
        assertTrue(out.contains("R3 host=[written-in-the-guest]"), "the share's write is on the host: " + r);
        assertTrue(out.contains("read-only content") && out.contains("ro-refused"), "a ro share refuses writes: " + r);
        String hostMd5 = field(out, "R3 big=");
        assertTrue(hostMd5.matches("[0-9a-f]{32}") && out.contains("size=104857600"), r::toString);
        assertTrue(out.contains("guest-md5=" + hostMd5 + " "), "100 MB through virtio-fs, the host's MD5: " + r);
        assertTrue(out.contains("R5 status=20"), "a kernel panic ends the run with 20: " + r);
        assertTrue(out.contains("R6 virtiofsd=0"), "no virtiofsd outlives jvmm: " + r);

        assertTrue(out.contains("R8 status=0"), r::toString);
        assertTrue(out.contains("inside-the-tree"), "the tree is the root: " + r);
        assertTrue(!out.contains("E leak"), "nothing outside the tree is reachable: " + r);
        assertEquals(7, out.lines().filter(l -> l.startsWith("E hidden ")).count(), r::toString);
        assertTrue(out.matches("(?s).*E pwd=/ ls=[^\\n]*inside\\.txt,.*"), "'..' stops at the tree's root: " + r);
        assertTrue(!out.matches("(?s).*E pwd=/ ls=[^\\n]*outside.*"), r::toString);

        assertTrue(out.contains("R9 ready=1 root=" + tree + "\n"), "the root's virtiofsd is chrooted into the tree: " + r);
        assertTrue(out.contains("R9 status=" + dev.jvmm.vmm.ExitStatus.HOST_UNSUITABLE), "a dead virtiofsd ends the run with 6: " + r);
        assertTrue(out.contains("R9 hungup=1 other=0"), "one line, naming virtiofsd and how it ended: " + r);
        assertTrue(out.contains("R9 virtiofsd=0"), r::toString);
        assertTrue(out.matches("(?s).*R10 ready=1 before=[1-9]\\n.*"), "jvmm was mid-run, with its virtiofsd: " + r);
        assertTrue(out.contains("R10 status=143 virtiofsd=0"), "no virtiofsd outlives a SIGTERMed jvmm: " + r);
        assertTrue(out.contains("R11 status=124 ready=1 virtiofsd=0 lines=1"), "no virtiofsd outlives --timeout, one line says so: " + r);

        assertTrue(out.contains("R14 status=3 out=[" + generic.release() + "] err=1"), "Debian's generic kernel: " + r);
        // --stats-json: the run's phases, host and guest, in the order they happen
        String json = field(out, "R14 json ");
        long last = -1;
        for (String mark : new String[] {"initramfs_ready", "kernel_loaded", "vcpus_started", "guest_init", "root_mounted",
                "command_started", "command_exited", "stop_requested", "exit"}) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"" + mark + "\":([0-9.]+)").matcher(json);
            assertTrue(m.find(), mark + " in --stats-json: " + json);
            long at = Math.round(Double.parseDouble(m.group(1)) * 1000);
            assertTrue(at >= last, mark + " comes after the one before: " + json);
            last = at;
        }
    }

    /**
     * virtio-vsock under Linux (Debian's cloud kernel, its vsock modules insmod-ed from the initramfs),
     * with Firecracker's UNIX-socket protocol on the host side, all inside one nested VM: three host
     * programs connect to a guest port (CONNECT 5000) and three guest programs to the host (CID 2 port
     * 6000, i.e. the UNIX socket PATH_6000), all at once, each moving about 1 MB both ways; every byte
     * stream's FNV-1a hash and length at the receiver are the sender's. A host program that stops
     * reading (its connection accepted first) stalls none of them nor the console; a CONNECT to a port
     * nobody listens on in the guest, and a guest connection to a port nobody listens on at the host,
     * are refused promptly. src/test/resources/dev/jvmm/it/vsock-peer.c is both ends (gcc -static).
     */
    @Test
    void vsockExchangeBothWaysUnderLinux(@TempDir Path tmp) throws Exception {
        Path src = Path.of("src/test/resources/dev/jvmm/it/vsock-peer.c").toAbsolutePath();
        Path peer = tmp.resolve("vsock-peer");
        Process cc = new ProcessBuilder("gcc", "-static", "-O2", "-Wall", "-o", peer.toString(), src.toString()).redirectErrorStream(true).start();
        String ccOut = new String(cc.getInputStream().readAllBytes());
        assertEquals(0, cc.waitFor(), ccOut);
        String fetched = script("fetch-guest-kernel", "--flavour", "cloud");
        Path vmlinuz = Path.of(keyValue(fetched, "vmlinuz"));
        Path kernel = Files.copy(vmlinuz, tmp.resolve("vmlinuz"));
        List<String> mk = new ArrayList<>(List.of("--init", tmp.resolve("init").toString(), "--add", peer + ":/vsock-peer",
                "--out", tmp.resolve("initrd.gz").toString()));
        for (var m : new dev.jvmm.loader.initramfs.ModuleResolver(Path.of(keyValue(fetched, "modules")))
                .resolve(List.of("virtio_mmio", "vmw_vsock_virtio_transport"))) {
            mk.add("--module");
            mk.add(m.file().toString());
        }
        Files.writeString(tmp.resolve("init"), """
                #!/bin/sh
                B=/bin/busybox
                $B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
                for m in $($B cat /lib/modules/load-order); do $B insmod /lib/modules/$m || echo "VX insmod $m failed"; done
                # the driver bound to the device (DRIVER_OK follows its probe) before anyone connects
                D=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport; i=0
                while ! $B ls $D 2>/dev/null | $B grep -q '^virtio' && [ $i -lt 300 ]; do $B sleep 0.1; i=$((i+1)); done
                $B ls $D | $B grep -q '^virtio' && echo "VX driver bound"; $B sleep 1
                /vsock-peer g-listen 5000 &
                /vsock-peer g-connect 6000 1441792 & a=$!
                /vsock-peer g-connect 6000 1445891 & b=$!
                /vsock-peer g-connect 6000 1449990 & c=$!
                wait $a $b $c
                /vsock-peer g-refused 6001
                echo "VX guest done"
                $B sleep 1000
                """);
        script("mkinitramfs", mk.toArray(String[]::new));
        String p = peer.toString();
        Files.writeString(tmp.resolve("run.sh"), "#!/bin/sh\nB=/bin/busybox\n"
                + p + " h-listen /tmp/v.sock_6000 > /tmp/hl 2>&1 &\n"
                + "jvmm run --mem 256M --timeout 400s --stats --vsock cid=3,uds=/tmp/v.sock --initrd " + tmp.resolve("initrd.gz")
                + " --cmdline 'console=ttyS0 quiet' " + kernel + " > /tmp/one 2>&1 &\n"
                + "jp=$!; i=0; while ! $B grep -q 'VX g-listen ready' /tmp/one && [ $i -lt 3000 ]; do $B sleep 0.1; i=$((i+1)); done\n"
                + p + " h-stall /tmp/v.sock 5000 > /tmp/hs 2>&1 &\n"
                + "$B sleep 1\n"
                + p + " h-connect /tmp/v.sock 5000 1179648 > /tmp/h1 2>&1 & a=$!\n"
                + p + " h-connect /tmp/v.sock 5000 1183747 > /tmp/h2 2>&1 & b=$!\n"
                + p + " h-connect /tmp/v.sock 5000 1187846 > /tmp/h3 2>&1 & c=$!\n"
                + "wait $a $b $c\n"
                + p + " h-connect /tmp/v.sock 5999 0 > /tmp/hr 2>&1\n"
                + "i=0; while ! $B grep -q 'VX guest done' /tmp/one && [ $i -lt 3000 ]; do $B sleep 0.1; i=$((i+1)); done\n"
                + "kill -TERM $jp; wait $jp; echo \"HOST jvmm status=$?\"\n"
                + "$B cat /tmp/hl /tmp/hs /tmp/h1 /tmp/h2 /tmp/h3 /tmp/hr\n"
                + "$B grep -a -e VX -e virtio-vsock -e '^jvmm' /tmp/one | $B tr -d '\\r'\n"
                + "$B grep -q 'VX guest done' /tmp/one || $B tail -40 /tmp/one\n");
        assertTrue(tmp.resolve("run.sh").toFile().setExecutable(true));
        Jvmm.Result r = nested("--share", tmp.toString(), "--", tmp.resolve("run.sh").toString());
        assertEquals(0, r.status(), r::toString);
        String out = r.stdout();
        assertTrue(out.contains("VX driver bound"), "the guest's vsock driver bound to the device: " + r);
        assertTrue(out.contains("HOST jvmm status=143"), "SIGTERM ended jvmm: " + r);
        List<String> sent = new ArrayList<>(), got = new ArrayList<>();
        for (String l : out.lines().toList()) {
            String[] f = l.strip().split(" ");
            if (f.length == 5 && f[0].equals("VX") && f[1].equals("sent")) sent.add(f[2] + " " + f[3]);
            if (f.length == 5 && f[0].equals("VX") && f[1].equals("got")) got.add(f[2] + " " + f[3]);
        }
        java.util.Collections.sort(sent);
        java.util.Collections.sort(got);
        assertEquals(12, sent.size(), "3 host and 3 guest connections, both ways: " + r);
        assertEquals(sent, got, "every stream arrived whole: " + r);
        for (String s : got) assertTrue(Long.parseLong(s.split(" ")[0]) >= 1_000_000, s);
        assertTrue(out.contains("VX stalled ok"), "the peer that stops reading was connected first: " + r);
        assertTrue(Long.parseLong(field(out, "VX host refused port=5999 ms=")) < 5000, "CONNECT to a port nobody listens on: " + r);
        String refused = out.lines().filter(l -> l.contains("VX guest refused errno=")).findFirst()
                .orElseThrow(() -> new AssertionError("the guest's connection to a port nobody listens on: " + r));
        assertTrue(Long.parseLong(refused.strip().replaceAll(".*ms=([0-9]+).*", "$1")) < 5000, refused);
        assertTrue(out.contains("VX guest done"), "the guest's console went on: " + r);
        assertTrue(out.contains("virtio-vsock.0: "), "the device's counters: " + r);
    }

    /**
     * {@code --net user} under Linux, jvmm as an unprivileged user: the guest (Debian's cloud kernel,
     * busybox) gets its address from passt by DHCP and fetches 3 MiB from a server on the nested VM's
     * loopback (through the gateway address, which passt maps to the host's loopback); the checksums
     * match. passt runs while jvmm does and not after SIGTERM ends it. The nested VM has no network,
     * so a dummy interface with a default route gives passt something to copy. Then, as root, passt
     * is killed mid-run: one line and status 6.
     */
    @Test
    void userNetworkingThroughPasstAsAnUnprivilegedUser(@TempDir Path tmp) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/passt")), "passt is not installed here (.ci/run installs it)");
        // busybox's static wget crashes in the nested VM and its guest: a small C client and server
        Path peer = tmp.resolve("net-peer");
        Process cc = new ProcessBuilder("gcc", "-static", "-O2", "-Wall", "-o", peer.toString(),
                Path.of("src/test/resources/dev/jvmm/it/net-peer.c").toAbsolutePath().toString()).redirectErrorStream(true).start();
        String ccOut = new String(cc.getInputStream().readAllBytes());
        assertEquals(0, cc.waitFor(), ccOut);
        String fetched = script("fetch-guest-kernel", "--flavour", "cloud");
        Path kernel = Files.copy(Path.of(keyValue(fetched, "vmlinuz")), tmp.resolve("vmlinuz"));
        TrimmedKernel rootfsKernel = trimmedKernel(tmp.resolve("k"), "cloud");
        List<String> mk = new ArrayList<>(List.of("--init", tmp.resolve("init").toString(), "--add", tmp.resolve("dhcp.sh") + ":/dhcp.sh",
                "--add", peer + ":/net-peer",
                "--out", tmp.resolve("initrd.gz").toString()));
        for (var m : new dev.jvmm.loader.initramfs.ModuleResolver(Path.of(keyValue(fetched, "modules")))
                .resolve(List.of("virtio_mmio", "virtio_net"))) {
            mk.add("--module");
            mk.add(m.file().toString());
        }
        Files.writeString(tmp.resolve("dhcp.sh"), """
                #!/bin/sh
                B=/bin/busybox
                case $1 in bound|renew)
                  $B ip addr add $ip/$mask dev $interface
                  for r in $router; do $B ip route add default via $r dev $interface; break; done ;;
                esac
                """);
        assertTrue(tmp.resolve("dhcp.sh").toFile().setExecutable(true));
        Files.writeString(tmp.resolve("init"), """
                #!/bin/sh
                B=/bin/busybox
                $B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
                for m in $($B cat /lib/modules/load-order); do $B insmod /lib/modules/$m || echo "NX insmod $m failed"; done
                i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 300 ]; do $B sleep 0.1; i=$((i+1)); done
                $B ip link set lo up; $B ip link set eth0 up
                $B udhcpc -i eth0 -n -q -t 20 -T 2 -s /dhcp.sh >/dev/null 2>&1 || echo "NX dhcp failed"
                echo "NX addr $($B ip -4 -o addr show dev eth0 | $B awk '{print $4}')"
                gw=$($B ip route | $B awk '/^default/ {print $3}')
                echo "NX gw $gw"
                if /net-peer get $gw 8080 > /tmp/down 2>/tmp/werr; then echo "NX down $($B md5sum < /tmp/down | $B cut -c1-32)"
                else echo "NX get failed: $($B cat /tmp/werr) $($B ip neigh)"; fi
                $B mkdir /www; $B dd if=/dev/urandom of=/www/up bs=1024 count=2048 2>/dev/null
                echo "NX up $($B md5sum < /www/up | $B cut -c1-32)"
                /net-peer serve 0.0.0.0 80 /www/up >/dev/null && echo "NX serving"
                $B sleep 1000
                """);
        script("mkinitramfs", mk.toArray(String[]::new));
        String jvmm = "jvmm run --mem 256M --timeout 200s --stats --initrd " + tmp.resolve("initrd.gz")
                + " --cmdline 'console=ttyS0 quiet' " + kernel;
        String waitFor = "i=0; while ! $B grep -q 'NX serving' /tmp/%1$s && [ $i -lt 1500 ]; do $B sleep 0.1; i=$((i+1)); done\n";
        String passts = "$(for c in /proc/[0-9]*/cmdline; do $B tr '\\0' ' ' < $c 2>/dev/null; echo; done | $B grep -c '^/usr/bin/passt')";
        Files.writeString(tmp.resolve("inner.sh"), "#!/bin/sh\nB=/bin/busybox\n"
                + "$B ip link add d0 type dummy && $B ip addr add 192.0.2.2/24 dev d0 && $B ip link set d0 up"
                + " && $B ip route add default via 192.0.2.1 dev d0 || echo 'HOST no dummy interface'\n"
                + "$B ip link set lo up\n"
                + "$B mkdir -p /tmp/www /tmp/u && $B dd if=/dev/urandom of=/tmp/www/down bs=1024 count=3072 2>/dev/null\n"
                + "echo \"HOST down $($B md5sum < /tmp/www/down | $B cut -c1-32)\"\n"
                + peer + " serve 127.0.0.1 8080 /tmp/www/down > /dev/null\n"
                + "$B chmod 666 /dev/kvm; $B chown 1000:1000 /tmp/u\n"
                // what the unprivileged jvmm reads (the test's directory, jvmm's class path) and the directories above it
                + "for p in " + tmp + " $($B cat /opt/jvmm/classpath 2>/dev/null | $B tr ':' ' '); do"
                + " d=$p; while [ \"$d\" != / ]; do $B chmod a+rX \"$d\"; d=$($B dirname \"$d\"); done; done\n"
                // the unprivileged run, with a forwarded port
                + "/usr/bin/setpriv --reuid 1000 --regid 1000 --clear-groups env HOME=/tmp/u " + jvmm.replace("run ", "run --net user,fwd=tcp:8090:80 ")
                + " > /tmp/one 2>&1 &\n"
                + "jp=$!\n" + waitFor.formatted("one")
                + "echo \"HOST uid $($B awk '/^Uid:/ {print $2}' /proc/$jp/status)\"\n"
                + "if " + peer + " get 127.0.0.1 8090 > /tmp/fwd 2>/tmp/werr; then echo \"HOST fwd $($B md5sum < /tmp/fwd | $B cut -c1-32)\";"
                + " else echo \"HOST fwd failed: $($B cat /tmp/werr)\"; fi\n"
                + "echo \"HOST passt during " + passts + "\"\n"
                + "kill -TERM $jp; wait $jp; echo \"HOST jvmm status=$?\"\n"
                + "$B sleep 1; echo \"HOST passt after " + passts + "\"\n"
                + "$B grep -a -e NX -e virtio-net -e net-peer /tmp/one | $B tr -d '\\r'\n"

                + "$B grep -q 'NX serving' /tmp/one || $B tail -40 /tmp/one\n"
                // jvmm as root (passt then runs as 65534): a forwarded port, then passt killed mid-run
                + jvmm.replace("run ", "run --net user,fwd=tcp:8091:80 ") + " > /tmp/two 2>&1 &\n"
                + "jp=$!\n" + waitFor.formatted("two")
                + "if " + peer + " get 127.0.0.1 8091 > /tmp/fwd2 2>/tmp/werr; then echo \"HOST fwd root $($B md5sum < /tmp/fwd2 | $B cut -c1-32)\";"
                + " else echo \"HOST fwd root failed: $($B cat /tmp/werr)\"; fi\n"
                + "for c in /proc/[0-9]*/cmdline; do $B tr '\\0' ' ' < $c 2>/dev/null | $B grep -q '^/usr/bin/passt' && kill -KILL ${c#/proc/} 2>/dev/null; done\n"
                .replace("${c#/proc/}", "$($B basename $($B dirname $c))")
                + "wait $jp; echo \"HOST killed status=$?\"\n"
                + "$B grep -a '^jvmm' /tmp/two | $B sed 's/^/HOST two: /'\n"
                + "echo \"HOST two up $($B grep -a 'NX up' /tmp/two | $B tr -d '\\r' | $B awk '{print $3}')\"\n"
                + "$B grep -q 'NX serving' /tmp/two || $B tail -40 /tmp/two\n"
                // --rootfs with --net user: the init configures the interface by DHCP before the command
                // (the test's directory is shared: the guest's /tmp is a tmpfs of its own)
                + "jvmm run --mem 256M --timeout 200s --net user --rootfs / --share " + tmp + " " + rootfsKernel.kernel() + " -- " + tmp.resolve("guest-net.sh")
                + " > /tmp/three 2>&1; echo \"HOST rootfs status=$?\"\n"
                + "$B grep -a -e NR -e jvmm /tmp/three | $B tr -d '\\r'\n");
        Files.writeString(tmp.resolve("guest-net.sh"), "#!/bin/sh\nB=/bin/busybox\n"
                + "echo \"NR addr $($B ip -4 -o addr | $B grep -v ' lo ' | $B awk '{print $4}')\"\n"
                + "gw=$($B ip route | $B awk '/^default/ {print $3}')\n"
                + "if " + peer + " get $gw 8080 > /tmp/down 2>/tmp/werr; then echo \"NR down $($B md5sum < /tmp/down | $B cut -c1-32)\";"
                + " else echo \"NR get failed: $($B cat /tmp/werr) $($B ip route)\"; fi\n");
        assertTrue(tmp.resolve("guest-net.sh").toFile().setExecutable(true));
        // passt's sandbox pivot_roots, which the nested VM's initramfs root (rootfs) refuses, and a
        // chroot may not make user namespaces: the same files in a tmpfs moved over / (what
        // switch_root does), as on a machine with a real root file system
        Files.writeString(tmp.resolve("run.sh"), "#!/bin/sh\nB=/bin/busybox\n"
                + "$B mkdir /nr && $B mount -t tmpfs tmpfs /nr || exit 3\n"
                + "for d in /*; do case $d in /proc|/sys|/dev|/nr) ;; *) $B cp -a $d /nr/ || exit 3 ;; esac; done\n"
                + "$B mkdir -p /nr/proc /nr/sys /nr/dev /nr/tmp; $B chmod 1777 /nr/tmp\n"
                + "$B mount --bind /dev /nr/dev && $B mount -t proc proc /nr/proc && $B mount -t sysfs sys /nr/sys || exit 3\n"
                + "cd /nr && $B mount --move /nr / || exit 3\n"
                + "exec $B chroot . /bin/busybox sh " + tmp.resolve("inner.sh") + "\n");
        assertTrue(tmp.resolve("run.sh").toFile().setExecutable(true));
        Jvmm.Result r = nested("--share", tmp.toString(), "--", tmp.resolve("run.sh").toString());
        assertEquals(0, r.status(), r::toString);
        String out = r.stdout();
        assertFalse(out.contains("HOST no dummy interface"), r::toString);
        assertTrue(field(out, "NX addr ").startsWith("192.0.2.2/"), "the guest's address came from passt's DHCP: " + r);
        assertEquals(field(out, "HOST down "), field(out, "NX down "), "3 MiB from the host's loopback server: " + r);
        // a forwarded port, the host's client speaking first (Debian 12's passt sends the guest no bare
        // ACK for its SYN-ACK: a server that speaks first waits for ever), as uid 1000 and as root
        assertEquals(field(out, "NX up "), field(out, "HOST fwd "), "fwd=tcp:8090:80, jvmm as uid 1000: 2 MiB from the guest's server: " + r);
        assertEquals(field(out, "HOST two up "), field(out, "HOST fwd root "), "fwd=tcp:8091:80, jvmm as root: " + r);
        assertEquals("1000", field(out, "HOST uid "), "jvmm ran as an unprivileged user: " + r);
        assertEquals("1", field(out, "HOST passt during "), r::toString);
        assertEquals("143", field(out, "HOST jvmm status="), "SIGTERM ended jvmm: " + r);
        assertEquals("0", field(out, "HOST passt after "), "passt ended with jvmm: " + r);
        assertEquals(String.valueOf(dev.jvmm.vmm.ExitStatus.HOST_UNSUITABLE), field(out, "HOST killed status="), "passt killed mid-run: " + r);
        List<String> lines = out.lines().filter(l -> l.startsWith("HOST two: jvmm:")).toList();
        assertTrue(lines.size() == 1 && lines.get(0).contains("passt"), "one line about passt: " + lines + "\n" + r);
        assertTrue(field(out, "NR addr ").startsWith("192.0.2.2/"), "--rootfs: the init's DHCP gave the command passt's address: " + r);
        assertEquals(field(out, "HOST down "), field(out, "NR down "), "--rootfs: the command fetched 3 MiB through passt: " + r);
        assertEquals("0", field(out, "HOST rootfs status="), r::toString);
    }

    /**
     * Issue 11's nested check: Debian's cloud kernel debugged with the host's gdb, its symbols and DWARF
     * from the -dbg package's vmlinux (scripts/fetch-guest-kernel --dbg). Inside, jvmm serves --gdb on
     * 0.0.0.0:1234 with --gdb-wait and --host-decompress (the vmlinux is in place from the first
     * instruction), and nested-kvm --forward brings a host port to it. gdb in batch mode: two threads
     * (vCPUs); the kernel's linux_banner read through its symbol before the kernel ran (the entry's
     * page tables map the kernel text range); a stepi; continue, then Ctrl-C (SIGINT to gdb) stops the
     * booting kernel and bt unwinds it with the DWARF, named frames down to a stack's root; continue:
     * the initramfs's /init runs and powers off, and the run ends with 0. No breakpoints: QEMU's TCG
     * emulation of SVM under the nested KVM delivers neither the int3 nor the debug-register traps of
     * its guest to KVM (a software breakpoint's int3 reached the guest kernel itself, which oopsed on
     * it; hbreak never stopped), so those are covered by GdbStubTest on the host (hardware) only.
     */
    @Test
    void linuxDebuggedWithTheHostsGdb(@TempDir Path tmp) throws Exception {
        String fetched = script("fetch-guest-kernel", "--flavour", "cloud", "--dbg");
        Path kernel = Files.copy(Path.of(keyValue(fetched, "vmlinuz")), tmp.resolve("vmlinuz"));
        String vmlinux = keyValue(fetched, "vmlinux");
        assertFalse(vmlinux.isEmpty(), fetched);
        Files.writeString(tmp.resolve("init"), "#!/bin/sh\necho \"GDB-INIT reached as pid $$\"\n/bin/busybox poweroff -f\n");
        script("mkinitramfs", "--init", tmp.resolve("init").toString(), "--out", tmp.resolve("initrd.gz").toString());
        int port;
        try (var s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        Files.writeString(tmp.resolve("run.sh"), "#!/bin/sh\nB=/bin/busybox\n"
                + "jvmm run --smp 2 --mem 256M --timeout 400s --gdb tcp:0.0.0.0:1234 --gdb-wait --initrd " + tmp.resolve("initrd.gz")
                + " --host-decompress --cmdline 'console=ttyS0 nokaslr panic=-1' " + kernel + " > /tmp/g 2>&1 &\n"
                + "jp=$!\n"
                + "i=0; while ! $B grep -q 'gdb stub listening' /tmp/g && [ $i -lt 1800 ]; do $B sleep 0.1; i=$((i+1)); done\n"
                + "echo GDB-READY\n"
                + "wait $jp; echo \"GDB-JVMM status=$?\"\n"
                + "$B grep -a -e GDB- -e jvmm /tmp/g | $B tr -d '\\r'\n"
                + "$B grep -q 'GDB-INIT reached' /tmp/g || $B tail -n 60 /tmp/g\n");
        assertTrue(tmp.resolve("run.sh").toFile().setExecutable(true));
        GdbAttempt at = gdbAttempt(tmp, port, vmlinux);
        // as nested() does, the emulated machine's fault; here up to twice more. With a 1-vCPU nested VM
        // this check's VM stalled after gdb's last continue in most runs of 2026-12-03 (the 2-vCPU guest
        // coming up); with 2 vCPUs (as the other checks use) 4 of 5 runs passed, and the fifth's VM
        // died without an exit status (125), also retried here
        for (int retry = 1; retry <= 2 && (at.status() == NESTED_VM_STALLED || at.status() == NESTED_VM_DIED); retry++) {
            System.err.println("NestedKvmTest: the nested VM stalled or died under gdb; running it again (" + retry + " of 2). Last run: " + at.all());
            at = gdbAttempt(tmp, port, vmlinux);
        }
        String g = at.gdb(), o = at.stdout(), all = at.all();
        assertEquals(0, at.status(), all);
        assertTrue(g.contains("Thread 1 (vCPU 0)") && g.contains("Thread 2 (vCPU 1)"), "two vCPUs, two threads: " + all);
        assertTrue(g.contains("<linux_banner>:\t\"Linux version " + keyValue(fetched, "release")), "the kernel's data through its symbol before it ran: " + all);
        assertTrue(g.contains("$1 = 0x") && !g.contains("$1 = 0x1000000\n"), "stepi moved the PC off the entry point: " + all);
        assertTrue(g.contains("received signal SIGINT"), "Ctrl-C stopped the running kernel: " + all);
        List<String> frames = g.lines().filter(l -> l.matches("#\\d+ .*")).toList();
        // a sane stack: named frames (gdb's end past a kernel thread's first frame is "0x0000000000000000 in ?? ()")
        // down to where every kernel stack starts: a kernel thread's, the boot CPU's, a secondary CPU's
        assertTrue(frames.size() >= 3, "bt of the interrupted kernel: " + frames + "\n" + all);
        assertTrue(frames.stream().filter(l -> !l.matches("#\\d+\\s+0x0+ in \\?\\? \\(\\)")).noneMatch(l -> l.contains(" ?? ")),
                "every frame has a function from the symbols: " + frames + "\n" + all);
        assertTrue(frames.stream().anyMatch(l -> l.matches(".* (ret_from_fork|start_kernel|x86_64_start_kernel|secondary_startup_64\\w*|cpu_startup_entry) .*")),
                "the unwind reaches a stack's root: " + frames + "\n" + all);
        assertTrue(o.contains("GDB-INIT reached as pid 1"), "the guest's /init ran after the last continue: " + all);
        assertEquals("0", field(o, "GDB-JVMM status="), all);
    }

    /**
     * A Linux guest snapshotted and restored (issue 13): Debian's cloud kernel with 2 vCPUs, a busybox
     * shell on ttyS0 and a virtio disk of random bytes, with --api-socket. Once the shell's prompt is
     * up, {@code jvmm ctl SOCK pause} and {@code snapshot dir=...}, then that jvmm is killed with -9.
     * {@code jvmm run --restore DIR --disk IMG} with a command line on stdin: the restored shell runs it,
     * reads the whole disk through virtio-blk (the page cache dropped first) with the host's MD5, its
     * timers fire ({@code sleep 1}), its uptime goes on from the snapshot's, and {@code poweroff -f}
     * ends the run with 0; restore_ms comes from --stats-json. The lines "T LABEL UPTIME" time the
     * steps (seconds of the nested VM).
     */
    @Test
    void linuxGuestSnapshottedAndRestored(@TempDir Path tmp) throws Exception {
        String fetched = script("fetch-guest-kernel", "--flavour", "cloud");
        Path kernel = Files.copy(Path.of(keyValue(fetched, "vmlinuz")), tmp.resolve("vmlinuz"));
        byte[] image = new byte[1 << 20];
        new java.util.Random(13).nextBytes(image);
        Path disk = tmp.resolve("disk.img");
        Files.write(disk, image);
        String md5 = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("MD5").digest(image));
        List<String> mk = new ArrayList<>(List.of("--init", tmp.resolve("init").toString(), "--out", tmp.resolve("initrd.gz").toString()));
        for (var m : new dev.jvmm.loader.initramfs.ModuleResolver(Path.of(keyValue(fetched, "modules")))
                .resolve(List.of("virtio_mmio", "virtio_blk"))) {
            mk.add("--module");
            mk.add(m.file().toString());
        }
        Files.writeString(tmp.resolve("init"), """
                #!/bin/sh
                export PATH=/bin
                mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
                for m in $(cat /lib/modules/load-order); do insmod /lib/modules/$m || echo "SN insmod $m failed"; done
                i=0; while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
                echo "SN before $(md5sum < /dev/vda | cut -c1-32) nproc=$(nproc)"
                echo "SN uptime $(cut -d' ' -f1 /proc/uptime)"
                export PS1='SN-PROMPT> '
                exec sh -i
                """);
        script("mkinitramfs", mk.toArray(String[]::new));
        // typed into the restored shell: the disk read again (not from the page cache), a timer, the clock
        String typed = "echo 3 > /proc/sys/vm/drop_caches; echo \"RESTORED $(md5sum < /dev/vda | cut -c1-32)\"; sleep 1;"
                + " echo \"SLEPT uptime=$(cut -d' ' -f1 /proc/uptime) nproc=$(nproc)\"\npoweroff -f\n";
        Files.writeString(tmp.resolve("typed"), typed);
        Files.writeString(tmp.resolve("run.sh"), "#!/bin/sh\nB=/bin/busybox\n"
                + "t() { echo \"T $1 $($B cut -d' ' -f1 /proc/uptime)\"; }\n"
                + "t start\n"
                + "jvmm run --smp 2 --mem 256M --timeout 200s --no-stdin --api-socket /tmp/vm.sock --disk " + disk
                + " --initrd " + tmp.resolve("initrd.gz") + " --cmdline 'console=ttyS0 quiet' " + kernel + " > /tmp/one 2>&1 &\n"
                + "jp=$!; i=0; while ! $B grep -q 'SN-PROMPT>' /tmp/one && [ $i -lt 1800 ]; do $B sleep 0.1; i=$((i+1)); done\n"
                + "t prompt\n"
                + "jvmm ctl --timeout 60s /tmp/vm.sock pause > /tmp/ctl 2>&1; echo \"HOST pause status=$?\"\n"
                + "jvmm ctl --timeout 60s /tmp/vm.sock snapshot dir=/tmp/snap >> /tmp/ctl 2>&1; echo \"HOST snapshot status=$?\"\n"
                + "t snapshot\n"
                + "kill -9 $jp; wait $jp; echo \"HOST killed status=$?\"\n"
                + "$B cat /tmp/ctl\n"
                + "$B grep -a '^SN ' /tmp/one | $B tr -d '\\r'\n"
                + "$B grep -q 'SN-PROMPT>' /tmp/one || $B tail -40 /tmp/one\n"
                + "t restore\n"
                + "jvmm run --restore /tmp/snap --disk " + disk + " --timeout 120s --stats-json /tmp/s.json < " + tmp.resolve("typed")
                + " > /tmp/two 2>&1; echo \"HOST restored status=$?\"\n"
                + "t restored\n"
                + "echo \"HOST $($B tr -d ' \\n' < /tmp/s.json | $B grep -o '\"restore_ms\":[0-9.]*' | $B tr -d '\"')\"\n"
                + "$B tr -d '\\r' < /tmp/two | $B tail -40 | $B sed 's/^/  two: /'\n");
        assertTrue(tmp.resolve("run.sh").toFile().setExecutable(true));
        Jvmm.Result r = nested("--share", tmp.toString(), "--", tmp.resolve("run.sh").toString());
        assertEquals(0, r.status(), r::toString);
        String out = r.stdout();
        assertEquals(md5, field(out, "SN before "), "the disk read before the snapshot: " + r);
        assertEquals("nproc=2", field(out, "SN before " + md5 + " "), r::toString);
        assertEquals("0", field(out, "HOST pause status="), r::toString);
        assertEquals("0", field(out, "HOST snapshot status="), r::toString);
        assertTrue(out.contains("\"state\":\"paused\""), "the pause's reply: " + r);
        assertEquals("137", field(out, "HOST killed status="), "the snapshotted jvmm was killed with -9: " + r);
        // the shell echoes the typed line (after its prompt): the answers are the lines that start with them
        String restored = lineStarting(out, "  two: RESTORED "), slept = lineStarting(out, "  two: SLEPT uptime=");
        assertEquals(md5, field(restored, "RESTORED "), "the restored guest ran the typed command and read the whole disk: " + r);
        double before = Double.parseDouble(field(out, "SN uptime ")), after = Double.parseDouble(field(slept, "uptime="));
        assertTrue(after >= before + 1, "the restored guest's clock goes on from the snapshot's, past its sleep: " + r);
        assertEquals("2", field(slept, "nproc="), r::toString);
        assertEquals("0", field(out, "HOST restored status="), "poweroff -f ends the restored run with 0: " + r);
        double restoreMs = Double.parseDouble(field(out, "HOST restore_ms:"));
        assertTrue(restoreMs > 0, r::toString);
        System.out.println("linuxGuestSnapshottedAndRestored: restore_ms " + restoreMs + "; steps (nested VM uptime): "
                + out.lines().filter(l -> l.startsWith("T ")).toList());
    }

    /** A kernel and the modules a rootfs run loads, as an unpacked package: DIR/boot/vmlinuz-*, DIR/lib/modules/RELEASE. */
    record TrimmedKernel(Path kernel, String release) { }

    /**
     * A trimmed copy of Debian's {@code flavour} kernel package in {@code dir}: the kernel and only the
     * modules a rootfs run loads (the whole package is too big to pass into the nested VM).
     */
    private static TrimmedKernel trimmedKernel(Path dir, String flavour) throws Exception {
        String fetched = script("fetch-guest-kernel", "--flavour", flavour);
        Path vmlinuz = Path.of(keyValue(fetched, "vmlinuz"));
        Path modules = Path.of(keyValue(fetched, "modules"));
        String release = keyValue(fetched, "release");
        Files.createDirectories(dir.resolve("boot"));
        Files.copy(vmlinuz, dir.resolve("boot").resolve(vmlinuz.getFileName()));
        Path mods = dir.resolve("lib/modules").resolve(release);
        List<String> wanted = new ArrayList<>(dev.jvmm.loader.initramfs.RootfsInit.MODULES);
        wanted.addAll(dev.jvmm.loader.initramfs.RootfsInit.NET_MODULES);
        for (var m : new dev.jvmm.loader.initramfs.ModuleResolver(modules).resolve(wanted, dev.jvmm.loader.initramfs.RootfsInit.OPTIONAL_MODULES)) {
            Path to = mods.resolve(modules.relativize(m.file()));
            Files.createDirectories(to.getParent());
            Files.copy(m.file(), to);
        }
        Files.createDirectories(mods);
        for (String f : new String[] {"modules.builtin", "modules.order"}) {
            if (Files.exists(modules.resolve(f))) Files.copy(modules.resolve(f), mods.resolve(f));
        }
        return new TrimmedKernel(dir.resolve("boot").resolve(vmlinuz.getFileName()), release);
    }

    /** The first line of {@code out} that starts with {@code prefix}. */
    private static String lineStarting(String out, String prefix) {
        return out.lines().filter(l -> l.startsWith(prefix)).findFirst()
                .orElseThrow(() -> new AssertionError("no line starting '" + prefix + "' in:\n" + out));
    }

    /** What follows {@code prefix} in {@code out}, up to the next space or newline. */
    private static String field(String out, String prefix) {
        int i = out.indexOf(prefix);
        if (i < 0) throw new AssertionError("no '" + prefix + "' in:\n" + out);
        int from = i + prefix.length(), to = from;
        while (to < out.length() && !Character.isWhitespace(out.charAt(to))) to++;
        return out.substring(from, to);
    }

    /** One nested boot of linuxDebuggedWithTheHostsGdb: nested-kvm's status, gdb's output, the VM's output, all three for messages. */
    private record GdbAttempt(int status, String gdb, String stdout, String all) {
    }

    private static GdbAttempt gdbAttempt(Path tmp, int port, String vmlinux) throws Exception {
        List<String> cmd = nestedCommand(15, "--smp", "2", "--forward", port + ":1234", "--share", tmp.toString(), "--", tmp.resolve("run.sh").toString());
        Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        CompletableFuture<String> err = Jvmm.drain(p.getErrorStream());
        StringBuilder out = new StringBuilder();
        CompletableFuture<Void> ready = new CompletableFuture<>();
        Thread reader = Thread.ofPlatform().start(() -> {
            try (var r = p.inputReader()) {
                for (String l; (l = r.readLine()) != null; ) {
                    synchronized (out) {
                        out.append(l).append('\n');
                    }
                    if (l.startsWith("GDB-READY")) ready.complete(null);
                }
            } catch (IOException e) {
                // the process ended
            }
            ready.complete(null);
        });
        String g;
        try {
            ready.get(14, TimeUnit.MINUTES);
            Process gdb = new ProcessBuilder("gdb", "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                    "-ex", "set remotetimeout 60", "-ex", "target remote 127.0.0.1:" + port, "-ex", "info threads",
                    "-ex", "x/s linux_banner", "-ex", "stepi", "-ex", "p/x $pc",
                    "-ex", "continue", "-ex", "bt", "-ex", "info threads", "-ex", "continue", vmlinux)
                    .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            StringBuilder gout = new StringBuilder();
            // gdb's own Ctrl-C handling: SIGINT while it waits on "continue" stops the guest (the stub's
            // interrupt), and the batch goes on with the next command
            Thread gdbReader = Thread.ofPlatform().start(() -> {
                boolean interrupted = false;
                try (var r = gdb.inputReader()) {
                    for (String l; (l = r.readLine()) != null; ) {
                        synchronized (gout) {
                            gout.append(l).append('\n');
                        }
                        if (!interrupted && l.startsWith("$1 = ")) { // the command before the first continue
                            interrupted = true;
                            Thread.sleep(5000);
                            new ProcessBuilder("kill", "-INT", Long.toString(gdb.pid())).start().waitFor();
                        }
                    }
                } catch (IOException e) {
                    // gdb ended
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            if (!gdb.waitFor(10, TimeUnit.MINUTES)) gdb.destroyForcibly();
            gdbReader.join(10_000);
            synchronized (gout) {
                g = gout.toString();
            }
            assertTrue(p.waitFor(5, TimeUnit.MINUTES), "nested-kvm did not end after gdb: " + g);
        } finally {
            if (p.isAlive()) p.destroy();
            reader.join(10_000);
        }
        String o;
        synchronized (out) {
            o = out.toString();
        }
        String all = "gdb:\n" + g + "\nnested stdout:\n" + o + "\nnested stderr:\n" + err.join();
        return new GdbAttempt(p.exitValue(), g, o, all);
    }

    /** Runs scripts/nested-kvm with the given arguments from the project directory. */
    private static Jvmm.Result nested(String... args) {
        return nested(10, args);
    }

    /** nested-kvm's status when the nested VM's own kernel stopped responding while the command ran. */
    private static final int NESTED_VM_STALLED = 123;
    /** nested-kvm's status when the nested VM ended without the command's exit status (it crashed). */
    private static final int NESTED_VM_DIED = 125;

    /**
     * Runs scripts/nested-kvm with the given arguments, the VM given {@code minutes}. A run whose nested VM
     * stalled (its kernel stopped, which TCG's emulation of nested SVM does now and then, whatever runs in
     * it) is run once more; a second stall is the result. A command that hangs in a VM that still runs is
     * a timeout (124), never run again.
     */
    private static Jvmm.Result nested(int minutes, String... args) {
        Jvmm.Result r = nestedOnce(minutes, args);
        if (r.status() == NESTED_VM_STALLED) {
            System.err.println("NestedKvmTest: the nested VM stalled; running it once more. First run: " + r);
            r = nestedOnce(minutes, args);
        }
        return r;
    }

    private static Jvmm.Result nestedOnce(int minutes, String... args) {
        List<String> cmd = nestedCommand(minutes, args);
        try {
            long t0 = System.nanoTime();
            Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            CompletableFuture<String> out = Jvmm.drain(p.getInputStream());
            CompletableFuture<String> err = Jvmm.drain(p.getErrorStream());
            if (!p.waitFor(minutes + 2, TimeUnit.MINUTES)) {
                p.destroy();
                throw new AssertionError("nested-kvm did not finish: " + String.join(" ", cmd));
            }
            return new Jvmm.Result(p.exitValue(), out.join(), err.join(), (System.nanoTime() - t0) / 1_000_000);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** The scripts/nested-kvm command line for {@code args}, the VM given {@code minutes}, jvmm from the classes under test. */
    private static List<String> nestedCommand(int minutes, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(SCRIPT.toString());
        cmd.add("--timeout");
        cmd.add(minutes + "m");
        // jvmm from the classes under test (target/jvmm.jar is only packaged after the tests)
        cmd.add("--classpath");
        cmd.add(String.join(":", java.util.Arrays.stream(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(e -> !e.contains("test-classes") && !e.contains("junit") && !e.contains("opentest4j")
                        && !e.contains("apiguardian") && !e.contains("surefire"))
                .toList()));
        cmd.addAll(List.of(args));
        return cmd;
    }
}
