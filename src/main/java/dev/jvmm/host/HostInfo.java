package dev.jvmm.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Facts about the host that decide what jvmm can do here. */
public final class HostInfo {
    private HostInfo() { }

    /** How this host's KVM runs guest code. */
    public enum Virtualization {
        /** Intel VT-x or AMD-V: ordinary guests run at native speed. */
        HARDWARE,
        /** No VT-x/AMD-V (e.g. the kvm_pvm module): guest code is emulated instruction by instruction. */
        EMULATED
    }

    public static Virtualization virtualization() {
        String flags = cpuFlags();
        if (flags.contains(" vmx ") || flags.contains(" svm ")) return Virtualization.HARDWARE;
        return Virtualization.EMULATED;
    }

    /** One line on how guests run here, for `jvmm check` and error messages. */
    public static String describeVirtualization() {
        if (virtualization() == Virtualization.HARDWARE) {
            return "hardware virtualization (" + (cpuFlags().contains(" vmx ") ? "Intel VT-x" : "AMD-V")
                    + "): ordinary guests, Linux included, can run here";
        }
        String module = Files.isDirectory(Path.of("/sys/module/kvm_pvm")) ? " (the kvm_pvm module)" : "";
        return "no hardware virtualization: this /dev/kvm" + module + " emulates guest code instruction by instruction"
                + " (about 1 us each) and cannot run ordinary guests such as Linux; small test guests work";
    }

    private static String cpuFlags() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("flags")) return " " + line.substring(line.indexOf(':') + 1).trim() + " ";
            }
        } catch (IOException e) {
            // no /proc: treat as unknown, i.e. emulated
        }
        return " ";
    }

    /** Host RAM in bytes (MemTotal), or Long.MAX_VALUE if it cannot be read. */
    public static long memTotal() {
        try {
            Matcher m = Pattern.compile("MemTotal:\\s+(\\d+) kB").matcher(Files.readString(Path.of("/proc/meminfo")));
            if (m.find()) return Long.parseLong(m.group(1)) * 1024;
        } catch (IOException | NumberFormatException e) {
            // fall through
        }
        return Long.MAX_VALUE;
    }
}
