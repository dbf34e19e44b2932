package dev.jvmm.vmm;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * A snapshot's state file: named sections of bytes (each vCPU's KVM state, the in-kernel irqchip,
 * PIT and clock, the configuration), versioned and checksummed. Little-endian throughout:
 *
 * <pre>
 *   "JVMMSNAP"                 8 bytes, the magic
 *   u32 format version         {@link #VERSION}
 *   u64 file length            every byte, the checksum included: a truncated file says so
 *   u32 section count
 *   per section:  u16 name length, name (UTF-8), u32 data length, data
 *   u32 CRC-32C of all the bytes before it
 * </pre>
 *
 * Reading refuses, with one line each ({@link SnapshotException}), a file that is not a state file,
 * one of another format version, a truncated one, one with bytes after its end, and one whose
 * checksum does not match (corruption). The checksum is a CRC-32C, as ext4 and btrfs keep their
 * metadata's: it catches every burst of up to 32 wrong bits and any other corruption but one in 2^32,
 * and costs a cold JVM about a millisecond where SHA-256 (format version 1) cost it 20-25 ms, most of
 * it setting up the security providers, on every restore. Guarding against a forged file is not its
 * job: a snapshot is the user's own, and every value in it is checked when it is loaded anyway.
 */
public final class SnapshotFile {
    private SnapshotFile() { }

    static final byte[] MAGIC = "JVMMSNAP".getBytes(StandardCharsets.US_ASCII);
    /**
     * The format this jvmm writes and the only one it reads. 3: the {@code restore} section
     * ({@link RestoreConfig}), which a restore reads instead of parsing the meta JSON; 2: CRC-32C in
     * place of SHA-256; 1: the first.
     */
    public static final int VERSION = 3;
    static final int HEADER_BYTES = 8 + 4 + 8 + 4;
    static final int CHECKSUM_BYTES = 4;
    /** Snapshot files hold guest memory and registers: mode 0600. */
    static final java.nio.file.attribute.FileAttribute<?> OWNER_ONLY = java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
            java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
    /** The largest state file read: far beyond what any VM's state takes (about 10 KiB per vCPU). */
    public static final long MAX_BYTES = 256L << 20;

    /** A state file jvmm refuses; the message is one line naming the file and why. */
    public static final class SnapshotException extends Exception {
        public SnapshotException(String message) {
            super(message);
        }
    }

    /** The file's bytes for {@code sections}, in their order. */
    public static byte[] encode(Map<String, byte[]> sections) {
        long size = HEADER_BYTES + CHECKSUM_BYTES;
        for (Map.Entry<String, byte[]> e : sections.entrySet()) {
            byte[] name = e.getKey().getBytes(StandardCharsets.UTF_8);
            if (name.length == 0 || name.length > 0xffff) throw new IllegalArgumentException("bad section name '" + e.getKey() + "'");
            size += 2 + name.length + 4L + e.getValue().length;
        }
        if (size > MAX_BYTES) throw new IllegalArgumentException("the state is " + size + " bytes, more than " + MAX_BYTES);
        ByteBuffer b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).putInt(VERSION).putLong(size).putInt(sections.size());
        for (Map.Entry<String, byte[]> e : sections.entrySet()) {
            byte[] name = e.getKey().getBytes(StandardCharsets.UTF_8);
            b.putShort((short) name.length).put(name).putInt(e.getValue().length).put(e.getValue());
        }
        b.putInt(crc32c(b.array(), b.position()));
        return b.array();
    }

    /**
     * The sections in {@code file}, in their order.
     * @param what names the file in messages
     */
    public static Map<String, byte[]> decode(byte[] file, String what) throws SnapshotException {
        if (file.length < MAGIC.length || !Arrays.equals(file, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            throw new SnapshotException(what + " is not a jvmm snapshot state file");
        }
        if (file.length < HEADER_BYTES + CHECKSUM_BYTES) {
            throw new SnapshotException(what + " is truncated: " + file.length + " bytes, not even a header and checksum");
        }
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        b.position(MAGIC.length);
        int version = b.getInt();
        if (version != VERSION) {
            throw new SnapshotException(what + " has snapshot format version " + Integer.toUnsignedString(version)
                    + "; this jvmm reads version " + VERSION + " only (take the snapshot again with this jvmm)");
        }
        long declared = b.getLong();
        if (declared > file.length) throw new SnapshotException(what + " is truncated: " + file.length + " of its " + declared + " bytes");
        if (declared < file.length) {
            throw new SnapshotException(what + " is corrupt: " + (file.length - declared) + " bytes after its end (" + declared + " bytes)");
        }
        if (crc32c(file, file.length - CHECKSUM_BYTES) != b.getInt(file.length - CHECKSUM_BYTES)) {
            throw new SnapshotException(what + " is corrupt: its CRC-32C checksum does not match its contents");
        }
        int count = b.getInt();
        int end = file.length - CHECKSUM_BYTES;
        Map<String, byte[]> sections = new LinkedHashMap<>();
        for (int i = 0; i < count; i++) {
            // the checksum matched, so only a writer's bug gets here; still bounded, never an exception
            if (end - b.position() < 2) throw new SnapshotException(what + " is corrupt: section " + i + " has no header");
            int nameLength = Short.toUnsignedInt(b.getShort());
            if (end - b.position() < nameLength + 4L) throw new SnapshotException(what + " is corrupt: section " + i + "'s name runs past the end");
            byte[] name = new byte[nameLength];
            b.get(name);
            long length = Integer.toUnsignedLong(b.getInt());
            if (end - b.position() < length) throw new SnapshotException(what + " is corrupt: section " + i + " runs past the end");
            byte[] data = new byte[(int) length];
            b.get(data);
            if (sections.put(new String(name, StandardCharsets.UTF_8), data) != null) {
                throw new SnapshotException(what + " is corrupt: section " + new String(name, StandardCharsets.UTF_8) + " appears twice");
            }
        }
        if (b.position() != end) throw new SnapshotException(what + " is corrupt: " + (end - b.position()) + " bytes after its last section");
        return sections;
    }

    /** Writes the state file {@code file} whole or not at all (a temporary file renamed over it), flushed to the disk. */
    public static void write(Path file, Map<String, byte[]> sections) throws IOException {
        byte[] bytes = encode(sections);
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        try (FileChannel ch = FileChannel.open(tmp, java.util.Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), OWNER_ONLY)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) ch.write(b);
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Reads and checks the state file {@code file}; a missing or unreadable file is a {@link SnapshotException} too. */
    public static Map<String, byte[]> read(Path file) throws SnapshotException {
        byte[] bytes;
        try (InputStream in = Files.newInputStream(file)) {
            bytes = in.readNBytes((int) MAX_BYTES + 1);
        } catch (IOException e) {
            throw new SnapshotException("cannot read the snapshot state file " + file + ": " + e.getMessage());
        }
        if (bytes.length > MAX_BYTES) throw new SnapshotException(file + " is larger than " + MAX_BYTES + " bytes: not a jvmm snapshot state file");
        return decode(bytes, file.toString());
    }

    private static int crc32c(byte[] data, int length) {
        CRC32C c = new CRC32C();
        c.update(data, 0, length);
        return (int) c.getValue();
    }
}
