package dev.jvmm.loader.initramfs;

import io.airlift.compress.zstd.ZstdOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

/** Small kernel module files for the tests: ELF64 relocatable objects with a .modinfo section and nothing else. */
final class TestModules {
    private TestModules() { }

    /** An ELF64 x86-64 ET_REL whose sections are null, .modinfo (the given key=value strings) and .shstrtab. */
    static byte[] elf(String... modinfo) {
        ByteArrayOutputStream info = new ByteArrayOutputStream();
        for (String s : modinfo) {
            info.writeBytes(s.getBytes(StandardCharsets.UTF_8));
            info.write(0);
        }
        byte[] infoBytes = info.toByteArray();
        byte[] shstr = "\0.modinfo\0.shstrtab\0".getBytes(StandardCharsets.US_ASCII);
        int infoOff = 64, strOff = infoOff + infoBytes.length, shoff = (strOff + shstr.length + 7) & ~7;
        ByteBuffer b = ByteBuffer.allocate(shoff + 3 * 64).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0});
        b.putShort(16, (short) 1).putShort(18, (short) 62).putInt(20, 1);   // ET_REL, EM_X86_64, EV_CURRENT
        b.putLong(0x28, shoff).putShort(0x34, (short) 64).putShort(0x3A, (short) 64).putShort(0x3C, (short) 3)
                .putShort(0x3E, (short) 2);
        b.put(infoOff, infoBytes).put(strOff, shstr);
        section(b, shoff + 64, 1, 1, infoOff, infoBytes.length);      // .modinfo: PROGBITS
        section(b, shoff + 128, 10, 3, strOff, shstr.length);         // .shstrtab: STRTAB
        return b.array();
    }

    private static void section(ByteBuffer b, int at, int name, int type, long offset, long size) {
        b.putInt(at, name).putInt(at + 4, type).putLong(at + 0x18, offset).putLong(at + 0x20, size).putLong(at + 0x30, 1);
    }

    /** A module "NAME" depending on deps, as the file dir/relPath (compressed by its suffix). */
    static Path write(Path dir, String relPath, String name, String... deps) throws IOException {
        return writeBytes(dir, relPath, elf("license=GPL", "depends=" + String.join(",", deps), "name=" + name,
                "vermagic=6.1.0-test SMP mod_unload"));
    }

    static Path writeBytes(Path dir, String relPath, byte[] elf) throws IOException {
        Path p = dir.resolve(relPath);
        Files.createDirectories(p.getParent());
        Files.write(p, compress(relPath, elf));
        return p;
    }

    static byte[] compress(String name, byte[] data) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream os = name.endsWith(".xz") ? new XZOutputStream(out, new LZMA2Options())
                : name.endsWith(".zst") ? new ZstdOutputStream(out)
                : name.endsWith(".gz") ? new GZIPOutputStream(out) : out) {
            os.write(data);
        }
        return out.toByteArray();
    }
}
