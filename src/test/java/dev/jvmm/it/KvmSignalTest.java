package dev.jvmm.it;

import dev.jvmm.kvm.Kvm;
import dev.jvmm.kvm.VmFd;
import dev.jvmm.sys.Signals;
import org.junit.jupiter.api.Test;
import sun.misc.Signal;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A signal that reaches jvmm while it sets a VM up (a profiler's SIGPROF, a helper's SIGCHLD, a
 * terminal's SIGWINCH) must not fail the run: KVM_CREATE_VM gives up with EINTR whenever a signal with
 * a handler is pending while it registers the VM with the memory manager, and jvmm makes it again.
 * Here a thread sends SIGWINCH (given a handler for the test) to the one creating VMs, as fast as it can.
 */
class KvmSignalTest {
    @Test
    void creatingVmsUnderAStormOfSignalsSucceeds() throws Exception {
        KvmSupport.requireKvm();
        Signal winch = new Signal("WINCH");
        AtomicLong handled = new AtomicLong();
        var previous = Signal.handle(winch, s -> handled.incrementAndGet());
        long tid = Signals.currentThreadId();
        AtomicBoolean done = new AtomicBoolean();
        AtomicLong sent = new AtomicLong();
        Thread storm = Thread.ofPlatform().name("signal storm").start(() -> {
            while (!done.get()) {
                if (Signals.kill(tid, winch.getNumber()) == 0) sent.incrementAndGet();
            }
        });
        try (Kvm kvm = Kvm.open(KvmSupport.KVM.toString())) {
            for (int i = 0; i < 200; i++) {
                VmFd vm = assertDoesNotThrow(kvm::createVm, "KVM_CREATE_VM number " + i + " under signals");
                vm.close();
            }
        } finally {
            done.set(true);
            storm.join();
            Signal.handle(winch, previous);
        }
        assertTrue(sent.get() > 1000, "the storm sent " + sent.get() + " signals: too few to test anything");
    }
}
