package dev.jvmm.sys;

import java.io.IOException;

/**
 * A UNIX socket transfer that did not complete: the message is one line naming the socket, and
 * {@link #reason()} tells a caller that needs to react differently to a peer that went away, one that
 * stopped answering, and everything else.
 */
public class UnixSocketException extends IOException {
    public enum Reason {
        /** The deadline passed before the whole transfer was done. */
        TIMED_OUT,
        /** The peer closed its end (EOF on receive, EPIPE or ECONNRESET). */
        PEER_CLOSED,
        /** The peer sent more ancillary data than fits (MSG_CTRUNC): some descriptors were lost. */
        TRUNCATED,
        /** A system call failed for another reason. */
        FAILED
    }

    private final Reason reason;

    public UnixSocketException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
