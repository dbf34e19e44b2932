package dev.jvmm.vmm;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The snapshot's restore section: it round-trips, and a malformed one is refused with one line, never read past its end. */
class RestoreConfigTest {
    private static RestoreConfig sample() {
        return new RestoreConfig(2, 5L << 30, true, "kernel",
                List.of(new long[] {0, 3L << 30, 0}, new long[] {4L << 30, 2L << 30, 3L << 30}),
                List.of(new RestoreConfig.Device("virtio-blk.0", "virtio-blk", "/images/d\u00e9j\u00e0.img", true),
                        new RestoreConfig.Device("virtio-rng.1", "virtio-rng", "", false)));
    }

    @Test
    void roundTrips() {
        RestoreConfig c = RestoreConfig.decode(sample().encode());
        assertEquals(2, c.cpus());
        assertEquals(5L << 30, c.memBytes());
        assertTrue(c.acpi());
        assertEquals("kernel", c.pit());
        assertEquals(2, c.regions().size());
        assertArrayEquals(new long[] {4L << 30, 2L << 30, 3L << 30}, c.regions().get(1));
        assertEquals(sample().devices(), c.devices());
        RestoreConfig bare = RestoreConfig.decode(new RestoreConfig(1, 1 << 20, false, "user", List.of(), List.of()).encode());
        assertFalse(bare.acpi());
        assertEquals("user", bare.pit());
        assertEquals(List.of(), bare.devices());
    }

    private static String refused(byte[] bytes) {
        String m = assertThrows(IllegalArgumentException.class, () -> RestoreConfig.decode(bytes)).getMessage();
        assertFalse(m.contains("\n"), m);
        return m;
    }

    @Test
    void malformedSectionsAreRefused() {
        byte[] good = sample().encode();
        assertTrue(refused(null).contains("no restore section"));
        for (int n = 0; n < good.length; n++) assertTrue(refused(Arrays.copyOf(good, n)).contains("ends early"), "cut at " + n);
        assertTrue(refused(Arrays.copyOf(good, good.length + 3)).contains("3 bytes after its end"));
        byte[] flag = good.clone();
        flag[12] = 7; // the ACPI flag, after u32 vCPUs and u64 RAM
        assertTrue(refused(flag).contains("ACPI flag is 7"));
        byte[] count = good.clone();
        int regionsAt = 13 + 2 + "kernel".length();
        ByteBuffer.wrap(count).order(ByteOrder.LITTLE_ENDIAN).putInt(regionsAt, -1);
        assertTrue(refused(count).contains("4294967295 regions"), refused(count));
        ByteBuffer.wrap(count).order(ByteOrder.LITTLE_ENDIAN).putInt(regionsAt, 1 << 20);
        assertTrue(refused(count).contains("regions: at most"));
        byte[] utf = good.clone();
        utf[13 + 2] = (byte) 0xff; // the PIT mode's first byte
        assertTrue(refused(utf).contains("not UTF-8"));
        byte[] len = good.clone();
        ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).putShort(13, (short) 0xffff); // a string longer than the rest
        assertTrue(refused(len).contains("ends early"));
    }
}
