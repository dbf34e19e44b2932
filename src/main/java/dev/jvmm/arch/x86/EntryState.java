package dev.jvmm.arch.x86;

/** The register state the boot vCPU starts in. Application processors wait for INIT/SIPI. */
public sealed interface EntryState {
    /** Real mode: CS:IP with CS base = cs << 4; DS = ES = SS = FS = GS = cs; SP as given; other GPRs 0. */
    record RealMode(int cs, int ip, int sp) implements EntryState { }

    /**
     * 32-bit protected mode, paging off, flat 4 GiB code and data segments (as multiboot v1 and PVH
     * require): EIP, EAX and EBX as given; ESP 0 unless a loader says otherwise; other GPRs 0.
     */
    record Protected32(long eip, long eax, long ebx, long esp) implements EntryState { }

    /**
     * 64-bit long mode as the Linux 64-bit boot protocol requires: paging on with the first 4 GiB
     * identity-mapped (page tables from {@link dev.jvmm.arch.x86.Layout#PML4}), flat 64-bit code
     * segment 0x08 and data 0x10, interrupts off; RIP and RSI as given (RSI: the zero page);
     * RSP = RBP = {@link dev.jvmm.arch.x86.Layout#BOOT_STACK}.
     */
    record Long64(long rip, long rsi) implements EntryState { }
}
