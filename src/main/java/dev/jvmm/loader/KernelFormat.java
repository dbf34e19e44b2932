package dev.jvmm.loader;

/** The kernel image formats jvmm can load; the CLI's {@code --format} takes these names in lower case. */
public enum KernelFormat {
    /** A kvmtool-style flat binary, loaded at 0x1000:0000 and entered in real mode. */
    FLAT,
    /** A multiboot v1 kernel (ELF32, or any image with the a.out-kludge address fields). */
    MULTIBOOT
}
