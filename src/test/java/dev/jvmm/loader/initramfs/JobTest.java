package dev.jvmm.loader.initramfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobTest {
    @TempDir
    Path dir;

    record Rec(String key, byte[] value) { }

    /** The job file read back record by record, the way rootfs-job.c walks it. */
    static List<Rec> decode(byte[] b) {
        List<Rec> out = new ArrayList<>();
        int i = 0;
        while (i < b.length) {
            int nul = i;
            while (b[nul] != 0) nul++;
            String key = new String(b, i, nul - i, StandardCharsets.US_ASCII);
            int len = ByteBuffer.wrap(b, nul + 1, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
            out.add(new Rec(key, Arrays.copyOfRange(b, nul + 5, nul + 5 + len)));
            i = nul + 5 + len;
        }
        return out;
    }

    /** Arguments no shell quoting would survive: spaces, quotes, newlines, an empty one, bytes that are not UTF-8. */
    static final byte[][] NASTY = {
        "sh".getBytes(), "-c".getBytes(), "echo 'it''s' \"$HOME\" `x` \\ $((1+1))\nsecond line\ttab".getBytes(StandardCharsets.UTF_8),
        new byte[0], {(byte) 0xff, (byte) 0xfe, 'x', (byte) 0x80}, "ünïcödé ☃".getBytes(StandardCharsets.UTF_8), {'\\', '=', ','},
    };

    static Job nastyJob() {
        Job.Builder b = Job.builder("jvmm-root").writableDefaults("/home/u b").share("proj", "/home/u b/work", false)
                .share("data", "/data", true).hostname("box").cwd("/home/u b/work").user(1000, 100)
                .standardEnvironment("/home/u b", "xterm-256color").env("WEIRD", "a=b\nc")
                .env(new byte[] {'B', 'I', 'N', '=', (byte) 0xc3, 0x28})
                .ports(RootfsInit.STDIN_PORT, RootfsInit.STDOUT_PORT, RootfsInit.STDERR_PORT);
        for (byte[] a : NASTY) b.arg(a);
        return b.build();
    }

    @Test
    void recordsRoundTrip() {
        Job job = nastyJob();
        List<Rec> recs = decode(job.encode());
        assertEquals("jvmm-job", recs.getFirst().key());
        assertEquals("1", new String(recs.getFirst().value()));
        List<byte[]> args = recs.stream().filter(r -> r.key().equals("arg")).map(Rec::value).toList();
        assertEquals(NASTY.length, args.size());
        for (int i = 0; i < NASTY.length; i++) assertArrayEquals(NASTY[i], args.get(i), "arg " + i);
        List<String> keys = recs.stream().map(Rec::key).toList();
        assertEquals(List.of("jvmm-job", "root", "tmpfs", "tmpfs", "overlay", "overlay", "overlay", "share", "share", "hostname",
                "cwd", "uid", "gid"), keys.subList(0, 13));
        Rec share = recs.get(7);
        assertArrayEquals("proj\0/home/u b/work\0rw".getBytes(), share.value());
        assertEquals("1000", new String(recs.get(11).value()));
        assertEquals(List.of(new Job.Tmpfs("/tmp"), new Job.Tmpfs("/run"), new Job.Overlay("/etc"), new Job.Overlay("/var"),
                new Job.Overlay("/home/u b"), new Job.Share("proj", "/home/u b/work", false), new Job.Share("data", "/data", true)),
                job.mounts());
        assertArrayEquals(NASTY[4], job.argv().get(4));
    }

    @Test
    void builderRefusesWhatTheInitCouldNotTake() {
        Job.Builder b = Job.builder("root");
        assertThrows(IllegalArgumentException.class, () -> b.arg(new byte[] {'a', 0, 'b'}));
        assertThrows(IllegalArgumentException.class, () -> b.tmpfs("tmp"));
        assertThrows(IllegalArgumentException.class, () -> b.cwd("relative/dir"));
        assertThrows(IllegalArgumentException.class, () -> b.env("NAME=", "x"));
        assertThrows(IllegalArgumentException.class, () -> b.env("=x".getBytes()));
        assertThrows(IllegalArgumentException.class, () -> b.env("NOEQUALS".getBytes()));
        assertThrows(IllegalArgumentException.class, () -> b.user(-1, 0));
        assertThrows(IllegalArgumentException.class, () -> b.user(0, 4294967295L));
        assertThrows(IllegalArgumentException.class, () -> b.ports("a/b", null, null));
        assertThrows(IllegalArgumentException.class, () -> b.share("", "/x", true));
        assertThrows(IllegalArgumentException.class, () -> Job.builder(""));
        assertThrows(IllegalArgumentException.class, () -> Job.builder("a\0b"));
        byte[] big = new byte[1 << 20];
        Arrays.fill(big, (byte) 'x');
        for (int i = 0; i < 4; i++) b.arg(big);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, b::build);
        assertTrue(e.getMessage().contains("more than the 4 MiB"), e.getMessage());
    }

    @Test
    void writableRootGetsNoOverlays() {
        assertEquals(List.of(new Job.Tmpfs("/tmp"), new Job.Tmpfs("/run")),
                Job.builder("r").rootWritable(true).writableDefaults("/root").build().mounts());
        assertEquals(4, Job.builder("r").writableDefaults("/").build().mounts().size());
    }

    // ------------------------------------------------------------------ the C parser (guests/rootfs-job.c)

    private static Path dumper() {
        return GuestHarness.path("rootfs-job-dump");
    }

    private String dump(byte[] job) throws Exception {
        Path f = Files.createTempFile(dir, "job", "");
        Files.write(f, job);
        Process p = new ProcessBuilder(dumper().toString(), f.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        return out;
    }

    /** rootfs-job-dump's escaping: bytes outside '!'..'~' and '\' as \xHH. */
    static String esc(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            int c = x & 0xff;
            if (c < '!' || c > '~' || c == '\\') sb.append(String.format("\\x%02x", c));
            else sb.append((char) c);
        }
        return sb.toString();
    }

    static String esc(String s) {
        return esc(s.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void cParserReadsWhatJavaWrites() throws Exception {
        List<String> want = new ArrayList<>(List.of("root=jvmm-root", "root-rw=0", "tmpfs=/tmp", "tmpfs=/run", "overlay=/etc",
                "overlay=/var", "overlay=" + esc("/home/u b"), "share-tag=proj", "share-path=" + esc("/home/u b/work"),
                "share-ro=0", "share-tag=data", "share-path=/data", "share-ro=1", "hostname=box", "cwd=" + esc("/home/u b/work"),
                "uid=1000", "gid=100"));
        for (byte[] a : NASTY) want.add("arg=" + esc(a));
        want.addAll(List.of("env=PATH=" + RootfsInit.DEFAULT_PATH, "env=HOME=" + esc("/home/u b"), "env=TERM=xterm-256color",
                "env=" + esc("WEIRD=a=b\nc"), "env=" + esc(new byte[] {'B', 'I', 'N', '=', (byte) 0xc3, 0x28}),
                "stdin=jvmm.stdin", "stdout=jvmm.stdout", "stderr=jvmm.stderr", "console-tty=0"));
        assertEquals(String.join("\n", want) + "\n", dump(nastyJob().encode()));
        assertEquals("root=r\nroot-rw=1\nconsole-tty=1\n", dump(Job.builder("r").rootWritable(true).consoleTty(true).build().encode()));
        assertEquals("root=r\nroot-rw=0\nconsole-tty=0\ndhcp=52:54:00:0a:bc:ff\ndhcp=02:00:00:00:00:01\n",
                dump(Job.builder("r").dhcp(new byte[] {0x52, 0x54, 0, 0x0a, (byte) 0xbc, (byte) 0xff}).dhcp(new byte[] {2, 0, 0, 0, 0, 1})
                        .build().encode()));
    }

    private static byte[] records(Object... keyValues) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < keyValues.length; i += 2) {
            byte[] v = keyValues[i + 1] instanceof byte[] bytes ? bytes : ((String) keyValues[i + 1]).getBytes(StandardCharsets.UTF_8);
            out.writeBytes(((String) keyValues[i]).getBytes(StandardCharsets.US_ASCII));
            out.write(0);
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v.length).array());
            out.writeBytes(v);
        }
        return out.toByteArray();
    }

    @Test
    void cParserRefusesMalformedJobs() throws Exception {
        byte[] good = records("jvmm-job", "1", "root", "r", "arg", "true");
        assertEquals("root=r\nroot-rw=0\narg=true\nconsole-tty=0\n", dump(good));
        for (int cut = 1; cut < good.length; cut++) {
            if (cut == 24) continue;   // between the root and arg records: a whole job (an interactive one)
            String out = dump(Arrays.copyOf(good, cut));
            assertTrue(out.startsWith("error: "), "cut at " + cut + ": " + out);
        }
        assertEquals("error: empty job file\n", dump(new byte[0]));
        assertEquals("error: job format version '2', this init reads 1\n", dump(records("jvmm-job", "2", "root", "r")));
        assertEquals("error: job file does not start with a 'jvmm-job' record\n", dump(records("root", "r")));
        assertEquals("error: unknown key 'colour'\n", dump(records("jvmm-job", "1", "root", "r", "colour", "blue")));
        assertEquals("error: 'root' given twice\n", dump(records("jvmm-job", "1", "root", "r", "root", "s")));
        assertEquals("error: job file names no root tag\n", dump(records("jvmm-job", "1", "arg", "x")));
        assertEquals("error: value of 'arg' contains a NUL byte\n", dump(records("jvmm-job", "1", "root", "r", "arg", "a\0b")));
        assertEquals("error: 'cwd' is not an absolute path\n", dump(records("jvmm-job", "1", "root", "r", "cwd", "tmp")));
        assertEquals("error: 'uid' is not a decimal id below 4294967295\n", dump(records("jvmm-job", "1", "root", "r", "uid", "-1")));
        assertEquals("error: 'uid' is not a decimal id below 4294967295\n", dump(records("jvmm-job", "1", "root", "r", "uid", "4294967295")));
        assertEquals("error: env entry without NAME=\n", dump(records("jvmm-job", "1", "root", "r", "env", "=x")));
        assertEquals("error: share 'a' has no ro/rw field\n", dump(records("jvmm-job", "1", "root", "r", "share", "a\0/x")));
        assertEquals("error: share 'a' has extra fields\n", dump(records("jvmm-job", "1", "root", "r", "share", "a\0/x\0ro\0y")));
        assertEquals("error: share 'a': mode must be ro or rw\n", dump(records("jvmm-job", "1", "root", "r", "share", "a\0/x\0rx")));
        assertEquals("error: bad character in key at offset 24\n", dump(records("jvmm-job", "1", "root", "r", "Arg", "x")));
        for (String mac : new String[] {"52:54:00:0A:BC:FF", "52:54:00:0a:bc", "52:54:00:0a:bc:ff:", "52-54-00-0a-bc-ff", ""}) {
            assertEquals("error: dhcp '" + mac + "' is not a MAC address like 52:54:00:12:34:56\n",
                    dump(records("jvmm-job", "1", "root", "r", "dhcp", mac)), mac);
        }
        byte[] lying = good.clone();
        lying[good.length - 8] = 0x7f;   // the last value's length, far beyond the end
        assertTrue(dump(lying).startsWith("error: value of 'arg'"), dump(lying));
    }
}
