package dev.jvmm.vmm;

import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * SIGINT and SIGTERM end the run through the normal stop path, so the terminal is restored and
 * buffered output written. The previous handlers come back when the run ends.
 */
final class SignalStops implements AutoCloseable {
    private final SignalHandler previousInt;
    private final SignalHandler previousTerm;

    SignalStops(Vm vm) {
        previousInt = Signal.handle(new Signal("INT"), s -> vm.stop(ExitStatus.SIGINT, "interrupted (SIGINT)", null));
        previousTerm = Signal.handle(new Signal("TERM"), s -> vm.stop(ExitStatus.SIGTERM, "terminated (SIGTERM)", null));
    }

    @Override
    public void close() {
        Signal.handle(new Signal("INT"), previousInt);
        Signal.handle(new Signal("TERM"), previousTerm);
    }
}
