package dev.jvmm.kvm;

import dev.jvmm.sys.KvmApi;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A view of a vCPU's mmapped {@code struct kvm_run} (or of any segment laid out like it, so exit
 * handling can be tested without KVM): named accessors for the fields jvmm reads and writes, every
 * offset taken from {@link KvmApi#KVM_RUN}, which the header probe checks. Allocation-free: it holds
 * only the segment, so the exit path makes no garbage.
 *
 * <p>The accessors read what KVM wrote and validate nothing; whoever acts on an exit checks sizes,
 * counts and the data offset against {@link #size()} first.
 */
public final class KvmRun {
    private final MemorySegment run;

    /** @param run at least {@code sizeof(struct kvm_run)} bytes; the port I/O data area may follow it */
    public KvmRun(MemorySegment run) {
        if (run.byteSize() < KvmApi.KVM_RUN.byteSize()) {
            throw new IllegalArgumentException("a kvm_run needs " + KvmApi.KVM_RUN.byteSize() + " bytes, not " + run.byteSize());
        }
        this.run = run;
    }

    /** The whole mapping (for tests that fill in an exit). */
    public MemorySegment segment() {
        return run;
    }

    public long size() {
        return run.byteSize();
    }

    /** KVM_EXIT_DEBUG: the exception vector (1: #DB, 3: #BP), the linear PC and DR6. */
    public int debugException() {
        return run.get(JAVA_INT, KvmApi.RUN_DEBUG_EXCEPTION);
    }

    public long debugPc() {
        return run.get(java.lang.foreign.ValueLayout.JAVA_LONG, KvmApi.RUN_DEBUG_PC);
    }

    public long debugDr6() {
        return run.get(java.lang.foreign.ValueLayout.JAVA_LONG, KvmApi.RUN_DEBUG_DR6);
    }

    public int exitReason() {
        return run.get(JAVA_INT, KvmApi.RUN_EXIT_REASON);
    }

    public void setImmediateExit(boolean on) {
        run.set(JAVA_BYTE, KvmApi.RUN_IMMEDIATE_EXIT, (byte) (on ? 1 : 0));
    }

    // ---- KVM_EXIT_IO ----

    public boolean ioIsOut() {
        return run.get(JAVA_BYTE, KvmApi.RUN_IO_DIRECTION) == KvmApi.KVM_EXIT_IO_OUT;
    }

    public int ioSize() {
        return run.get(JAVA_BYTE, KvmApi.RUN_IO_SIZE) & 0xff;
    }

    public int ioPort() {
        return run.get(JAVA_SHORT, KvmApi.RUN_IO_PORT) & 0xffff;
    }

    public int ioCount() {
        return run.get(JAVA_INT, KvmApi.RUN_IO_COUNT);
    }

    /** Where in the mapping the data of a port access lies (past the struct). */
    public long ioDataOffset() {
        return run.get(JAVA_LONG, KvmApi.RUN_IO_DATA_OFFSET);
    }

    // ---- KVM_EXIT_MMIO ----

    public long mmioAddress() {
        return run.get(JAVA_LONG, KvmApi.RUN_MMIO_PHYS_ADDR);
    }

    public int mmioLength() {
        return run.get(JAVA_INT, KvmApi.RUN_MMIO_LEN);
    }

    public boolean mmioIsWrite() {
        return run.get(JAVA_BYTE, KvmApi.RUN_MMIO_IS_WRITE) != 0;
    }

    /** Offset of the 8-byte MMIO data buffer, for {@link #load} and {@link #store}. */
    public static long mmioDataOffset() {
        return KvmApi.RUN_MMIO_DATA;
    }

    // ---- data of an access: little-endian, 1 to 8 bytes at an offset in the mapping ----

    /** The {@code size} bytes at {@code at}, little-endian, zero-extended. */
    public long load(long at, int size) {
        long v = 0;
        for (int i = 0; i < size; i++) v |= (run.get(JAVA_BYTE, at + i) & 0xffL) << (8 * i);
        return v;
    }

    /** Stores the low {@code size} bytes of {@code value} at {@code at}, little-endian. */
    public void store(long at, int size, long value) {
        if (size == 1) {
            run.set(JAVA_BYTE, at, (byte) value);
            return;
        }
        for (int i = 0; i < size; i++) run.set(JAVA_BYTE, at + i, (byte) (value >>> (8 * i)));
    }

    // ---- the exits that end a run ----

    public long failEntryReason() {
        return run.get(JAVA_LONG, KvmApi.RUN_FAIL_ENTRY_REASON);
    }

    public int internalSuberror() {
        return run.get(JAVA_INT, KvmApi.RUN_INTERNAL_SUBERROR);
    }

    /** How many data words KVM gave with an internal error, at most the 16 the struct holds. */
    public int internalDataCount() {
        return Math.max(0, Math.min(run.get(JAVA_INT, KvmApi.RUN_INTERNAL_NDATA), KvmApi.RUN_INTERNAL_DATA_WORDS));
    }

    public long internalData(int i) {
        return run.get(JAVA_LONG_UNALIGNED, KvmApi.RUN_INTERNAL_DATA + 8L * i);
    }

    public int systemEventType() {
        return run.get(JAVA_INT, KvmApi.RUN_SYSTEM_EVENT_TYPE);
    }
}
