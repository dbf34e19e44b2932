package dev.jvmm.host.vsock;

import java.nio.charset.StandardCharsets;

/**
 * The first line a host program writes on the muxer's socket, Firecracker's protocol:
 * {@code CONNECT <port>\n}, the vsock port the guest listens on in decimal (0 to 2^32 - 1). As
 * Firecracker does, the word is case-insensitive and spaces (or tabs) may surround the port; a
 * {@code \r} before the newline is taken as a space. Anything else is refused. A line is at most
 * {@link #MAX_LINE} bytes with its newline, so a client that never sends one cannot make it grow.
 */
final class ConnectCommand {
    private ConnectCommand() { }

    static final int MAX_LINE = 32;

    /** What a line said: the port, or why it is refused. */
    record Parsed(long port, String error) {
        boolean ok() {
            return error == null;
        }
    }

    /** Parses {@code line[0, len)}, the newline included. */
    static Parsed parse(byte[] line, int len) {
        if (len <= 0 || line[len - 1] != '\n') return new Parsed(-1, "no newline within " + MAX_LINE + " bytes");
        for (int i = 0; i < len; i++) {
            int b = line[i] & 0xff;
            if (b < 0x20 && b != '\t' && b != '\r' && b != '\n' || b >= 0x7f) return new Parsed(-1, "a byte 0x" + Integer.toHexString(b) + " in the line");
        }
        String text = new String(line, 0, len - 1, StandardCharsets.US_ASCII).strip();
        String[] words = text.split("[ \t\r]+");
        if (words.length != 2 || !words[0].equalsIgnoreCase("CONNECT")) {
            return new Parsed(-1, "'" + text + "' is not CONNECT <port>");
        }
        String p = words[1];
        if (!p.matches("[0-9]{1,10}")) return new Parsed(-1, "port '" + p + "' is not a decimal number");
        long port = Long.parseLong(p);
        if (port > 0xffff_ffffL) return new Parsed(-1, "port " + p + " is larger than 2^32 - 1");
        return new Parsed(port, null);
    }
}
