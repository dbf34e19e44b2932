package dev.jvmm.memory;

import dev.jvmm.sys.LibC;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GuestMemoryTest {
    private static final long MIB = 1024 * 1024;

    @Test
    void sharedMemoryIsTheSamePagesThroughASecondMappingOfItsFd() {
        List<RamRange> ranges = List.of(new RamRange(0, 3 * MIB), new RamRange(4L << 30, 1 * MIB));
        try (GuestMemory mem = GuestMemory.allocateShared(ranges)) {
            List<GuestMemory.Region> regions = mem.regions();
            assertEquals(2, regions.size());
            GuestMemory.Region low = regions.get(0), high = regions.get(1);
            assertTrue(low.fd() >= 0);
            assertEquals(low.fd(), high.fd(), "one memfd holds all ranges");
            assertEquals(0, low.fdOffset());
            assertEquals(4 * MIB, high.fdOffset(), "the second range starts at the next 2 MiB boundary after the first");

            byte[] text = "written through the guest view".getBytes(StandardCharsets.US_ASCII);
            long gpa = (4L << 30) + 12345;
            mem.write(gpa, text);
            // an independent mapping of the file, as a back end would make: same bytes
            long mapOffset = high.fdOffset();
            MemorySegment other = LibC.mmap(MemorySegment.NULL, high.size(), LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED,
                    high.fd(), mapOffset);
            assertNotEquals(LibC.MAP_FAILED.address(), other.address());
            MemorySegment view = other.reinterpret(high.size());
            assertNotEquals(high.host().address(), view.address(), "a second mapping, not the same one");
            byte[] back = new byte[text.length];
            MemorySegment.copy(view, JAVA_BYTE, 12345, back, 0, back.length);
            assertArrayEquals(text, back);
            // and the other way round
            view.set(JAVA_BYTE, 0, (byte) 0x5a);
            assertEquals(0x5a, mem.read(4L << 30, 1)[0]);
            LibC.munmap(other, high.size());
        }
    }

    @Test
    void closingSharedMemoryClosesItsFd() throws Exception {
        GuestMemory mem = GuestMemory.allocateShared(List.of(new RamRange(0, 2 * MIB)));
        int fd = mem.regions().get(0).fd();
        Path link = Path.of("/proc/self/fd/" + fd);
        assertTrue(Files.readSymbolicLink(link).toString().startsWith("/memfd:jvmm-guest-ram"), Files.readSymbolicLink(link).toString());
        mem.close();
        assertFalse(Files.exists(link) && Files.readSymbolicLink(link).toString().startsWith("/memfd:jvmm-guest-ram"));
        mem.close(); // twice is harmless
    }

    @Test
    void sharedRangesMustBeWholePages() {
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.allocateShared(List.of(new RamRange(0, 4097))));
    }

    @Test
    void anonymousMemoryHasNoFdAndStillWorks() {
        try (GuestMemory mem = GuestMemory.allocate(List.of(new RamRange(0, 2 * MIB)))) {
            GuestMemory.Region r = mem.regions().get(0);
            assertEquals(-1, r.fd());
            assertEquals(-1, r.fdOffset());
            mem.write(100, new byte[] {1, 2, 3});
            assertArrayEquals(new byte[] {1, 2, 3}, mem.read(100, 3));
            assertThrows(GuestMemoryException.class, () -> mem.slice(2 * MIB - 1, 2));
        }
        GuestMemory.Region wrapped = new GuestMemory.Region(0, 16, java.lang.foreign.Arena.ofAuto().allocate(16));
        assertEquals(-1, wrapped.fd());
    }
}
