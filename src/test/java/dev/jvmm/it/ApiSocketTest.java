package dev.jvmm.it;

import dev.jvmm.vmm.ExitStatus;
import dev.jvmm.vmm.Json;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * --api-socket on the real /dev/kvm, with counter.bin printing "count N" lines: pause stops the
 * output and resume continues the sequence, every request works from jvmm ctl, and hostile clients
 * (garbage, a 10 MB line, 100 at once) get error replies while the VM runs on and answers.
 */
class ApiSocketTest {
    /** Generous: the tests share two cores with other work, and every guest instruction is emulated here. */
    private static final long DEADLINE_MS = 60_000;

    @TempDir
    Path tmp;
    private Process jvmm;
    private Path socket, log, stderr;

    @BeforeEach
    void kvm() {
        KvmSupport.requireKvm();
    }

    @AfterEach
    void cleanUp() {
        if (jvmm != null && jvmm.isAlive()) jvmm.destroyForcibly();
    }

    private void start() throws IOException {
        socket = tmp.resolve("api.sock");
        log = tmp.resolve("serial.log");
        stderr = tmp.resolve("stderr.txt");
        jvmm = Jvmm.command("run", "--no-stdin", "--timeout", "300s", "--serial-log", log.toString(), "--api-socket", socket.toString(),
                KvmSupport.guest("counter.bin").toString())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(stderr.toFile()).start();
        waitFor("the socket and the first lines", () -> Files.exists(socket) && lines().size() >= 3);
    }

    /** jvmm running spin.bin with {@code options} and the control socket {@link #socket}, once the socket is there. */
    private void startSpin(String... options) throws IOException {
        List<String> args = new ArrayList<>(List.of("run", "--no-stdin"));
        args.addAll(List.of(options));
        args.addAll(List.of("--timeout", "300s", "--api-socket", socket.toString(), KvmSupport.guest("spin.bin").toString()));
        jvmm = Jvmm.command(args.toArray(String[]::new))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(stderr.toFile()).start();
        waitFor("the socket", () -> Files.exists(socket));
    }

    private void waitFor(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + DEADLINE_MS * 1_000_000;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) fail("no " + what + " within " + DEADLINE_MS + " ms; " + diagnostics());
            if (jvmm != null && !jvmm.isAlive()) fail("jvmm ended (status " + jvmm.exitValue() + ") waiting for " + what + "; " + diagnostics());
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    /** Waits until the serial log holds the {@code bytes} of console output the VM reported (paused, it prints no more). */
    private void waitForTheLog(long bytes) {
        waitFor("the paused output in the log", () -> {
            try {
                return Files.size(log) == bytes;
            } catch (IOException e) {
                return false;
            }
        });
    }

    private String diagnostics() {
        try {
            List<String> l = lines();
            return "serial lines: " + l.size() + (l.isEmpty() ? "" : ", last " + l.getLast()) + "; stderr: "
                    + (Files.exists(stderr) ? Files.readString(stderr) : "");
        } catch (IOException e) {
            return e.toString();
        }
    }

