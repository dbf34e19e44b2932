package dev.jvmm.loader;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/** Builds kernel images in memory for the loader tests. */
final class Images {
    private Images() { }

    record Seg(long paddr, long vaddr, byte[] data, long memSize) {
        Seg(long addr, byte[] data, long memSize) {
            this(addr, addr, data, memSize);
        }
    }

    static final int MB_OFFSET = 0x100;
    static final int DATA_OFFSET = 0x200;

    static byte[] mbHeader(int flags) {
        ByteBuffer b = le(12);
        b.putInt(0x1BADB002).putInt(flags).putInt(-(0x1BADB002 + flags));
        return b.array();
    }

    static byte[] mbHeaderAout(int flags, long headerAddr, long loadAddr, long loadEnd, long bssEnd, long entry) {
        ByteBuffer b = le(32);
        b.putInt(0x1BADB002).putInt(flags).putInt(-(0x1BADB002 + flags));
        b.putInt((int) headerAddr).putInt((int) loadAddr).putInt((int) loadEnd).putInt((int) bssEnd).putInt((int) entry);
        return b.array();
    }

    /** An ELF32 i386 executable with a multiboot header (flags) at MB_OFFSET and the given segments. */
    static byte[] elf(long entry, int mbFlags, List<Seg> segs) {
        return elf(entry, mbFlags, segs, 1, 3);
    }

    static byte[] elf(long entry, int mbFlags, List<Seg> segs, int elfClass, int machine) {
        int total = DATA_OFFSET + segs.stream().mapToInt(s -> s.data().length).sum();
        ByteBuffer b = le(total);
        b.put(new byte[] {0x7f, 'E', 'L', 'F', (byte) elfClass, 1, 1});
        b.position(16);
        b.putShort((short) 2).putShort((short) machine).putInt(1).putInt((int) entry).putInt(52).putInt(0).putInt(0);
        b.putShort((short) 52).putShort((short) 32).putShort((short) segs.size());
        b.putShort((short) 40).putShort((short) 0).putShort((short) 0);
        int off = DATA_OFFSET;
        for (int i = 0; i < segs.size(); i++) {
            Seg s = segs.get(i);
            b.position(52 + 32 * i);
            b.putInt(1).putInt(off).putInt((int) s.vaddr()).putInt((int) s.paddr()).putInt(s.data().length)
                    .putInt((int) s.memSize()).putInt(7).putInt(0x1000);
            b.put(off, s.data());
            off += s.data().length;
        }
        b.put(MB_OFFSET, mbHeader(mbFlags));
        return b.array();
    }

    static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    static byte[] filled(int n, int value) {
        byte[] a = new byte[n];
        java.util.Arrays.fill(a, (byte) value);
        return a;
    }
}
