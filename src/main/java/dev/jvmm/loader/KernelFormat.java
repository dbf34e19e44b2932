package dev.jvmm.loader;

/** The kernel image formats jvmm can load; the CLI's {@code --format} takes these names in lower case. */
public enum KernelFormat {
    /** A kvmtool-style flat binary, loaded at 0x1000:0000 and entered in real mode. */
    FLAT,
    /** A multiboot v1 kernel (ELF32, or any image with the a.out-kludge address fields). */
    MULTIBOOT,
    /** A Linux bzImage (setup header "HdrS", boot protocol 2.12 or later for 64-bit entry). */
    BZIMAGE,
    /** An ELF64 kernel such as Linux's vmlinux: 64-bit entry, or PVH through its Xen ELF note. */
    ELF
}
