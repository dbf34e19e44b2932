package dev.jvmm.host.vhost;

import java.lang.foreign.MemoryLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import static dev.jvmm.host.vhost.VhostUserProtocol.HEADER_BYTES;
import static dev.jvmm.host.vhost.VhostUserProtocol.VHOST_MEMORY;
import static dev.jvmm.host.vhost.VhostUserProtocol.VHOST_MEMORY_REGION;
import static dev.jvmm.host.vhost.VhostUserProtocol.VHOST_USER_CONFIG;
import static dev.jvmm.host.vhost.VhostUserProtocol.VHOST_VRING_ADDR;
import static dev.jvmm.host.vhost.VhostUserProtocol.VHOST_VRING_STATE;

/**
 * Encoding and decoding of vhost-user messages and payloads, both directions (the front end encodes
 * requests and decodes replies; a back end, such as the tests' fake one, does the opposite). Offsets come
 * from the layouts of {@link VhostUserProtocol}; the decoders check the payload size first.
 */
public final class VhostUserMessage {
    private VhostUserMessage() { }

    /** A decoded header; {@code size} is the peer's claim, to be checked before anything is read. */
    public record Header(int request, int flags, int size) {
        public boolean isReply() {
            return (flags & VhostUserProtocol.FLAG_REPLY) != 0;
        }

        public int version() {
            return flags & VhostUserProtocol.VERSION_MASK;
        }
    }

    /** SET_VRING_NUM/BASE/ENABLE and GET_VRING_BASE payload. */
    public record VringState(int index, int num) { }

    /** A GET_CONFIG payload: the config header and its bytes. */
    public record Config(int offset, int flags, byte[] data) { }

    public static final int U64_BYTES = 8;
    public static final int VRING_STATE_BYTES = (int) VHOST_VRING_STATE.byteSize();
    public static final int VRING_ADDR_BYTES = (int) VHOST_VRING_ADDR.byteSize();
    public static final int MEMORY_HEADER_BYTES = (int) VHOST_MEMORY.byteSize();
    public static final int MEMORY_REGION_BYTES = (int) VHOST_MEMORY_REGION.byteSize();
    public static final int CONFIG_HEADER_BYTES = (int) VHOST_USER_CONFIG.byteSize();

