package dev.jvmm.vmm;

import dev.jvmm.host.PasstLink;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each option's syntax, parsed where it is defined: no VM, no CLI. */
class VirtioSpecTest {
    private static String refused(Runnable r) {
        return assertThrows(IllegalArgumentException.class, r::run).getMessage();
    }

    /** {@code parse} refuses each spec of {@code specsAndReasons} (spec, reason, spec, reason...) with a message containing its reason. */
    private static void assertRefusals(Function<String, ?> parse, String... specsAndReasons) {
        for (int i = 0; i < specsAndReasons.length; i += 2) {
            String spec = specsAndReasons[i], reason = specsAndReasons[i + 1];
            String why = refused(() -> parse.apply(spec));
            assertTrue(why.contains(reason), spec + ": " + why);
        }
    }

    @Test
    void disks() {
        VirtioSpec.Disk d = VirtioSpec.Disk.parse("/images/root.img");
        assertEquals(Path.of("/images/root.img"), d.image());
        assertFalse(d.readOnly());
        assertEquals("root.img", d.id());
        assertTrue(d.lock());
        VirtioSpec.Disk ro = VirtioSpec.Disk.parse("a.img,ro,id=data,lock=off");
        assertTrue(ro.readOnly());
        assertEquals("data", ro.id());
        assertFalse(ro.lock());
        assertRefusals(VirtioSpec.Disk::parse,
                ",ro", "the image path is missing",
                "a.img,rw", "unknown option 'rw'",
                "a.img,id=" + "x".repeat(21), "longer than virtio's 20 bytes");
    }

