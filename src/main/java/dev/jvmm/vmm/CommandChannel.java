package dev.jvmm.vmm;

import dev.jvmm.device.legacy.CommandStatusPort;
import dev.jvmm.device.virtio.VirtioSerial;
import dev.jvmm.device.virtio.VirtioSerial.PortConfig;
import dev.jvmm.event.EventLoop;
import dev.jvmm.host.ConsoleInput;
import dev.jvmm.host.ConsoleOutput;
import dev.jvmm.loader.initramfs.RootfsInit;

import java.io.OutputStream;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * The command's side of a {@code jvmm run --rootfs DIR KERNEL -- COMMAND} run, as the guest init
 * expects it ({@link RootfsInit}): a {@link VirtioSerial} with the ports {@link RootfsInit#STDIN_PORT}
 * (id {@link #STDIN}), {@link RootfsInit#STDOUT_PORT} ({@link #STDOUT}) and
 * {@link RootfsInit#STDERR_PORT} ({@link #STDERR}), and the {@link CommandStatusPort}.
 *
 * <ul>
 *   <li><b>stdin</b>: {@link #readStdin} reads a host descriptor (jvmm's fd 0) on the event loop with
 *       a {@link ConsoleInput} without Ctrl-A escapes: what the host reads is kept until the guest
 *       takes it, nothing more is read meanwhile, and its EOF ends the port's input (the command's
 *       read returns 0). The terminal, if stdin is one, is not put in raw mode (the command has no
 *       tty: the user types lines and ends them with Ctrl-D, as with {@code docker run -i}), so the
 *       VMM must leave {@link VmConfig#stdin()} off: the console then reads nothing. Without
 *       {@code readStdin}, call {@link #noStdin}: the command reads EOF at once, as from /dev/null.</li>
 *   <li><b>stdout and stderr</b>: each port has its own bounded writer ({@link ConsoleOutput}) on its
 *       own stream, so the two stay apart and byte-exact; a failed write ends the run with
 *       {@link ExitStatus#OUTPUT_FAILED}. The console (ttyS0) should then not write to the same
 *       stdout, or the kernel's messages mix with the command's bytes.</li>
 *   <li><b>status</b>: the init's write to the status port (on a vCPU thread) asks the event loop to
 *       {@link VirtioSerial#drainOutputs drain} the ports' transmit queues (the guest's last writes
 *       may not have reached the loop yet: ioeventfds) and waits until both writers have written
 *       everything out; then it ends the run with the command's status
 *       ({@link StopCause#COMMAND_EXITED}). The vCPU waits meanwhile, looking every
 *       {@link #WAIT_SLICE_MS} ms whether the run is ending anyway (a signal, --timeout), so the
 *       guest cannot reset the device or power off before its output is out, and a reader that never
 *       reads holds the run only until --timeout.</li>
 * </ul>
 *
 * <p>The VMM makes it ({@link VirtioSpec.CommandPorts} does, from its Context), adds
 * {@link #device()} as a virtio-mmio device, puts {@link #statusPort()} on the I/O port bus at
 * {@link CommandStatusPort#PORT}, and closes the device after the run (closing writes the outputs
 * out, within a bounded wait). A run that ends without a status (the init died: panic=-1 resets)
 * is the command's failure; {@link #statusReported()} tells.
 */
public final class CommandChannel {
    public static final int STDIN = 0, STDOUT = 1, STDERR = 2;
    /** How often a vCPU waiting for the command's last output looks whether the run is ending. */
    static final long WAIT_SLICE_MS = 50;
    /** How long closing waits for the writers at the end of a run that did not wait for them. */
    static final long CLOSE_WAIT_MS = 500;

    private final EventLoop loop;
    private final ConsoleOutput stdout;
    private final ConsoleOutput stderr;
    private final VirtioSerial device;
    private final CommandStatusPort statusPort;
    private final Consumer<Stop> stop;
    private final BooleanSupplier stopping;
    private boolean inputWired;

    /**
     * @param out      where the command's stdout goes (jvmm's stdout)
     * @param err      where its stderr goes
     * @param stop     ends the run (the first stop wins)
     * @param stopping whether the run is ending
     */
    public CommandChannel(EventLoop loop, OutputStream out, OutputStream err, Consumer<Stop> stop, BooleanSupplier stopping) {
        this(loop, out, err, stop, stopping, null);
    }

    /** @param timeline where the init's milestones are marked (null: nowhere) */
    public CommandChannel(EventLoop loop, OutputStream out, OutputStream err, Consumer<Stop> stop, BooleanSupplier stopping,
                          Timeline timeline) {
        this.loop = Objects.requireNonNull(loop, "loop");
        this.stop = Objects.requireNonNull(stop, "stop");
        this.stopping = Objects.requireNonNull(stopping, "stopping");
        ConsoleOutput.Failure failed = why -> stop.accept(new Stop(StopCause.OUTPUT_FAILED, ExitStatus.OUTPUT_FAILED, why));
        this.stdout = new ConsoleOutput(out, "the command's stdout", "stdout", failed);
        this.stderr = new ConsoleOutput(err, "the command's stderr", "stderr", failed);
        this.device = new VirtioSerial(List.of(PortConfig.input(RootfsInit.STDIN_PORT),
                PortConfig.output(RootfsInit.STDOUT_PORT, stdout), PortConfig.output(RootfsInit.STDERR_PORT, stderr)));
        device.closeWith(() -> {
            stdout.close(CLOSE_WAIT_MS);
            stderr.close(CLOSE_WAIT_MS);
        });
        this.statusPort = new CommandStatusPort(this::exited, phase -> {
            if (timeline != null) timeline.mark(switch (phase) {
                case CommandStatusPort.PHASE_INIT -> Timeline.Mark.GUEST_INIT;
                case CommandStatusPort.PHASE_ROOT -> Timeline.Mark.ROOT_MOUNTED;
                case CommandStatusPort.PHASE_COMMAND_STARTED -> Timeline.Mark.COMMAND_STARTED;
                default -> Timeline.Mark.COMMAND_EXITED;
            });
        });
    }

    /** The device to add as a virtio-mmio device. */
    public VirtioSerial device() {
        return device;
    }

    /** The device for I/O ports [{@link CommandStatusPort#PORT}, +{@link CommandStatusPort#LENGTH}). */
    public CommandStatusPort statusPort() {
        return statusPort;
    }

    /** Whether the guest init reported the command's status. */
    public boolean statusReported() {
        return statusPort.reported();
    }

    /** Bytes the command wrote to stdout and stderr. */
    public long bytesWritten() {
        return stdout.bytesWritten() + stderr.bytesWritten();
    }

    /**
     * Feeds host descriptor {@code fd} (jvmm's 0) to the command's stdin, read on the event loop.
     * Call on the loop thread or before the run, once; the descriptor stays open (it is jvmm's).
     */
    public void readStdin(int fd) {
        wireInput();
        new ConsoleInput(fd, loop, device.input(STDIN), false, () -> { }).start();
    }

    /** The command gets no input: its stdin reads EOF at once. */
    public void noStdin() {
        wireInput();
        device.input(STDIN).endOfInput();
    }

    private synchronized void wireInput() {
        if (inputWired) throw new IllegalStateException("the command's stdin is wired already");
        inputWired = true;
    }

    /** The status port's listener: on the vCPU that wrote it, which waits here until the output is out. */
    private void exited(int status, String reason) {
        CountDownLatch out = new CountDownLatch(1);
        loop.execute(() -> device.drainOutputs(() -> stdout.whenWritten(() -> stderr.whenWritten(out::countDown))));
        try {
            while (!stopping.getAsBoolean() && !out.await(WAIT_SLICE_MS, TimeUnit.MILLISECONDS)) {
                // the run goes on: the loop drains, the writers write
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        stop.accept(new Stop(StopCause.COMMAND_EXITED, status, reason));
    }
}
