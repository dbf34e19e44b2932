package dev.jvmm.cli;

import dev.jvmm.sys.UnixSocket;
import dev.jvmm.sys.UnixSocketException;
import dev.jvmm.vmm.ApiRequest;
import dev.jvmm.vmm.Json;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.ByteArrayOutputStream;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code jvmm ctl}: the control socket's command-line client. */
@Command(name = "ctl", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Send one request to a running jvmm's --api-socket SOCKET and print the reply (one line of JSON)."
                + " REQUEST is info, stats, pause, resume, stop or snapshot; ARGS are KEY=VALUE (e.g. stop status=3, snapshot dir=/tmp/s,"
                + " resume advance_clock=true). A REQUEST starting with '{' is sent as it is.",
        footer = {"", "Exit status: 0 the reply was ok, 1 it was an error reply, 2 bad command line,",
                "  3 no reply (cannot connect, the connection closed, --timeout passed)."})
public final class CtlCommand implements Callable<Integer> {
    /** Exit statuses: the reply said ok; the reply was an error; no reply at all. (2 is a usage error, as everywhere.) */
    public static final int OK = 0, ERROR_REPLY = 1, NO_REPLY = 3;
    /** The longest reply read. */
    static final int MAX_REPLY = 16 << 20;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--timeout", paramLabel = "DURATION", description = "How long to wait for the socket and the reply"
            + " (default: ${DEFAULT-VALUE}).", defaultValue = "10s")
    String timeout;

    @Parameters(index = "0", paramLabel = "SOCKET", description = "The path given to jvmm run --api-socket.")
    Path socket;

    @Parameters(index = "1", paramLabel = "REQUEST", description = "info, stats, pause, resume, stop or snapshot (or a JSON object).")
    String request;

    @Parameters(index = "2..*", paramLabel = "ARGS", description = "The request's arguments, KEY=VALUE.")
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        long timeoutMs;
        String line;
        try {
            timeoutMs = Units.parseDuration(timeout).toMillis();
            line = ApiRequest.line(request, args);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        String reply;
        try (UnixSocket s = UnixSocket.connect(socket, timeoutMs)) {
            s.sendAll((line + "\n").getBytes(StandardCharsets.UTF_8), new int[0], deadline);
            reply = readLine(s, deadline);
        } catch (UnixSocketException e) {
            err.println("jvmm: " + e.getMessage());
            err.flush();
            return NO_REPLY;
        }
        if (reply == null) {
            err.println("jvmm: " + socket + " closed the connection without a reply");
            err.flush();
            return NO_REPLY;
        }
        out.println(reply);
        out.flush();
        try {
            Map<String, Object> m = Json.object(reply);
            if (Boolean.TRUE.equals(m.get("ok"))) return OK;
            err.println("jvmm: " + m.get("error") + ": " + m.get("message"));
            err.flush();
            return ERROR_REPLY;
        } catch (IllegalArgumentException e) {
            err.println("jvmm: the reply is not a JSON object: " + e.getMessage());
            err.flush();
            return ERROR_REPLY;
        }
    }

    /** One line from {@code s} (without its newline), or null at end of stream before any byte. */
    private static String readLine(UnixSocket s, long deadline) throws UnixSocketException {
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(64 * 1024);
            while (true) {
                s.awaitReadable(deadline);
                UnixSocket.Received r;
                try {
                    r = s.receive(buf, buf.byteSize(), 0);
                } catch (UnixSocketException e) {
                    if (e.reason() == UnixSocketException.Reason.PEER_CLOSED && got.size() > 0) break; // reset after the reply
                    throw e;
                }
                if (r.bytes() == -1) continue;
                if (r.bytes() == 0) break;
                byte[] b = buf.asSlice(0, r.bytes()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
                for (int i = 0; i < b.length; i++) {
                    if (b[i] == '\n') {
                        got.write(b, 0, i);
                        return got.toString(StandardCharsets.UTF_8);
                    }
                }
                got.write(b, 0, b.length);
                if (got.size() > MAX_REPLY) throw new UnixSocketException(UnixSocketException.Reason.FAILED, "the reply is longer than " + MAX_REPLY + " bytes");
            }
        }
        return got.size() == 0 ? null : got.toString(StandardCharsets.UTF_8);
    }
}
