package dev.jvmm.device.virtio;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * virtio-fs (device id 26, virtio 1.2 section 5.11): what the device looks like to the driver. Its
 * queues are served by a FUSE server in another process (virtiofsd over vhost-user), so this is only
 * the configuration space and the queue layout: queue 0 is the high-priority queue (FORGET,
 * INTERRUPT), queues 1.. the request queues; jvmm offers one request queue.
 *
 * <p>Configuration space: {@code u8 tag[36]} (UTF-8, NUL-padded; the name the guest mounts:
 * {@code mount -t virtiofs TAG DIR}) and {@code le32 num_request_queues}. The notification queue and
 * {@code notify_buf_size} (VIRTIO_FS_F_NOTIFICATION) are not offered.
 */
public final class VirtioFs {
    private VirtioFs() { }

    public static final int DEVICE_ID = 26;
    public static final int TAG_BYTES = 36;
    public static final int CONFIG_BYTES = TAG_BYTES + 4;
    public static final int HIPRIO_QUEUE = 0;
    public static final int REQUEST_QUEUES = 1;
    public static final int QUEUE_COUNT = 1 + REQUEST_QUEUES;
    /**
     * Largest queue size offered: 1024 is libvhost-user's VIRTQUEUE_MAX_SIZE (the C virtiofsd) and what
     * QEMU allows a vhost-user-fs queue; the Rust virtiofsd accepts it too.
     */
    public static final int QUEUE_SIZE = 1024;

    /** Why {@code tag} cannot name a virtio-fs device, or null when it can. */
    public static String checkTag(String tag) {
        if (tag == null || tag.isEmpty()) return "the tag is empty";
        int bytes = tag.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > TAG_BYTES) return "tag '" + tag + "' is " + bytes + " bytes of UTF-8; virtio-fs allows at most " + TAG_BYTES;
        // the guest reads the tag up to the first NUL; control characters cannot be typed into mount(8)
        if (tag.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) return "tag '" + tag.replaceAll("\\p{Cntrl}", "?") + "' contains a control character";
        return null;
    }

    /** The configuration space for {@code tag} (which {@link #checkTag} must accept). */
    public static byte[] config(String tag) {
        String bad = checkTag(tag);
        if (bad != null) throw new IllegalArgumentException(bad);
        ByteBuffer b = ByteBuffer.allocate(CONFIG_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.put(tag.getBytes(StandardCharsets.UTF_8)); // the rest of the 36 bytes stays NUL
        b.putInt(TAG_BYTES, REQUEST_QUEUES);
        return b.array();
    }
}
