package dev.jvmm.vmm;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** {@code --share}'s syntax: tags, ro, socket=, and every usage error. */
class ShareSpecTest {
    private static VirtioSpec.Share parse(String spec) {
        return VirtioSpec.Share.parse(spec);
    }

    private static String error(String spec) {
        return assertThrows(IllegalArgumentException.class, () -> parse(spec)).getMessage();
    }

    @Test
    void aDirectoryGetsItsNameAsTag() {
        VirtioSpec.Share s = parse("/srv/data");
        assertEquals(Path.of("/srv/data"), s.directory());
        assertEquals("data", s.tag());
        assertFalse(s.readOnly());
        assertNull(s.socket());
        assertNull(s.virtiofsd());
        assertTrue(s.needsSharedMemory());
        assertEquals("virtio-fs", s.kind());
    }

    @Test
    void relativeDirectoriesBecomeAbsoluteAndNormalised() {
        VirtioSpec.Share s = parse("some/dir/../share");
        assertTrue(s.directory().isAbsolute());
        assertEquals(Path.of("").toAbsolutePath().resolve("some/share"), s.directory());
        assertEquals("share", s.tag());
        assertEquals(Path.of("").toAbsolutePath().getFileName().toString(), parse(".").tag());
    }

    @Test
    void tagAndRoInAnyOrder() {
        VirtioSpec.Share s = parse("/srv/data,ro,tag=files");
        assertEquals("files", s.tag());
        assertTrue(s.readOnly());
        assertEquals(s, parse("/srv/data,tag=files,ro"));
        assertEquals("ünïcødé", parse("/x,tag=ünïcødé").tag());
        assertEquals("a".repeat(36), parse("/x,tag=" + "a".repeat(36)).tag());
    }

    @Test
    void aSocketNeedsATagAndNoDirectory() {
        VirtioSpec.Share s = parse("socket=/run/vfsd.sock,tag=root");
        assertEquals(Path.of("/run/vfsd.sock"), s.socket());
        assertNull(s.directory());
        assertEquals("root", s.tag());
        assertEquals(s, parse("tag=root,socket=/run/vfsd.sock"));
        assertEquals("--share 'socket=/run/vfsd.sock': socket= needs tag=TAG", error("socket=/run/vfsd.sock"));
        assertEquals("--share '/srv,socket=/s': give a directory or socket=PATH, not both", error("/srv,socket=/s"));
        assertEquals("--share 'socket=/s,tag=t,ro': ro cannot be used with socket=: the back end at /s decides whether the share is writable",
                error("socket=/s,tag=t,ro"));
        assertEquals("--share 'socket=,tag=t': socket= needs a path", error("socket=,tag=t"));
        assertEquals("--share 'socket=/a,socket=/b,tag=t': socket= is given twice", error("socket=/a,socket=/b,tag=t"));
    }

    @Test
    void badTagsAndOptions() {
        assertEquals("--share '/x,tag=" + "a".repeat(37) + "': tag '" + "a".repeat(37) + "' is 37 bytes of UTF-8; virtio-fs allows at most 36",
                error("/x,tag=" + "a".repeat(37)));
        assertTrue(error("/x,tag=" + "é".repeat(19)).contains("is 38 bytes of UTF-8"), "bytes, not characters");
        assertEquals("--share '/x,tag=': the tag is empty", error("/x,tag="));
        assertEquals("--share '/x,tag=a,tag=b': tag= is given twice", error("/x,tag=a,tag=b"));
        assertEquals("--share '/x,tag=a\tb': tag 'a?b' contains a control character", error("/x,tag=a\tb"));
        assertEquals("--share '/x,rw': unknown option 'rw' (use DIR[,tag=TAG][,ro] or socket=PATH,tag=TAG)", error("/x,rw"));
        assertEquals("--share '': the directory is missing", error(""));
        assertEquals("--share ',ro': the directory is missing", error(",ro"));
        assertEquals("--share 'ro': the directory is missing", error("ro"));
        assertEquals("--share 'tag=x': the directory is missing", error("tag=x"));
        assertEquals("--share '/': / has no name to use as tag; give tag=TAG", error("/"));
        assertEquals("root", parse("/,tag=root").tag());
        String longName = "d".repeat(40);
        assertEquals("--share '/tmp/" + longName + "': tag '" + longName + "' is 40 bytes of UTF-8; virtio-fs allows at most 36"
                + " (the directory's name; give tag=TAG)", error("/tmp/" + longName));
        assertEquals("--share '/x\0y': invalid path '/x\0y': Nul character not allowed", error("/x\0y"));
    }

    @Test
    void tagsMustBeUnique() {
        VirtioSpec.Share.checkTagsUnique(List.of(parse("/a/data"), parse("/b/data,tag=other")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VirtioSpec.Share.checkTagsUnique(List.of(parse("/a/data"), parse("socket=/s,tag=data"))));
        assertEquals("--share: tag 'data' is used twice; give each share its own tag=TAG", e.getMessage());
    }

    @Test
    void virtiofsdIsChosenSeparately() {
        VirtioSpec.Share s = parse("/srv/data").withVirtiofsd(Path.of("/opt/virtiofsd"));
        assertEquals(Path.of("/opt/virtiofsd"), s.virtiofsd());
        assertEquals("data", s.tag());
    }

    @Test
    void otherDevicesNeedNoSharedMemory() {
        assertFalse(new VirtioSpec.Rng().needsSharedMemory());
        assertFalse(VirtioSpec.Disk.parse("/x.img").needsSharedMemory());
    }
}