    private List<String> lines() {
        try {
            if (!Files.exists(log)) return List.of();
            String s = Files.readString(log, StandardCharsets.ISO_8859_1);
            int end = s.lastIndexOf('\n');
            return end < 0 ? List.of() : List.of(s.substring(0, end).split("\n"));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** The counter's lines are exactly count 1, count 2, ...: nothing lost, repeated or out of order. */
    private static int checkSequence(List<String> lines) {
        for (int i = 0; i < lines.size(); i++) assertEquals("count " + (i + 1), lines.get(i), "line " + (i + 1));
        return lines.size();
    }

    /** A connection to the control socket (the JDK's own UNIX socket support: a client independent of jvmm's). */
    private final class Client implements AutoCloseable {
        final SocketChannel channel;
        final BufferedReader in;

        Client() throws IOException {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            channel.connect(UnixDomainSocketAddress.of(socket));
            in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        }

        void send(String line) throws IOException {
            ByteBuffer b = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
            while (b.hasRemaining()) channel.write(b);
        }

        /** The next reply line, waited for with the deadline (a reply that never comes fails the test). */
        String readLine() {
            CompletableFuture<String> f = CompletableFuture.supplyAsync(() -> {
                try {
                    return in.readLine();
                } catch (IOException e) {
                    return "<" + e + ">";
                }
            });
            try {
                return f.get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                close();
                throw new AssertionError("no reply within " + DEADLINE_MS + " ms: " + e + "; " + diagnostics());
            }
        }

        /** Pauses the VM (the reply says paused) and waits until the log holds all the console output it reported. */
        void pauseAndWaitForTheLog() throws IOException {
            assertEquals("paused", request("{\"request\":\"pause\"}").get("state"));
            waitForTheLog(number(stats(request("{\"request\":\"stats\"}")).get("console_bytes")));
        }

        /** Sends {@code line} until the reply's state is {@code state} (waiting for "a STATE VM"). */
        void awaitState(String line, String state) {
            waitFor("a " + state + " VM", () -> {
                try {
                    return state.equals(request(line).get("state"));
                } catch (IOException e) {
                    throw new AssertionError(e);
                }
            });
        }

        Map<String, Object> request(String line) throws IOException {
            send(line);
            String reply = readLine();
            assertTrue(reply != null, "a reply to " + line);
            return Json.object(reply);
        }

        @Override
        public void close() {
            try {
                channel.close();
            } catch (IOException ignored) {
                // closed
            }
        }
    }

    private static Map<?, ?> stats(Map<String, Object> reply) {
        assertEquals(true, reply.get("ok"), reply::toString);
        return (Map<?, ?>) reply.get("stats");
    }

    private static long number(Object o) {
        return ((Number) o).longValue();
    }

    @Test
    void pauseStopsTheOutputAndResumeContinuesIt() throws Exception {
        start();
        try (Client c = new Client()) {
            Map<String, Object> paused = c.request("{\"request\":\"pause\",\"id\":1}");
            assertEquals(true, paused.get("ok"), paused::toString);
            assertEquals("paused", paused.get("state"), paused::toString);
            assertEquals(1, number(paused.get("id")));
            long pausedClock = number(paused.get("kvmclock_ns"));
            Map<?, ?> before = stats(c.request("{\"request\":\"stats\"}"));
            long bytes = number(before.get("console_bytes"));
            long exits = number(((Map<?, ?>) ((List<?>) before.get("vcpus")).getFirst()).get("total_exits"));
            // long enough for the running guest to print dozens of lines (one every few ms here)
            Thread.sleep(2000);
            Map<String, Object> during = c.request("{\"request\":\"stats\"}");
            assertEquals("paused", during.get("state"), during::toString);
            assertEquals(bytes, number(stats(during).get("console_bytes")), "no console output while paused: " + during);
            assertEquals(exits, number(((Map<?, ?>) ((List<?>) stats(during).get("vcpus")).getFirst()).get("total_exits")),
                    "no exits while paused: " + during);
            waitForTheLog(bytes);
            int printed = checkSequence(lines());
            Map<String, Object> info = c.request("{\"request\":\"info\"}");
            assertEquals("paused", info.get("state"), info::toString);
            assertTrue(number(info.get("paused_ms")) >= 2000, info::toString);

            long resumeSent = System.nanoTime();
            Map<String, Object> resumed = c.request("{\"request\":\"resume\"}");
            assertEquals(true, resumed.get("ok"), resumed::toString);
            assertEquals("running", resumed.get("state"), resumed::toString);
            Map<String, Object> after = c.request("{\"request\":\"info\"}");
            long sinceResume = System.nanoTime() - resumeSent;
            long clockNow = number(after.get("kvmclock_ns"));
            assertTrue(clockNow >= pausedClock, after::toString);
            // the guest's clock went on from where it stood: it advanced by no more than the time since
            // the resume (plus a little for the clock sources' rounding), not by the 2 s paused
            assertTrue(clockNow - pausedClock <= sinceResume + 20_000_000L,
                    "kvmclock advanced " + (clockNow - pausedClock) + " ns in " + sinceResume + " ns since the resume");
            waitFor("the count to go on", () -> lines().size() >= printed + 5);
            checkSequence(lines());

            // asked to, a resume leaves the clock alone: it jumps by the time paused
            long again = number(c.request("{\"request\":\"pause\"}").get("kvmclock_ns"));
            Thread.sleep(1000);
            Map<String, Object> advanced = c.request("{\"request\":\"resume\",\"advance_clock\":true}");
            assertEquals("running", advanced.get("state"), advanced::toString);
            assertTrue(!advanced.containsKey("kvmclock_ns"), advanced::toString);
            long jumped = number(c.request("{\"request\":\"info\"}").get("kvmclock_ns"));
            assertTrue(jumped - again >= 1_000_000_000L, "kvmclock went on through the pause: " + (jumped - again) + " ns");
            assertEquals(true, c.request("{\"request\":\"stop\",\"status\":3}").get("ok"));
        }
        assertTrue(jvmm.waitFor(DEADLINE_MS, TimeUnit.MILLISECONDS), diagnostics());
        assertEquals(3, jvmm.exitValue(), diagnostics());
        assertFalse(Files.exists(socket), "the socket is removed at exit");
    }

    private Jvmm.Result ctl(String... args) {
        List<String> all = new ArrayList<>(List.of("ctl", "--timeout", "30s", socket.toString()));
        all.addAll(List.of(args));
        return Jvmm.run(null, 120, all.toArray(String[]::new));
    }

    @Test
    void everyRequestWorksFromJvmmCtl() throws Exception {
        start();
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)), "owner-only");
        Jvmm.Result info = ctl("info");
        assertEquals(0, info.status(), info::toString);
        Map<String, Object> m = Json.object(info.stdout().strip());
        assertEquals("running", m.get("state"), info::toString);
        assertTrue(String.valueOf(m.get("kernel")).endsWith("counter.bin"), info::toString);
        assertEquals(jvmm.pid(), number(m.get("pid")), info::toString);
        assertTrue(((List<?>) m.get("devices")).stream().anyMatch(d -> "com1".equals(((Map<?, ?>) d).get("name"))), info::toString);
        assertEquals(1, number(((Map<?, ?>) m.get("config")).get("cpus")), info::toString);

