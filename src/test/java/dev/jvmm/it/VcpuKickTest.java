package dev.jvmm.it;

import dev.jvmm.vmm.VmBuilder;
import dev.jvmm.vmm.Stop;
import dev.jvmm.vmm.StopCause;

import dev.jvmm.loader.KernelLoader;
import dev.jvmm.loader.LoadOptions;
import dev.jvmm.vmm.RunReport;
import dev.jvmm.vmm.Vm;
import dev.jvmm.vmm.VmConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A stop request must get vCPUs that spin forever inside KVM_RUN (no exits at all) out within 100 ms:
 * the kick (SIGURG to each vCPU thread) is the only thing that can. This is a correctness bound
 * with a wide margin (a kick takes about 10 us here), not a performance measurement.
 */
class VcpuKickTest {
    @Test
    void spinningVcpusStopPromptly(@TempDir Path tmp) throws Exception {
        KvmSupport.requireKvm();
        Path kernel = KvmSupport.guest("spin.bin");
        VmConfig config = VmConfig.of(2, 16 << 20).toBuilder().serialLog(tmp.resolve("serial.log")).build();
        var image = KernelLoader.load(kernel, null, new LoadOptions(config.memBytes(), "", List.of()));
        Vm vm = VmBuilder.build(config, image);
        CompletableFuture<RunReport> run = CompletableFuture.supplyAsync(vm::run);
        Thread.sleep(1500); // let both vCPUs get into KVM_RUN (the AP waits for SIPI in the kernel)
        assertTrue(!run.isDone(), "the spinning guest should still be running");
        vm.stop(new Stop(StopCause.SIGNAL, 77, "test stop"));
        RunReport report = run.get(5, TimeUnit.SECONDS);
        vm.close();
        long ms = vm.stopLatency().toMillis();
        assertEquals(77, report.stop().exitStatus());
        assertEquals("test stop", report.stop().reason());
        assertTrue(ms < 100, "vCPUs out of KVM_RUN " + ms + " ms after the stop request");
        assertTrue(report.vcpus().get(0).exits().containsKey("KICK (EINTR)") || report.vcpus().get(0).exits().containsKey("INTR"),
                "vCPU 0 left KVM_RUN because of the kick: " + report.vcpus());
    }
}
