package dev.jvmm.gdb;

/**
 * Splits the byte stream from a debugger into protocol events: packets (checksum verified, escapes
 * and run-length encoding undone), acknowledgements, and the out-of-band interrupt byte 0x03 outside
 * a packet. A packet longer than its bound is an {@link Listener#oversized} event, not a growing
 * buffer: the decoder never holds more than {@code max} bytes. Anything malformed becomes an event;
 * nothing throws.
 */
public final class RspDecoder {
    public interface Listener {
        /** A packet whose checksum matched: its data as sent (escapes undone). */
        void packet(byte[] data);

        /** A packet with a wrong checksum or malformed escapes; the stub asks for it again ('-'). */
        void badPacket(String why);

        /** '+' or '-' from the debugger. */
        default void ack(boolean positive) { }

        /** Ctrl-C: 0x03 outside a packet. */
        void interrupt();

        /** A packet longer than the bound: the connection cannot be trusted to resynchronise. */
        void oversized();
    }

    private enum State { IDLE, DATA, CS1, CS2 }

    private final int max;
    private final byte[] buf;
    private final Listener listener;
    private State state = State.IDLE;
    private int len;
    private int cs;
    private boolean overflow;

    /** @param max the longest packet (raw, between '$' and '#') accepted */
    public RspDecoder(int max, Listener listener) {
        this.max = max;
        this.buf = new byte[max];
        this.listener = listener;
    }

    /** Whether the decoder is inside a packet (a disconnect now cuts one short). */
    public boolean inPacket() {
        return state != State.IDLE;
    }

    public void feed(byte[] data, int off, int n) {
        for (int i = off; i < off + n; i++) feed(data[i] & 0xff);
    }

    public void feed(int b) {
        switch (state) {
            case IDLE -> {
                if (b == '$') {
                    state = State.DATA;
                    len = 0;
                    overflow = false;
                } else if (b == 0x03) {
                    listener.interrupt();
                } else if (b == '+' || b == '-') {
                    listener.ack(b == '+');
                }
                // anything else between packets is noise and ignored, as gdbserver does
            }
            case DATA -> {
                if (b == '#') {
                    state = State.CS1;
                } else if (b == '$') {
                    // a new packet start inside a packet: the sender gave up on the old one
                    len = 0;
                    overflow = false;
                } else if (len < max) {
                    buf[len++] = (byte) b;
                } else {
                    overflow = true;
                    state = State.IDLE;
                    listener.oversized();
                }
            }
            case CS1 -> {
                int d = Rsp.digit(b);
                if (d < 0) {
                    state = State.IDLE;
                    listener.badPacket("bad checksum digit");
                } else {
                    cs = d << 4;
                    state = State.CS2;
                }
            }
            case CS2 -> {
                state = State.IDLE;
                int d = Rsp.digit(b);
                if (d < 0) {
                    listener.badPacket("bad checksum digit");
                    return;
                }
                cs |= d;
                int sum = Rsp.checksum(buf, 0, len);
                if (sum != cs) {
                    listener.badPacket(String.format("checksum 0x%02x, expected 0x%02x", cs, sum));
                    return;
                }
                byte[] data;
                try {
                    data = Rsp.unescape(buf, 0, len, max);
                } catch (Rsp.RspException e) {
                    listener.badPacket(e.getMessage());
                    return;
                }
                listener.packet(data);
            }
        }
    }

    /** Whether the last packet overflowed (for tests). */
    boolean overflowed() {
        return overflow;
    }
}
