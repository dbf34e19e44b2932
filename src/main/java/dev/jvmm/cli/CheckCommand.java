package dev.jvmm.cli;

import dev.jvmm.kvm.Kvm;
import dev.jvmm.kvm.KvmUnavailableException;
import dev.jvmm.sys.KvmApi;
import dev.jvmm.vmm.ExitStatus;
import dev.jvmm.host.HostInfo;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code jvmm check}: can this host run VMs, and how well. */
@Command(name = "check", mixinStandardHelpOptions = true,
        description = "Report /dev/kvm, its API version and capabilities, and whether ordinary guests can run here.",
        footer = {"", "Exit status: 0 if jvmm can run VMs here, 6 if it cannot."})
public final class CheckCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--kvm", paramLabel = "PATH", description = "KVM device (default: ${DEFAULT-VALUE}).", defaultValue = "/dev/kvm")
    String kvmPath;

    static final Map<String, Integer> OPTIONAL = Map.of(
            "KVM_CAP_IMMEDIATE_EXIT", KvmApi.KVM_CAP_IMMEDIATE_EXIT,
            "KVM_CAP_SPLIT_IRQCHIP", KvmApi.KVM_CAP_SPLIT_IRQCHIP,
            "KVM_CAP_SET_IDENTITY_MAP_ADDR", KvmApi.KVM_CAP_SET_IDENTITY_MAP_ADDR,
            "KVM_CAP_SIGNAL_MSI", KvmApi.KVM_CAP_SIGNAL_MSI);

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try (Kvm kvm = Kvm.open(kvmPath)) {
            out.printf("%-16s %s (KVM API version %d)%n", "device:", kvmPath, kvm.apiVersion());
            List<String> missing = kvm.missingCapabilities();
            out.printf("%-16s", "required:");
            Kvm.REQUIRED_CAPABILITIES.keySet().forEach(c -> out.print(" " + c.substring(8) + (missing.contains(c) ? "=MISSING" : "")));
            out.println();
            out.printf("%-16s", "optional:");
            OPTIONAL.entrySet().stream().sorted(Map.Entry.comparingByKey())
                    .forEach(e -> out.print(" " + e.getKey().substring(8) + (kvm.checkExtension(e.getValue()) > 0 ? "" : "=no")));
            out.println();
            out.printf("%-16s %d (memory slots: %d)%n", "max vCPUs:", kvm.maxVcpus(), kvm.checkExtension(KvmApi.KVM_CAP_NR_MEMSLOTS));
            out.printf("%-16s %s%n", "virtualization:", HostInfo.describeVirtualization());
            out.flush();
            if (!missing.isEmpty()) {
                err.println("jvmm: " + kvmPath + " lacks capabilities jvmm needs: " + String.join(", ", missing));
                return ExitStatus.HOST_UNSUITABLE;
            }
            out.printf("%-16s %s%n", "verdict:", HostInfo.virtualization() == HostInfo.Virtualization.HARDWARE
                    ? "jvmm can run guests here" : "jvmm can run small test guests here, not ordinary (Linux) guests");
            return ExitStatus.OK;
        } catch (KvmUnavailableException e) {
            err.println("jvmm: " + e.getMessage());
            return ExitStatus.HOST_UNSUITABLE;
        }
    }
}
