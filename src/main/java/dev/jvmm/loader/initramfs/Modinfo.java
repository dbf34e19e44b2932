package dev.jvmm.loader.initramfs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code .modinfo} section of a kernel module (an ELF64 relocatable object): NUL-terminated
 * "key=value" strings (license, depends, alias, vermagic, name, ...). Keys may repeat (alias).
 */
public final class Modinfo {
    private final Map<String, List<String>> entries;

    private Modinfo(Map<String, List<String>> entries) {
        this.entries = entries;
    }

    static final int EI_CLASS = 4, EI_DATA = 5, ELFCLASS64 = 2, ELFDATA2LSB = 1;
    static final int SHN_XINDEX = 0xffff;
    static final int SH_ENTRY_MIN = 0x40;

    /** Parses the .modinfo section of the module ELF {@code elf} (read from {@code file}, for messages). */
    public static Modinfo parse(Path file, byte[] elf) throws InitramfsException {
        if (elf.length < 0x40 || elf[0] != 0x7f || elf[1] != 'E' || elf[2] != 'L' || elf[3] != 'F') {
            throw new InitramfsException(file + ": not an ELF file, so not a kernel module");
        }
        if (elf[EI_CLASS] != ELFCLASS64 || elf[EI_DATA] != ELFDATA2LSB) {
            throw new InitramfsException(file + ": not a 64-bit little-endian ELF: not an x86-64 kernel module");
        }
        ByteBuffer b = ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN);
        long shoff = b.getLong(0x28);
        int shentsize = b.getShort(0x3A) & 0xffff;
        long shnum = b.getShort(0x3C) & 0xffff;
        int shstrndx = b.getShort(0x3E) & 0xffff;
        if (shoff <= 0 || shentsize < SH_ENTRY_MIN || shoff > elf.length) {
            throw new InitramfsException(file + ": ELF section header table missing or out of the file");
        }
        if (shoff + SH_ENTRY_MIN > elf.length) throw new InitramfsException(file + ": ELF section header table truncated");
        // extended numbering: past 0xff00 sections the real counts are in section 0
        if (shnum == 0) shnum = b.getLong((int) shoff + 0x20);
        if (shstrndx == SHN_XINDEX) shstrndx = b.getInt((int) shoff + 0x28);
        if (shnum < 0 || shnum > (elf.length - shoff) / shentsize) {
            throw new InitramfsException(file + ": ELF section header table (" + shnum + " entries) runs past the end of the file");
        }
        if (shstrndx <= 0 || shstrndx >= shnum) throw new InitramfsException(file + ": ELF has no section name table");
        int[] names = section(file, b, shoff, shentsize, shstrndx);
        for (int i = 1; i < shnum; i++) {
            int hdr = (int) (shoff + (long) i * shentsize);
            int nameOff = b.getInt(hdr);
            if (".modinfo".equals(cString(elf, names[0], names[1], nameOff))) {
                int[] s = section(file, b, shoff, shentsize, i);
                return new Modinfo(entries(elf, s[0], s[1]));
            }
        }
        throw new InitramfsException(file + ": no .modinfo section: not a kernel module");
    }

    /** {offset, size} of section {@code index}, checked to lie inside the file. */
    private static int[] section(Path file, ByteBuffer b, long shoff, int shentsize, int index) throws InitramfsException {
        int hdr = (int) (shoff + (long) index * shentsize);
        long offset = b.getLong(hdr + 0x18), size = b.getLong(hdr + 0x20);
        if (offset < 0 || size < 0 || offset > b.capacity() || size > b.capacity() - offset) {
            throw new InitramfsException(file + ": ELF section " + index + " lies outside the file");
        }
        return new int[] {(int) offset, (int) size};
    }

    /** The NUL-terminated string at {@code at} of a string table; null if out of it or unterminated. */
    private static String cString(byte[] elf, int tab, int size, int at) {
        if (at < 0 || at >= size) return null;
        for (int i = tab + at; i < tab + size; i++) {
            if (elf[i] == 0) return new String(elf, tab + at, i - tab - at, StandardCharsets.ISO_8859_1);
        }
        return null;
    }

    private static Map<String, List<String>> entries(byte[] elf, int off, int size) {
        Map<String, List<String>> map = new LinkedHashMap<>();
        int i = off, end = off + size;
        while (i < end) {
            int j = i;
            while (j < end && elf[j] != 0) j++;
            if (j > i) {
                // the section is padded with NULs between strings; text without '=' carries nothing
                String s = new String(elf, i, j - i, StandardCharsets.ISO_8859_1);
                int eq = s.indexOf('=');
                if (eq > 0) map.computeIfAbsent(s.substring(0, eq), k -> new ArrayList<>()).add(s.substring(eq + 1));
            }
            i = j + 1;
        }
        return map;
    }

    /** The values of {@code key}, in order; empty if none. */
    public List<String> values(String key) {
        return entries.getOrDefault(key, List.of());
    }

    /** The first value of {@code key}, or null. */
    public String value(String key) {
        List<String> v = entries.get(key);
        return v == null || v.isEmpty() ? null : v.getFirst();
    }

    /** The modules this one needs (the "depends=" list, comma-separated, canonical names). */
    public List<String> depends() {
        List<String> out = new ArrayList<>();
        for (String v : values("depends")) {
            for (String d : v.split(",")) {
                if (!d.isBlank()) out.add(KernelModule.canonical(d.strip()));
            }
        }
        return out;
    }
}