    private static int off(MemoryLayout layout, String field) {
        return (int) layout.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    private static final int STATE_INDEX = off(VHOST_VRING_STATE, "index"), STATE_NUM = off(VHOST_VRING_STATE, "num");
    private static final int ADDR_INDEX = off(VHOST_VRING_ADDR, "index"), ADDR_FLAGS = off(VHOST_VRING_ADDR, "flags"),
            ADDR_DESC = off(VHOST_VRING_ADDR, "desc_user_addr"), ADDR_USED = off(VHOST_VRING_ADDR, "used_user_addr"),
            ADDR_AVAIL = off(VHOST_VRING_ADDR, "avail_user_addr"), ADDR_LOG = off(VHOST_VRING_ADDR, "log_guest_addr");
    private static final int MEM_NREGIONS = off(VHOST_MEMORY, "nregions");
    private static final int REGION_GPA = off(VHOST_MEMORY_REGION, "guest_phys_addr"),
            REGION_SIZE = off(VHOST_MEMORY_REGION, "memory_size"), REGION_UADDR = off(VHOST_MEMORY_REGION, "userspace_addr"),
            REGION_OFFSET = off(VHOST_MEMORY_REGION, "mmap_offset");
    private static final int CONFIG_OFFSET = off(VHOST_USER_CONFIG, "offset"), CONFIG_SIZE = off(VHOST_USER_CONFIG, "size"),
            CONFIG_FLAGS = off(VHOST_USER_CONFIG, "flags");

    private static ByteBuffer buffer(byte[] b) {
        return ByteBuffer.wrap(b).order(ByteOrder.nativeOrder());
    }

    // ---- whole messages ----

    /** Header and payload, ready to send. */
    public static byte[] encode(int request, int flags, byte[] payload) {
        byte[] out = new byte[HEADER_BYTES + payload.length];
        buffer(out).putInt(0, request).putInt(4, flags).putInt(8, payload.length);
        System.arraycopy(payload, 0, out, HEADER_BYTES, payload.length);
        return out;
    }

    public static Header decodeHeader(byte[] header) {
        if (header.length != HEADER_BYTES) throw new IllegalArgumentException("a header is " + HEADER_BYTES + " bytes, not " + header.length);
        ByteBuffer b = buffer(header);
        return new Header(b.getInt(0), b.getInt(4), b.getInt(8));
    }

    // ---- payloads ----

    public static byte[] u64(long value) {
        byte[] b = new byte[U64_BYTES];
        buffer(b).putLong(0, value);
        return b;
    }

    public static long u64(byte[] payload) {
        need(payload, U64_BYTES, "a u64");
        return buffer(payload).getLong(0);
    }

    public static byte[] vringState(int index, int num) {
        byte[] b = new byte[VRING_STATE_BYTES];
        buffer(b).putInt(STATE_INDEX, index).putInt(STATE_NUM, num);
        return b;
    }

    public static VringState vringState(byte[] payload) {
        need(payload, VRING_STATE_BYTES, "a vring state");
        ByteBuffer b = buffer(payload);
        return new VringState(b.getInt(STATE_INDEX), b.getInt(STATE_NUM));
    }

    public static byte[] vringAddress(VringAddress a) {
        byte[] b = new byte[VRING_ADDR_BYTES];
        buffer(b).putInt(ADDR_INDEX, a.index()).putInt(ADDR_FLAGS, a.flags()).putLong(ADDR_DESC, a.descUserAddr())
                .putLong(ADDR_USED, a.usedUserAddr()).putLong(ADDR_AVAIL, a.availUserAddr()).putLong(ADDR_LOG, a.logGuestAddr());
        return b;
    }

    public static VringAddress vringAddress(byte[] payload) {
        need(payload, VRING_ADDR_BYTES, "a vring address");
        ByteBuffer b = buffer(payload);
        return new VringAddress(b.getInt(ADDR_INDEX), b.getInt(ADDR_FLAGS), b.getLong(ADDR_DESC), b.getLong(ADDR_USED),
                b.getLong(ADDR_AVAIL), b.getLong(ADDR_LOG));
    }

    /** The memory table: a count, padding, then one region per descriptor sent with it (in the same order). */
    public static byte[] memTable(List<MemRegion> regions) {
        if (regions.isEmpty() || regions.size() > VhostUserProtocol.MAX_MEM_REGIONS) {
            throw new IllegalArgumentException(regions.size() + " memory regions; a memory table holds 1 to "
                    + VhostUserProtocol.MAX_MEM_REGIONS);
        }
        byte[] out = new byte[MEMORY_HEADER_BYTES + regions.size() * MEMORY_REGION_BYTES];
        ByteBuffer b = buffer(out);
        b.putInt(MEM_NREGIONS, regions.size());
        for (int i = 0; i < regions.size(); i++) {
            MemRegion r = regions.get(i);
            int base = MEMORY_HEADER_BYTES + i * MEMORY_REGION_BYTES;
            b.putLong(base + REGION_GPA, r.guestAddress()).putLong(base + REGION_SIZE, r.size())
                    .putLong(base + REGION_UADDR, r.userAddress()).putLong(base + REGION_OFFSET, r.mmapOffset());
        }
        return out;
    }

    /** Decodes a memory table, pairing region i with {@code fds[i]}; the counts must agree. */
    public static List<MemRegion> memTable(byte[] payload, int[] fds) {
        if (payload.length < MEMORY_HEADER_BYTES) throw new IllegalArgumentException("memory table of " + payload.length + " bytes");
        ByteBuffer b = buffer(payload);
        int n = b.getInt(MEM_NREGIONS);
        if (n < 1 || n > VhostUserProtocol.MAX_MEM_REGIONS) throw new IllegalArgumentException("memory table with " + n + " regions");
        need(payload, MEMORY_HEADER_BYTES + n * MEMORY_REGION_BYTES, "a memory table of " + n + " regions");
        if (fds.length != n) throw new IllegalArgumentException("memory table of " + n + " regions came with " + fds.length + " descriptors");
        List<MemRegion> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int base = MEMORY_HEADER_BYTES + i * MEMORY_REGION_BYTES;
            out.add(new MemRegion(b.getLong(base + REGION_GPA), b.getLong(base + REGION_SIZE), b.getLong(base + REGION_UADDR),
                    b.getLong(base + REGION_OFFSET), fds[i]));
        }
        return out;
    }

    /** A GET_CONFIG request: the header and {@code size} zero bytes the back end fills in. */
    public static byte[] configRequest(int offset, int size, int flags) {
        if (size < 0 || size > VhostUserProtocol.MAX_CONFIG_BYTES) {
            throw new IllegalArgumentException("config access of " + size + " bytes; at most " + VhostUserProtocol.MAX_CONFIG_BYTES);
        }
        byte[] b = new byte[CONFIG_HEADER_BYTES + size];
        buffer(b).putInt(CONFIG_OFFSET, offset).putInt(CONFIG_SIZE, size).putInt(CONFIG_FLAGS, flags);
        return b;
    }

    /** A config payload (request or reply); its size field must account for exactly the bytes that follow. */
    public static Config config(byte[] payload) {
        if (payload.length < CONFIG_HEADER_BYTES) throw new IllegalArgumentException("config payload of " + payload.length + " bytes");
        ByteBuffer b = buffer(payload);
        int size = b.getInt(CONFIG_SIZE);
        if (size != payload.length - CONFIG_HEADER_BYTES) {
            throw new IllegalArgumentException("config payload says " + Integer.toUnsignedString(size) + " bytes but carries "
                    + (payload.length - CONFIG_HEADER_BYTES));
        }
        byte[] data = new byte[size];
        System.arraycopy(payload, CONFIG_HEADER_BYTES, data, 0, size);
        return new Config(b.getInt(CONFIG_OFFSET), b.getInt(CONFIG_FLAGS), data);
    }

    public static byte[] config(int offset, int flags, byte[] data) {
        byte[] b = configRequest(offset, data.length, flags);
        System.arraycopy(data, 0, b, CONFIG_HEADER_BYTES, data.length);
        return b;
    }

    private static void need(byte[] payload, int bytes, String what) {
        if (payload.length != bytes) {
            throw new IllegalArgumentException(what + " is " + bytes + " bytes, not " + payload.length);
        }
    }
}
