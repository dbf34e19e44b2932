package dev.jvmm.device.virtio;

import java.security.SecureRandom;

/**
 * virtio-rng (entropy device, id 4): one request queue; each chain's writable buffers are filled
 * with bytes from {@link SecureRandom}, at most {@link #MAX_PER_REQUEST} per request.
 */
public final class VirtioRng extends AbstractVirtioDevice {
    public static final int DEVICE_ID = 4;
    public static final int MAX_PER_REQUEST = 64 * 1024;
    public static final int QUEUE_SIZE = 256;

    private final SecureRandom random;

    public VirtioRng() {
        this(new SecureRandom());
    }

    public VirtioRng(SecureRandom random) {
        super(DEVICE_ID, 0, 1, QUEUE_SIZE);
        this.random = random;
    }


    @Override
    public long deviceFeatures() {
        return 0;
    }



    /** Nothing of its own: every request is answered in the turn that takes it. */
    @Override
    public String snapshotRefusal() {
        return null;
    }

    @Override
    public synchronized void notify(int queueIndex) throws VirtqueueException {
        serve(queueIndex, chain -> {
            byte[] b = new byte[(int) Math.min(chain.writableLength(), MAX_PER_REQUEST)];
            random.nextBytes(b);
            int n = chain.write(b);
            stats.bytes.addAndGet(n);
            return n;
        });
    }
}