        Jvmm.Result stats = ctl("stats");
        assertEquals(0, stats.status(), stats::toString);
        assertTrue(number(stats(Json.object(stats.stdout().strip())).get("console_bytes")) > 0, stats::toString);

        Jvmm.Result pause = ctl("pause", "id=p1");
        assertEquals(0, pause.status(), pause::toString);
        assertTrue(pause.stdout().contains("\"state\":\"paused\"") && pause.stdout().contains("\"id\":\"p1\""), pause::toString);
        assertEquals(0, ctl("pause").status(), "pausing a paused VM is no error");
        Jvmm.Result resume = ctl("resume");
        assertEquals(0, resume.status(), resume::toString);
        Jvmm.Result again = ctl("resume");
        assertEquals(1, again.status(), again::toString);
        assertTrue(again.stdout().contains("\"error\":\"wrong_state\""), again::toString);

        Jvmm.Result unknown = ctl("reboot");
        assertEquals(1, unknown.status(), unknown::toString);
        assertTrue(unknown.stdout().contains("\"error\":\"unknown_request\""), unknown::toString);
        Jvmm.Result badStatus = ctl("stop", "status=oops");
        assertEquals(1, badStatus.status(), badStatus::toString);
        assertTrue(badStatus.stdout().contains("\"error\":\"bad_argument\""), badStatus::toString);
        Jvmm.Result usage = ctl("stop", "status");
        assertEquals(ExitStatus.USAGE, usage.status(), usage::toString);
        Jvmm.Result raw = ctl("{\"request\":\"info\",\"id\":9}");
        assertEquals(0, raw.status(), raw::toString);

        // a second VM cannot take a socket that is being served
        Jvmm.Result second = Jvmm.run("run", "--no-stdin", "--api-socket", socket.toString(), KvmSupport.guest("hello.bin").toString());
        assertEquals(ExitStatus.USAGE, second.status(), second::toString);
        assertTrue(second.stderr().contains("is in use"), second::toString);

