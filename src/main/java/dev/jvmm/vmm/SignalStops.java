package dev.jvmm.vmm;

import sun.misc.Signal;

/** SIGINT and SIGTERM end the run through the normal stop path, so the terminal and output are restored. */
final class SignalStops {
    private SignalStops() { }

    static void install(Vm vm) {
        Signal.handle(new Signal("INT"), s -> vm.stop(ExitStatus.SIGINT, "interrupted (SIGINT)", null));
        Signal.handle(new Signal("TERM"), s -> vm.stop(ExitStatus.SIGTERM, "terminated (SIGTERM)", null));
    }
}
