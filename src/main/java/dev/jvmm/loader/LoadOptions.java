package dev.jvmm.loader;

import java.nio.file.Path;
import java.util.List;

/**
 * What the user asked for that a loader needs to know.
 *
 * @param memSize        guest RAM size in bytes (RAM layout per {@link dev.jvmm.arch.x86.Layout})
 * @param cmdline        kernel command line, may be empty
 * @param modules        initrd / multiboot modules, in order (Linux: the files are concatenated into one initrd)
 * @param boot           how to enter a Linux kernel: {@link BootProtocol#DEFAULT} lets the loader choose
 * @param hostDecompress boot a bzImage by decompressing its payload on the host and entering the vmlinux inside
 * @param rsdpAddress    guest-physical address of the ACPI RSDP to announce (zero page, PVH start info); 0 = no ACPI
 * @param kernelCache    where host decompression keeps what it decompressed, or null for nowhere
 */
public record LoadOptions(long memSize, String cmdline, List<Path> modules, BootProtocol boot, boolean hostDecompress,
                          long rsdpAddress, KernelCache kernelCache) {
    /** How a Linux kernel is entered. */
    public enum BootProtocol {
        /**
         * The 64-bit boot protocol, except for an ELF whose only entry is its PVH note's (its ELF
         * entry point is the PVH one): that is entered through PVH.
         */
        DEFAULT,
        /** The 64-bit Linux boot protocol: long mode, RSI = zero page. */
        LONG64,
        /** PVH: 32-bit protected mode at the Xen ELF note 18 entry, EBX = hvm_start_info. */
        PVH
    }

    public LoadOptions {
        cmdline = cmdline == null ? "" : cmdline;
        modules = List.copyOf(modules);
        boot = boot == null ? BootProtocol.DEFAULT : boot;
    }

    /** Options for formats that need no Linux-specific choices. */
    public LoadOptions(long memSize, String cmdline, List<Path> modules) {
        this(memSize, cmdline, modules, BootProtocol.DEFAULT, true, 0);
    }

    /** Options without a kernel cache. */
    public LoadOptions(long memSize, String cmdline, List<Path> modules, BootProtocol boot, boolean hostDecompress,
                       long rsdpAddress) {
        this(memSize, cmdline, modules, boot, hostDecompress, rsdpAddress, null);
    }
}