        Jvmm.Result stop = ctl("stop", "status=5");
        assertEquals(0, stop.status(), stop::toString);
        assertTrue(jvmm.waitFor(DEADLINE_MS, TimeUnit.MILLISECONDS), diagnostics());
        assertEquals(5, jvmm.exitValue(), diagnostics());
        assertTrue(Files.readString(stderr).contains("stopped by a stop request on the control socket (status 5)"), diagnostics());
        assertFalse(Files.exists(socket), "the socket is removed at exit");
        Jvmm.Result gone = Jvmm.run("ctl", "--timeout", "300ms", socket.toString(), "info");
        assertEquals(3, gone.status(), gone::toString);
        checkSequence(lines());
    }

    @Test
    void aStaleSocketIsReplaced() throws Exception {
        socket = tmp.resolve("stale.sock");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(socket)); // closing leaves the file, as a killed jvmm would
        }
        assertTrue(Files.exists(socket));
        Jvmm.Result r = Jvmm.run("run", "--api-socket", socket.toString(), KvmSupport.guest("hello.bin").toString());
        assertEquals(33, r.status(), r::toString);
        assertFalse(Files.exists(socket), r::toString);
        Path file = tmp.resolve("file");
        Files.writeString(file, "x");
        Jvmm.Result notSocket = Jvmm.run("run", "--api-socket", file.toString(), KvmSupport.guest("hello.bin").toString());
        assertEquals(ExitStatus.USAGE, notSocket.status(), notSocket::toString);
        assertEquals("x", Files.readString(file), "never removes what is not a socket");
    }

    @Test
    void hostileClientsLeaveTheVmRunningAndAnswering() throws Exception {
        start();
        try (Client c = new Client()) {
            String deep = "[".repeat(30_000) + "]".repeat(30_000);
            Map<String, String> garbage = new java.util.LinkedHashMap<>();
            garbage.put("not json at all", "malformed_json");
            garbage.put("{\"request\": \"info\"", "malformed_json");
            garbage.put("\u00ff\u00fe\u0001", "malformed_json");
            garbage.put("[1, 2, 3]", "not_an_object");
            garbage.put("{}", "missing_request");
            garbage.put("{\"request\": 42}", "bad_argument");
            garbage.put("{\"request\": \"format-disk\"}", "unknown_request");
            garbage.put("{\"request\": \"stop\", \"status\": 300}", "bad_argument");
            garbage.put(deep, null);
            for (Map.Entry<String, String> g : garbage.entrySet()) {
                Map<String, Object> reply = c.request(g.getKey());
                assertEquals(false, reply.get("ok"), reply::toString);
                if (g.getValue() != null) assertEquals(g.getValue(), reply.get("error"), g.getKey() + ": " + reply);
            }
            assertEquals(true, c.request("{\"request\":\"info\"}").get("ok"), "the same connection still answers");
        }

        // a 10 MB line: an error reply, the connection closed, nothing else
        try (Client big = new Client()) {
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    ByteBuffer mb = ByteBuffer.wrap("a".repeat(1 << 20).getBytes(StandardCharsets.US_ASCII));
                    for (int i = 0; i < 10; i++) {
                        mb.rewind();
                        while (mb.hasRemaining()) big.channel.write(mb);
                    }
                    big.send("");
                } catch (IOException expected) {
                    // jvmm closed the connection: the rest of the line goes nowhere
                }
            });
            String reply = big.readLine();
            Map<String, Object> m = Json.object(reply);
            assertEquals("line_too_long", m.get("error"), reply);
            String next = big.readLine();
            assertTrue(next == null || next.startsWith("<"), "the connection is closed after it: " + next);
            writer.get(DEADLINE_MS, TimeUnit.MILLISECONDS);
        }

        // 100 clients connected at once, each asking for info and stats
        List<Client> many = new ArrayList<>();
        try {
            for (int i = 0; i < 100; i++) many.add(new Client());
            for (int i = 0; i < many.size(); i++) many.get(i).send("{\"request\":\"info\",\"id\":" + i + "}\n{\"request\":\"stats\",\"id\":" + i + "}");
            for (int i = 0; i < many.size(); i++) {
                Map<String, Object> info = Json.object(many.get(i).readLine());
                assertEquals(true, info.get("ok"), info::toString);
                assertEquals(i, number(info.get("id")), info::toString);
                Map<String, Object> st = Json.object(many.get(i).readLine());
                assertEquals("stats", st.get("request"), st::toString);
                assertEquals(true, st.get("ok"), st::toString);
            }
        } finally {
            many.forEach(Client::close);
        }

        // the VM ran on all along and still answers
        int seen = lines().size();
        waitFor("more output", () -> lines().size() >= seen + 5);
        checkSequence(lines());
        try (Client c = new Client()) {
            Map<String, Object> info = c.request("{\"request\":\"info\"}");
            assertEquals("running", info.get("state"), info::toString);
            assertEquals(true, c.request("{\"request\":\"stop\",\"status\":9}").get("ok"));
        }
        assertTrue(jvmm.waitFor(DEADLINE_MS, TimeUnit.MILLISECONDS), diagnostics());
        assertEquals(9, jvmm.exitValue(), diagnostics());
    }

    /** Four vCPUs (three never started by the guest) pause and resume; a signal stops a paused VM the usual way. */
    @Test
    void fourVcpusPauseAndAPausedVmStopsOnASignal() throws Exception {
        socket = tmp.resolve("smp.sock");
        log = tmp.resolve("none.log");
        stderr = tmp.resolve("stderr.txt");
        startSpin("--smp", "4");
        try (Client c = new Client()) {
            c.awaitState("{\"request\":\"info\"}", "running");
            for (int round = 0; round < 3; round++) {
                Map<String, Object> paused = c.request("{\"request\":\"pause\"}");
                assertEquals("paused", paused.get("state"), paused::toString);
                Map<String, Object> info = c.request("{\"request\":\"info\"}");
                assertEquals("paused", info.get("state"), info::toString);
                assertEquals(4, number(info.get("vcpus")), info::toString);
                if (round < 2) assertEquals("running", c.request("{\"request\":\"resume\"}").get("state"));
            }
        }
        jvmm.destroy(); // SIGTERM, while paused
        assertTrue(jvmm.waitFor(DEADLINE_MS, TimeUnit.MILLISECONDS), diagnostics());
        assertEquals(ExitStatus.SIGTERM, jvmm.exitValue(), diagnostics());
        assertFalse(Files.exists(socket), "the socket is removed after a signal too");
    }

    /**
     * A snapshot of the paused counter: guest memory as a sparse file whose count agrees with the
     * saved %rbx and the printed lines; a state file with every section, which refuses to load once
     * corrupted or truncated; a VM with a virtio-vsock device is refused, naming it.
     */
    @Test
    void aPausedVmIsSnapshotted() throws Exception {
        start();
        Path dir = tmp.resolve("snap");
        int[] printedAtPause = new int[1];
        try (Client c = new Client()) {
            Map<String, Object> notPaused = c.request("{\"request\":\"snapshot\",\"dir\":\"" + dir + "\"}");
            assertEquals("wrong_state", notPaused.get("error"), notPaused::toString);
            c.pauseAndWaitForTheLog();
            printedAtPause[0] = checkSequence(lines());
            Map<String, Object> snap = c.request("{\"request\":\"snapshot\",\"dir\":\"" + dir + "\"}");
            assertEquals(true, snap.get("ok"), snap::toString);
            assertEquals(256L << 20, number(snap.get("memory_bytes")), snap::toString);
            assertTrue(number(snap.get("memory_written_bytes")) < (1 << 20), "sparse: only the pages the guest touched " + snap);
            Map<String, Object> again = c.request("{\"request\":\"snapshot\",\"dir\":\"" + dir + "\"}");
            assertEquals("bad_argument", again.get("error"), "a directory that is not empty is refused: " + again);
            assertEquals("running", c.request("{\"request\":\"resume\"}").get("state"));
        }
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("memory"))));
        Process du = new ProcessBuilder("stat", "-c", "%b %B", dir.resolve("memory").toString()).start();
        String[] blocks = new String(du.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).strip().split(" ");
        assertTrue(Long.parseLong(blocks[0]) * Long.parseLong(blocks[1]) < (1 << 20), "holes where the guest never wrote: " + String.join(" ", blocks));

        Map<String, byte[]> state = dev.jvmm.vmm.SnapshotFile.read(dir.resolve("state"));
        for (String s : List.of("vcpu.0.regs", "vcpu.0.sregs", "vcpu.0.fpu", "vcpu.0.msrs", "vcpu.0.lapic", "vcpu.0.mp_state",
                "vcpu.0.events", "vcpu.0.debugregs", "vcpu.0.cpuid", "vm.irqchip.0", "vm.irqchip.1", "vm.irqchip.2", "vm.pit2",
                "vm.clock", "host.supported_cpuid", "device.com1", "device.i8042", "device.rtc", "meta", "restore")) {
            assertTrue(state.containsKey(s), "section " + s + " in " + state.keySet());
        }
        dev.jvmm.vmm.RestoreConfig saved = dev.jvmm.vmm.RestoreConfig.decode(state.get("restore"));
        assertEquals(1, saved.cpus());
        assertEquals("kernel", saved.pit());
        assertTrue(saved.memBytes() > 0 && saved.regions().size() == 1 && saved.regions().get(0)[1] == saved.memBytes(),
                "one RAM region, all of the guest's RAM: " + saved);
        ByteBuffer regs = ByteBuffer.wrap(state.get("vcpu.0.regs")).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        long rbx = regs.getLong((int) dev.jvmm.sys.KvmApi.offset(dev.jvmm.sys.KvmApi.KVM_REGS, "rbx"));
        byte[] image = Files.readAllBytes(KvmSupport.guest("counter.bin"));
        byte[] memory = new byte[image.length];
        try (var ch = java.nio.channels.FileChannel.open(dir.resolve("memory"))) {
            ch.read(ByteBuffer.wrap(memory), 0x10000); // flat binaries load at 0x10000
        }
        assertArrayEquals(Arrays.copyOf(image, image.length - 4), Arrays.copyOf(memory, memory.length - 4), "the guest's code in the memory file");
        long count = ByteBuffer.wrap(memory, memory.length - 4, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt();
        assertEquals(count, rbx, "the count in memory and in %rbx");
        // the pause fell while "count N" was being printed (N-1 whole lines) or after it (N)
        assertTrue(printedAtPause[0] == count || printedAtPause[0] == count - 1, printedAtPause[0] + " lines, count " + count);
        // the run went on after the resume: the sequence is still whole, and passes the saved count
        waitFor("the count past the snapshot", () -> lines().size() > count + 2);
        checkSequence(lines());

        byte[] file = Files.readAllBytes(dir.resolve("state"));
        Path corrupt = tmp.resolve("corrupt");
        byte[] flipped = file.clone();
        flipped[file.length / 2] ^= 1;
        Files.write(corrupt, flipped);
        String why = assertThrowsSnapshot(corrupt);
        assertTrue(why.contains("corrupt"), why);
        Files.write(corrupt, Arrays.copyOf(file, file.length - 100));
        why = assertThrowsSnapshot(corrupt);
        assertTrue(why.contains("truncated"), why);
        try (Client c = new Client()) {
            assertEquals(true, c.request("{\"request\":\"stop\"}").get("ok"));
        }
        assertTrue(jvmm.waitFor(DEADLINE_MS, TimeUnit.MILLISECONDS), diagnostics());

        // a VM with a device whose state lives outside it (vsock's connections) cannot be snapshotted:
        // the reply names the device and why; the rng beside it is no obstacle
        socket = tmp.resolve("vsock.sock");
        startSpin("--rng", "--vsock", "cid=3,uds=" + tmp.resolve("v.sock"));
        try (Client c = new Client()) {
            c.awaitState("{\"request\":\"pause\"}", "paused");
            Map<String, Object> refused = c.request("{\"request\":\"snapshot\",\"dir\":\"" + tmp.resolve("vsock") + "\"}");
            assertEquals("unsupported_device", refused.get("error"), refused::toString);
            String message = String.valueOf(refused.get("message"));
            assertTrue(message.contains("virtio-vsock.0") && message.contains("connections") && !message.contains("rng"), refused::toString);
            assertFalse(Files.exists(tmp.resolve("vsock")), "nothing written");
            assertEquals(true, c.request("{\"request\":\"stop\"}").get("ok"));
        }
        assertTrue(jvmm.waitFor(DEADLINE_MS, TimeUnit.MILLISECONDS), diagnostics());
    }

    private static String assertThrowsSnapshot(Path file) {
        return org.junit.jupiter.api.Assertions.assertThrows(dev.jvmm.vmm.SnapshotFile.SnapshotException.class,
                () -> dev.jvmm.vmm.SnapshotFile.read(file)).getMessage();
    }

    /** All of a serial log's bytes, a last partial line included. */
    private static String text(Path log) throws IOException {
        return Files.exists(log) ? Files.readString(log, StandardCharsets.ISO_8859_1) : "";
    }

    /** Whole lines of {@code text} (a partial last line left out). */
    private static List<String> wholeLines(String text) {
        int end = text.lastIndexOf('\n');
        return end < 0 ? List.of() : List.of(text.substring(0, end).split("\n"));
    }

    /**
     * Snapshotted mid-run and killed (SIGKILL), the counter restored twice at once from the same
     * snapshot: each restored run continues the sequence exactly where the snapshot stood (the
     * output before it and the output after it are one sequence), the snapshot stays intact, a
     * stop request ends each with its status; a corrupted, truncated or missing state is refused
     * with one line.
     */
    @Test
    void aSnapshotRestoresWhereItStoppedTwiceAtOnce() throws Exception {
        start();
        Path dir = tmp.resolve("snap");
        try (Client c = new Client()) {
            c.pauseAndWaitForTheLog();
            assertEquals(true, c.request("{\"request\":\"snapshot\",\"dir\":\"" + dir + "\"}").get("ok"));
        }
        jvmm.destroyForcibly(); // SIGKILL: nothing of the first run is left but its snapshot
        assertTrue(jvmm.waitFor(DEADLINE_MS, TimeUnit.MILLISECONDS));
        jvmm = null;
        String before = text(log);
        byte[] memoryBefore = java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(dir.resolve("memory")));

        List<Process> restored = new ArrayList<>();
        List<Path> logs = new ArrayList<>(), sockets = new ArrayList<>();
        try {
            for (int i = 0; i < 2; i++) {
                Path l = tmp.resolve("restored" + i + ".log"), sock = tmp.resolve("restored" + i + ".sock");
                logs.add(l);
                sockets.add(sock);
                restored.add(Jvmm.command("run", "--no-stdin", "--timeout", "300s", "--serial-log", l.toString(), "--api-socket", sock.toString(),
                        "--stats-json", tmp.resolve("stats" + i + ".json").toString(), "--restore", dir.toString())
                        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(tmp.resolve("restored" + i + ".err").toFile()).start());
            }
            int printedBefore = wholeLines(before).size();
            for (int i = 0; i < 2; i++) {
                Path l = logs.get(i);
                Process pr = restored.get(i);
                Path err = tmp.resolve("restored" + i + ".err");
                waitFor("restored run " + i + " to count on", () -> {
                    try {
                        assertTrue(pr.isAlive(), "restored run ended: " + Files.readString(err));
                    } catch (IOException e) {
                        throw new AssertionError(e);
                    }
                    try {
                        return wholeLines(before + text(l)).size() >= printedBefore + 10;
                    } catch (IOException e) {
                        return false;
                    }
                });
                checkSequence(wholeLines(before + text(l)));
                socket = sockets.get(i);
                try (Client c = new Client()) {
                    assertEquals(true, c.request("{\"request\":\"stop\",\"status\":" + (40 + i) + "}").get("ok"));
                }
                assertTrue(pr.waitFor(DEADLINE_MS, TimeUnit.MILLISECONDS));
                assertEquals(40 + i, pr.exitValue(), Files.readString(tmp.resolve("restored" + i + ".err")));
                Map<String, Object> st = Json.object(Files.readString(tmp.resolve("stats" + i + ".json")));
                assertTrue(((Number) st.get("restore_ms")).doubleValue() > 0, st::toString);
            }
        } finally {
            restored.forEach(Process::destroyForcibly);
        }
        assertArrayEquals(memoryBefore, java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(dir.resolve("memory"))),
                "the snapshot's memory file is unchanged (mapped copy-on-write)");

        byte[] good = Files.readAllBytes(dir.resolve("state"));
        byte[] flipped = good.clone();
        flipped[good.length / 3] ^= 0x40;
        Files.write(dir.resolve("state"), flipped);
        Jvmm.Result corrupt = Jvmm.run("run", "--no-stdin", "--restore", dir.toString());
        assertEquals(ExitStatus.BAD_IMAGE, corrupt.status(), corrupt::toString);
        assertTrue(corrupt.stderr().contains("corrupt"), corrupt::toString);
        assertEquals(1, corrupt.stderr().strip().split("\n").length, "one line: " + corrupt);
        Files.write(dir.resolve("state"), Arrays.copyOf(good, good.length / 2));
        Jvmm.Result truncated = Jvmm.run("run", "--no-stdin", "--restore", dir.toString());
        assertEquals(ExitStatus.BAD_IMAGE, truncated.status(), truncated::toString);
        assertTrue(truncated.stderr().contains("truncated"), truncated::toString);
        assertEquals(1, truncated.stderr().strip().split("\n").length, "one line: " + truncated);
        // a state file whose checksum holds but whose restore section is cut short
        Map<String, byte[]> sections = new java.util.LinkedHashMap<>(dev.jvmm.vmm.SnapshotFile.decode(good, "state"));
        sections.put("restore", Arrays.copyOf(sections.get("restore"), 10));
        Files.write(dir.resolve("state"), dev.jvmm.vmm.SnapshotFile.encode(sections));
        Jvmm.Result malformed = Jvmm.run("run", "--no-stdin", "--restore", dir.toString());
        assertEquals(ExitStatus.BAD_IMAGE, malformed.status(), malformed::toString);
        assertTrue(malformed.stderr().contains("its restore section is malformed (it ends early"), malformed::toString);
        assertEquals(1, malformed.stderr().strip().split("\n").length, "one line: " + malformed);
        Jvmm.Result missing = Jvmm.run("run", "--no-stdin", "--restore", tmp.resolve("nowhere").toString());
        assertEquals(ExitStatus.BAD_IMAGE, missing.status(), missing::toString);
        Jvmm.Result withKernel = Jvmm.run("run", "--restore", dir.toString(), KvmSupport.guest("hello.bin").toString());
        assertEquals(ExitStatus.USAGE, withKernel.status(), withKernel::toString);
    }

    /** A disk image of {@code sectors} sectors as virtio-blk-count.elf reads them: sector k starts with k, "JVMM-SECTOR", and a value at 16. */
    private Path countImage(String name, int sectors) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(sectors * 512).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int k = 0; k < sectors; k++) {
            b.putInt(k * 512, k).put(k * 512 + 4, "JVMM-SECTOR".getBytes(StandardCharsets.US_ASCII)).putInt(k * 512 + 16, k * 0x9e3779b1);
        }
        Path p = tmp.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    /**
     * Runs virtio-blk-count.elf on {@code image} (with {@code options}) until its log has {@code lines}
     * lines, pauses it, snapshots it into {@code dir} and kills it (SIGKILL: what is left is the
     * snapshot and the image); returns its output up to the snapshot.
     */
    private String snapshotDiskGuestAndKill(Path dir, Path image, int lines, String... options) throws IOException, InterruptedException {
        socket = tmp.resolve("blk.sock");
        log = tmp.resolve("blk.log");
        stderr = tmp.resolve("blk.err");
        List<String> args = new ArrayList<>(List.of("run", "--no-stdin", "--timeout", "300s", "--serial-log", log.toString(),
                "--api-socket", socket.toString(), "--disk", image.toString()));
        args.addAll(List.of(options));
        args.add(KvmSupport.guest("virtio-blk-count.elf").toString());
        jvmm = Jvmm.command(args.toArray(String[]::new)).redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(stderr.toFile()).start();
        waitFor(lines + " lines", () -> Files.exists(socket) && lines().size() >= lines);
        try (Client c = new Client()) {
            c.pauseAndWaitForTheLog();
            Map<String, Object> snap = c.request("{\"request\":\"snapshot\",\"dir\":\"" + dir + "\"}");
            assertEquals(true, snap.get("ok"), snap::toString);
        }
        jvmm.destroyForcibly();
        assertTrue(jvmm.waitFor(DEADLINE_MS, TimeUnit.MILLISECONDS));
        jvmm = null;
        String before = text(log);
        assertFalse(before.contains("done"), "the snapshot fell mid-run: " + before);
        return before;
    }

    /**
     * virtio-blk-count.elf reading sectors through a virtio disk, paused mid-run, snapshotted and
     * killed (SIGKILL); restored with its image given again by --disk, it reads on from where it was:
     * the output before the snapshot and the restored run's make exactly the output of a run without
     * a snapshot, and the exit status is the same. Restoring without the disk, with an image of
     * another size or with a transport section whose queue size is out of range is refused with one
     * line naming what is wrong.
     */
    @Test
    void aVirtioDiskIsSnapshottedAndTheRestoredGuestReadsOn() throws Exception {
        Path guest = KvmSupport.guest("virtio-blk-count.elf");
        Path image = countImage("count.img", 64);
        Jvmm.Result reference = Jvmm.run(null, 120, "run", "--no-stdin", "--timeout", "100s", "--disk", image.toString(), guest.toString());
        assertEquals(33, reference.status(), reference::toString);
        assertTrue(reference.stdout().contains("round 150 sector"), reference::toString);

        Path dir = tmp.resolve("snap");
        String before = snapshotDiskGuestAndKill(dir, image, 11);
        Map<String, byte[]> state = dev.jvmm.vmm.SnapshotFile.read(dir.resolve("state"));
        assertTrue(state.containsKey("device.virtio-blk.0"), state.keySet()::toString);

        Jvmm.Result noDisk = Jvmm.run("run", "--no-stdin", "--restore", dir.toString());
        assertEquals(ExitStatus.USAGE, noDisk.status(), noDisk::toString);
        assertTrue(noDisk.stderr().contains("virtio-blk.0 on " + image.toAbsolutePath()) && noDisk.stderr().contains("--disk"), noDisk::toString);
        Jvmm.Result smaller = Jvmm.run("run", "--no-stdin", "--restore", dir.toString(), "--disk", countImage("small.img", 32).toString());
        assertEquals(ExitStatus.BAD_IMAGE, smaller.status(), smaller::toString);
        assertTrue(smaller.stderr().contains("device.virtio-blk.0") && smaller.stderr().contains("32 sectors"), smaller::toString);
        assertEquals(1, smaller.stderr().strip().split("\n").length, "one line: " + smaller);

        Path restoredLog = tmp.resolve("restored.log");
        Jvmm.Result restored = Jvmm.run(null, 120, "run", "--no-stdin", "--timeout", "100s", "--serial-log", restoredLog.toString(),
                "--restore", dir.toString(), "--disk", image.toString());
        assertEquals(reference.status(), restored.status(), restored::toString);
        assertEquals(reference.stdout(), before + text(restoredLog), "the output before the snapshot and after the restore");

        byte[] transport = state.get("device.virtio-blk.0");
        ByteBuffer.wrap(transport).putInt(40, 12); // queue 0's size (see VirtioMmioTransport.saveState): not a power of 2
        java.util.LinkedHashMap<String, byte[]> bad = new java.util.LinkedHashMap<>(state);
        bad.put("device.virtio-blk.0", transport);
        Files.write(dir.resolve("state"), dev.jvmm.vmm.SnapshotFile.encode(bad));
        Jvmm.Result badQueue = Jvmm.run("run", "--no-stdin", "--restore", dir.toString(), "--disk", image.toString());
        assertEquals(ExitStatus.BAD_IMAGE, badQueue.status(), badQueue::toString);
        assertTrue(badQueue.stderr().contains("section device.virtio-blk.0") && badQueue.stderr().contains("size 12"), badQueue::toString);
        assertEquals(1, badQueue.stderr().strip().split("\n").length, "one line: " + badQueue);
    }

    /**
     * A request the device had not served when the snapshot was taken (here one the guest made
     * available without notifying, as a notification still in its eventfd at the pause would be) is
     * served after the restore: a restored jvmm signals every queue once. The same guest waits in
     * vain without a snapshot.
     */
    @Test
    void aRequestTheDeviceHadNotServedIsServedAfterTheRestore() throws Exception {
        Path image = countImage("count.img", 64);
        Path dir = tmp.resolve("snap");
        String before = snapshotDiskGuestAndKill(dir, image, 6, "--cmdline", "unnotified");
        assertTrue(before.endsWith("round 5 not notified, waiting\n"), before);
        Path restoredLog = tmp.resolve("restored.log");
        Jvmm.Result restored = Jvmm.run(null, 120, "run", "--no-stdin", "--timeout", "100s", "--serial-log", restoredLog.toString(),
                "--restore", dir.toString(), "--disk", image.toString());
        assertEquals(33, restored.status(), restored + "\n" + text(restoredLog));
        assertTrue(text(restoredLog).startsWith("round 5 sector 35 value "), text(restoredLog));
    }
}
