package dev.jvmm.vmm;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * What a restore needs before it can make the VM, as the snapshot's {@code restore} section: the
 * VM's shape (vCPUs, RAM, ACPI, PIT), guest RAM's layout in the memory file, and the virtio devices
 * in slot order. The {@code meta} section has the same facts as JSON, for people and tools; a
 * restore reads this one, because jackson-jr's first parse took 10-14 ms of the main thread at every
 * restore (measured 2026-12-03), where this takes well under one. Little-endian:
 *
 * <pre>
 *   u32 vCPUs, u64 RAM bytes, u8 ACPI (0 or 1), str PIT mode ("kernel" or "user")
 *   u32 region count, per region: u64 guest-physical address, u64 size, u64 offset in the memory file
 *   u32 device count, per device: str slot, str kind, str image ("" for none), u8 read-only (0 or 1)
 * </pre>
 *
 * where str is a u16 length and that many bytes of UTF-8. {@link #decode} checks the bytes as
 * untrusted (counts, lengths, flags, the end), though the state file's checksum already passed; the
 * values themselves are checked where they are used, as the meta section's were.
 */
public record RestoreConfig(int cpus, long memBytes, boolean acpi, String pit, List<long[]> regions, List<Device> devices) {
    /** The section's name in the state file. */
    public static final String SECTION = "restore";
    /** More regions or devices than any VM has: a count above it is a malformed section. */
    static final int MAX_ENTRIES = 1024;

    /** A virtio device as saved: its slot's name, its kind ("virtio-blk", ...), a disk's image and ro. */
    public record Device(String slot, String kind, String image, boolean readOnly) { }

    public RestoreConfig {
        regions = List.copyOf(regions);
        devices = List.copyOf(devices);
    }

    public byte[] encode() {
        int size = 4 + 8 + 1 + str(pit) + 4 + regions.size() * 24 + 4;
        for (Device d : devices) size += str(d.slot()) + str(d.kind()) + str(d.image()) + 1;
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(cpus).putLong(memBytes).put((byte) (acpi ? 1 : 0));
        put(b, pit);
        b.putInt(regions.size());
        for (long[] r : regions) b.putLong(r[0]).putLong(r[1]).putLong(r[2]);
        b.putInt(devices.size());
        for (Device d : devices) {
            put(b, d.slot());
            put(b, d.kind());
            put(b, d.image());
            b.put((byte) (d.readOnly() ? 1 : 0));
        }
        return b.array();
    }

    /**
     * The section's bytes read back.
     * @throws IllegalArgumentException with a one-line reason when they are not a well-formed section
     */
    public static RestoreConfig decode(byte[] bytes) {
        if (bytes == null) throw new IllegalArgumentException("it has no " + SECTION + " section");
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        try {
            int cpus = b.getInt();
            long mem = b.getLong();
            boolean acpi = flag(b, "ACPI");
            String pit = string(b);
            int n = count(b, "regions");
            List<long[]> regions = new ArrayList<>(n);
            for (int i = 0; i < n; i++) regions.add(new long[] {b.getLong(), b.getLong(), b.getLong()});
            int m = count(b, "devices");
            List<Device> devices = new ArrayList<>(m);
            for (int i = 0; i < m; i++) devices.add(new Device(string(b), string(b), string(b), flag(b, "read-only")));
            if (b.hasRemaining()) throw new IllegalArgumentException(b.remaining() + " bytes after its end");
            return new RestoreConfig(cpus, mem, acpi, pit, regions, devices);
        } catch (BufferUnderflowException e) {
            throw new IllegalArgumentException("it ends early (" + bytes.length + " bytes)");
        }
    }

    private static int str(String s) {
        return 2 + s.getBytes(StandardCharsets.UTF_8).length;
    }

    private static void put(ByteBuffer b, String s) {
        byte[] u = s.getBytes(StandardCharsets.UTF_8);
        if (u.length > 0xffff) throw new IllegalArgumentException("a string of " + u.length + " bytes: more than 65535");
        b.putShort((short) u.length).put(u);
    }

    private static String string(ByteBuffer b) {
        int n = Short.toUnsignedInt(b.getShort());
        if (n > b.remaining()) throw new BufferUnderflowException();
        ByteBuffer s = b.slice(b.position(), n);
        b.position(b.position() + n);
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(s).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException("a string that is not UTF-8");
        }
    }

    private static boolean flag(ByteBuffer b, String what) {
        byte v = b.get();
        if (v != 0 && v != 1) throw new IllegalArgumentException("its " + what + " flag is " + v + ", not 0 or 1");
        return v == 1;
    }

    private static int count(ByteBuffer b, String what) {
        int n = b.getInt();
        if (n < 0 || n > MAX_ENTRIES) throw new IllegalArgumentException(Integer.toUnsignedString(n) + " " + what + ": at most " + MAX_ENTRIES);
        return n;
    }
}
