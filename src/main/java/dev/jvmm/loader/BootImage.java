package dev.jvmm.loader;

import dev.jvmm.memory.Chunk;
import dev.jvmm.arch.x86.EntryState;

import java.util.List;

/** What a loader decided: which bytes go where, and how the boot vCPU starts. Nothing KVM-specific. */
public record BootImage(KernelFormat format, List<Chunk> chunks, EntryState entry) {
    public BootImage {
        chunks = List.copyOf(chunks);
    }
}
