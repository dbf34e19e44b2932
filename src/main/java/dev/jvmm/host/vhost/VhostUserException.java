package dev.jvmm.host.vhost;

import java.io.IOException;

/** A vhost-user request that failed; the message is one line naming the back end and the request. */
public class VhostUserException extends IOException {
    public enum Kind {
        /** No (complete) reply within the timeout. */
        TIMEOUT,
        /** The back end closed the connection, or it was already broken by an earlier failure. */
        CLOSED,
        /** The back end's reply broke the protocol (wrong request, flags or size, unexpected descriptors). */
        PROTOCOL,
        /** The back end answered with a failure (a non-zero REPLY_ACK, an empty GET_CONFIG). */
        REFUSED,
        /** Connecting, or a local system call, failed. */
        IO
    }

    private final Kind kind;

    public VhostUserException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public VhostUserException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
