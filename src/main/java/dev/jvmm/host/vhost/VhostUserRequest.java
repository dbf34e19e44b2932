package dev.jvmm.host.vhost;

/**
 * The front-end requests this front end sends, with their codes and what the back end answers.
 * Only GET_* requests have a reply of their own; the others are answered only when REPLY_ACK is
 * negotiated and NEED_REPLY is set, with a u64 that is 0 for success.
 */
public enum VhostUserRequest {
    GET_FEATURES(1, Reply.U64),
    SET_FEATURES(2, Reply.NONE),
    SET_OWNER(3, Reply.NONE),
    /** Deprecated by the specification; back ends treat it as "disable all rings" at most. */
    RESET_OWNER(4, Reply.NONE),
    SET_MEM_TABLE(5, Reply.NONE),
    SET_VRING_NUM(8, Reply.NONE),
    SET_VRING_ADDR(9, Reply.NONE),
    SET_VRING_BASE(10, Reply.NONE),
    GET_VRING_BASE(11, Reply.VRING_STATE),
    SET_VRING_KICK(12, Reply.NONE),
    SET_VRING_CALL(13, Reply.NONE),
    SET_VRING_ERR(14, Reply.NONE),
    GET_PROTOCOL_FEATURES(15, Reply.U64),
    SET_PROTOCOL_FEATURES(16, Reply.NONE),
    GET_QUEUE_NUM(17, Reply.U64),
    SET_VRING_ENABLE(18, Reply.NONE),
    GET_CONFIG(24, Reply.CONFIG);

    /** The payload a reply carries. */
    public enum Reply {
        NONE, U64, VRING_STATE,
        /** The request's config header and as many bytes as asked for (or an empty payload: refused). */
        CONFIG
    }

    private final int code;
    private final Reply reply;

    VhostUserRequest(int code, Reply reply) {
        this.code = code;
        this.reply = reply;
    }

    public int code() {
        return code;
    }

    public Reply reply() {
        return reply;
    }

    /** The request with this code, or null for one this front end never sends. */
    public static VhostUserRequest of(int code) {
        for (VhostUserRequest r : values()) {
            if (r.code == code) return r;
        }
        return null;
    }
}
