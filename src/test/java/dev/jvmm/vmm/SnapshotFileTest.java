package dev.jvmm.vmm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The snapshot state file: sections round-trip; another version, truncation, trailing bytes and any corruption are refused with one line. */
class SnapshotFileTest {
    private static Map<String, byte[]> sample() {
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put("vcpu.0.regs", new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        m.put("empty", new byte[0]);
        m.put("meta \u00e9", "{\"format\":1}".getBytes(StandardCharsets.UTF_8));
        byte[] big = new byte[5000];
        for (int i = 0; i < big.length; i++) big[i] = (byte) (i * 31);
        m.put("vcpu.0.xsave", big);
        return m;
    }

    private static String refusal(byte[] file) {
        String msg = assertThrows(SnapshotFile.SnapshotException.class, () -> SnapshotFile.decode(file, "state")).getMessage();
        assertTrue(!msg.contains("\n"), "one line: " + msg);
        return msg;
    }

    @Test
    void sectionsRoundTripInOrder() throws Exception {
        Map<String, byte[]> in = sample();
        Map<String, byte[]> out = SnapshotFile.decode(SnapshotFile.encode(in), "state");
        assertEquals(List.copyOf(in.keySet()), List.copyOf(out.keySet()));
        for (String k : in.keySet()) assertArrayEquals(in.get(k), out.get(k), k);
        assertEquals(0, SnapshotFile.decode(SnapshotFile.encode(Map.of()), "state").size());
    }

    @Test
    void everyFlippedBitIsRefused() {
        byte[] good = SnapshotFile.encode(sample());
        for (int i = 0; i < good.length; i++) {
            for (int bit = 0; bit < 8; bit += 3) {
                byte[] bad = good.clone();
                bad[i] ^= (byte) (1 << bit);
                String msg = refusal(bad);
                assertTrue(msg.contains("corrupt") || msg.contains("truncated") || msg.contains("not a jvmm snapshot")
                        || msg.contains("version"), "byte " + i + ": " + msg);
            }
        }
    }

    @Test
    void everyTruncationIsRefused() {
        byte[] good = SnapshotFile.encode(sample());
        for (int len = 0; len < good.length; len++) {
            String msg = refusal(Arrays.copyOf(good, len));
            if (len >= SnapshotFile.MAGIC.length) assertTrue(msg.contains("truncated"), len + ": " + msg);
            else assertTrue(msg.contains("not a jvmm snapshot state file"), len + ": " + msg);
        }
        byte[] longer = Arrays.copyOf(good, good.length + 1);
        assertTrue(refusal(longer).contains("after its end"));
    }

    @Test
    void anotherVersionIsNamed() {
        byte[] file = SnapshotFile.encode(sample());
        ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).putInt(SnapshotFile.MAGIC.length, SnapshotFile.VERSION + 1);
        String msg = refusal(file);
        assertTrue(msg.contains("format version " + (SnapshotFile.VERSION + 1)) && msg.contains("reads version " + SnapshotFile.VERSION), msg);
        assertTrue(refusal("hello, world, this is not a snapshot at all".getBytes(StandardCharsets.US_ASCII)).contains("not a jvmm snapshot"));
    }

    @Test
    void writtenFilesAreOwnerOnlyAndReadBack(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("state");
        SnapshotFile.write(f, sample());
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
        assertArrayEquals(sample().get("vcpu.0.xsave"), SnapshotFile.read(f).get("vcpu.0.xsave"));
        SnapshotFile.write(f, Map.of("a", new byte[] {9}));
        assertArrayEquals(new byte[] {9}, SnapshotFile.read(f).get("a"), "rewritten whole");
        String missing = assertThrows(SnapshotFile.SnapshotException.class, () -> SnapshotFile.read(tmp.resolve("nope"))).getMessage();
        assertTrue(missing.contains("cannot read"), missing);
    }
}