    @Test
    void nets() {
        VirtioSpec.Net n = VirtioSpec.Net.parse("tap=tap0,mac=52:54:00:12:34:56");
        assertEquals("tap0", n.tap());
        assertArrayEquals(new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x56}, n.effectiveMac());
        VirtioSpec.Net d = VirtioSpec.Net.parse("tap=tap1");
        assertNull(d.mac());
        assertArrayEquals(VirtioSpec.Net.defaultMac("tap1"), d.effectiveMac());
        assertEquals(0x52, d.effectiveMac()[0]);
        assertRefusals(VirtioSpec.Net::parse,
                "mac=52:54:00:12:34:56", "the tap device is missing",
                "tap=a,tap=b", "tap= is given twice",
                "tap=a,mac=01:00:00:00:00:01", "multicast",
                "tap=a,mac=00:00:00:00:00:00", "all zeros",
                "tap=a,mac=52:54:00:12:34", "invalid MAC address",
                "tap=a b", "a space",
                "tap=a,queues=2", "unknown option 'queues=2'");
    }

    @Test
    void vsocks() {
        VirtioSpec.Vsock v = VirtioSpec.Vsock.parse("cid=3,uds=/tmp/vm.sock");
        assertEquals(3, v.cid());
        assertEquals(Path.of("/tmp/vm.sock"), v.uds());
        assertEquals(new VirtioSpec.Vsock(4294967294L, Path.of("rel/v.sock")), VirtioSpec.Vsock.parse("uds=rel/v.sock,cid=4294967294"));
        for (String cid : new String[] {"0", "1", "2", "4294967295", "99999999999", "-3", "0x10", "", "3.0"}) {
            assertTrue(refused(() -> VirtioSpec.Vsock.parse("cid=" + cid + ",uds=/tmp/v")).contains("is not a guest CID (3 to 4294967294"), cid);
        }
        assertRefusals(VirtioSpec.Vsock::parse,
                "uds=/tmp/v", "the guest's CID is missing",
                "cid=3", "the socket path is missing",
                "cid=3,uds=", "uds= needs a path",
                "cid=3,cid=4,uds=/tmp/v", "cid= is given twice",
                "cid=3,uds=/a,uds=/b", "uds= is given twice",
                "cid=3,uds=/tmp/v,port=5", "unknown option 'port=5' (use cid=N,uds=PATH)",
                "", "unknown option ''");
        // PATH_4294967295 must fit in a sockaddr_un's 108 bytes with its NUL: 96 bytes of PATH do, 97 do not
        assertEquals(96, Path.of("/" + "p".repeat(95)).toString().length());
        VirtioSpec.Vsock.parse("cid=3,uds=/" + "p".repeat(95));
        assertTrue(refused(() -> VirtioSpec.Vsock.parse("cid=3,uds=/" + "p".repeat(96))).contains("at most 96 fit in a UNIX socket address"));
        assertTrue(refused(() -> new VirtioSpec.Vsock(2, Path.of("/v"))).contains("cid 2"));
    }

    @Test
    void userNets() {
        VirtioSpec.UserNet u = VirtioSpec.UserNet.parse("user", 0);
        assertEquals(List.of(), u.forwards());
        assertArrayEquals(new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x56}, u.mac());
        assertFalse(u.optional());
        assertArrayEquals(new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x57}, VirtioSpec.UserNet.parse("user", 1).mac(), "a second --net user differs");
        VirtioSpec.UserNet f = VirtioSpec.UserNet.parse("user,fwd=tcp:8080:80,fwd=udp:127.0.0.1:5353:53,mac=52:54:00:ab:cd:ef,optional", 0);
        assertEquals(List.of(new PasstLink.Forward("tcp", null, 8080, 80), new PasstLink.Forward("udp", "127.0.0.1", 5353, 53)), f.forwards());
        assertArrayEquals(new byte[] {0x52, 0x54, 0, (byte) 0xab, (byte) 0xcd, (byte) 0xef}, f.mac());
        assertTrue(f.optional());
        assertEquals(Path.of("/opt/passt"), f.withPasst(Path.of("/opt/passt")).passt());
        assertTrue(VirtioSpec.UserNet.isUser("user") && VirtioSpec.UserNet.isUser("user,optional"));
        assertFalse(VirtioSpec.UserNet.isUser("tap=user") || VirtioSpec.UserNet.isUser("username"));
        assertRefusals(s -> VirtioSpec.UserNet.parse(s, 0),
                "user,fwd=tcp:80", "is not PROTO:[ADDR:]HOSTPORT:GUESTPORT",
                "user,fwd=sctp:80:80", "protocol 'sctp' is not tcp or udp",
                "user,fwd=tcp:0:80", "port '0' is not 1 to 65535",
                "user,fwd=tcp:80:65536", "port '65536' is not 1 to 65535",
                "user,fwd=tcp:8o:80", "port '8o'",
                "user,fwd=tcp:256.0.0.1:80:80", "'256.0.0.1' is not an IPv4 address",
                "user,fwd=tcp:8080:80,fwd=tcp:8080:81", "host tcp port 8080 is forwarded twice");
        VirtioSpec.UserNet.parse("user,fwd=tcp:8080:80,fwd=udp:8080:80", 0); // TCP and UDP ports are distinct
        assertRefusals(s -> VirtioSpec.UserNet.parse(s, 0),
                "user,mac=01:00:5e:00:00:01", "multicast",
                "user,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02", "mac= is given twice",
                "user,tap=t0", "unknown option 'tap=t0'",
                "user,", "unknown option ''");
    }

    @Test
    void vmConfigChecksItsRanges() {
        VmConfig c = VmConfig.builder().cpus(2).memBytes(64L << 20).timeout(Duration.ofSeconds(5))
                .onReboot(VmConfig.OnReboot.parse("restart")).pit(VmConfig.PitMode.parse("USER")).build();
        assertEquals(2, c.cpus());
        assertEquals(VmConfig.OnReboot.RESTART, c.onReboot());
        assertEquals(VmConfig.PitMode.USER, c.pit());
        assertEquals(c, c.toBuilder().build(), "a builder made from a config makes the same config");
        assertTrue(refused(() -> VmConfig.builder().cpus(0).build()).contains("at least 1"));
        assertTrue(refused(() -> VmConfig.builder().cpus(256).build()).contains("at most 255"));
        assertTrue(refused(() -> VmConfig.builder().memBytes(1025 * 1024).build()).contains("multiple of the 4 KiB page size"));
        assertTrue(refused(() -> VmConfig.builder().timeout(Duration.ofHours(3_000_000)).build()).contains("longer than jvmm supports"));
        assertTrue(refused(() -> VmConfig.builder().timeout(Duration.ZERO).build()).contains("longer than 0"));
        assertTrue(refused(() -> VmConfig.OnReboot.parse("halt")).contains("use exit or restart"));
        assertTrue(refused(() -> VmConfig.PitMode.parse("hpet")).contains("use kernel or user"));
        VmConfig.Builder many = VmConfig.builder();
        for (int i = 0; i < 19; i++) many.addVirtio(new VirtioSpec.Rng());
        assertTrue(refused(many::build).contains("at most 18 virtio devices"));
    }

    /** A restore's devices from the snapshot's list: disks from --disk in order, rng and console as they were; a mismatch refused. */
    @Test
    void restoredDevices() throws Exception {
        List<RestoreConfig.Device> saved = List.of(
                new RestoreConfig.Device("virtio-blk.0", "virtio-blk", "/a.img", false),
                new RestoreConfig.Device("virtio-rng.1", "virtio-rng", "", false),
                new RestoreConfig.Device("virtio-blk.2", "virtio-blk", "/b.img", true),
                new RestoreConfig.Device("virtio-console.3", "virtio-console", "", false));
        VirtioSpec.Disk a = VirtioSpec.Disk.parse("/copy/a.img"), b = VirtioSpec.Disk.parse("/copy/b.img,ro");
        assertEquals(List.of(a, new VirtioSpec.Rng(), b, new VirtioSpec.Console()), VirtioSpec.forRestore(saved, List.of(a, b)));
        assertEquals(List.of(), VirtioSpec.forRestore(List.of(), List.of()), "a snapshot of a VM without virtio devices");
        VmmException few = assertThrows(VmmException.class, () -> VirtioSpec.forRestore(saved, List.of(a)));
        assertEquals(ExitStatus.USAGE, few.exitStatus());
        assertTrue(few.getMessage().contains("2 disks (virtio-blk.0 on /a.img; virtio-blk.2 on /b.img,ro), --disk gives 1"), few.getMessage());
        VmmException extra = assertThrows(VmmException.class, () -> VirtioSpec.forRestore(List.of(), List.of(a)));
        assertTrue(extra.getMessage().contains("0 disks, --disk gives 1"), extra.getMessage());
        VmmException net = assertThrows(VmmException.class,
                () -> VirtioSpec.forRestore(List.of(new RestoreConfig.Device("virtio-net.0", "virtio-net", "", false)), List.of()));
        assertEquals(ExitStatus.BAD_IMAGE, net.exitStatus());
        assertTrue(net.getMessage().contains("virtio-net.0"), net.getMessage());
    }
}
