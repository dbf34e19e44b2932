package dev.jvmm.gdb;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The x86-64 register file as this stub describes it to gdb (qXfer:features:read:target.xml): gdb's
 * standard core, SSE and segments features, then the system registers (CR0, CR2, CR3, CR4, CR8,
 * EFER) in a feature of jvmm's own. Register n's bytes sit at {@link Reg#offset} of the image a
 * {@code g} packet carries, little-endian.
 */
public final class X86Registers {
    private X86Registers() { }

    public record Reg(int number, String name, int size, String type, String group, String feature, int offset) { }

    public static final List<Reg> REGS;
    /** The size of a whole register image (the {@code g} packet's data, in bytes). */
    public static final int IMAGE_BYTES;

    public static final int RAX = 0, RBX = 1, RCX = 2, RDX = 3, RSI = 4, RDI = 5, RBP = 6, RSP = 7, R8 = 8,
            RIP = 16, EFLAGS = 17, CS = 18, SS = 19, DS = 20, ES = 21, FS = 22, GS = 23,
            ST0 = 24, FCTRL = 32, FSTAT = 33, FTAG = 34, FISEG = 35, FIOFF = 36, FOSEG = 37, FOOFF = 38, FOP = 39,
            XMM0 = 40, MXCSR = 56, FS_BASE = 57, GS_BASE = 58, CR0 = 59, CR2 = 60, CR3 = 61, CR4 = 62, CR8 = 63, EFER = 64;

    static {
        List<Reg> r = new ArrayList<>();
        int[] off = {0};
        String core = "org.gnu.gdb.i386.core";
        for (String n : List.of("rax", "rbx", "rcx", "rdx", "rsi", "rdi")) add(r, off, n, 8, "int64", "general", core);
        add(r, off, "rbp", 8, "data_ptr", "general", core);
        add(r, off, "rsp", 8, "data_ptr", "general", core);
        for (int i = 8; i < 16; i++) add(r, off, "r" + i, 8, "int64", "general", core);
        add(r, off, "rip", 8, "code_ptr", "general", core);
        add(r, off, "eflags", 4, "i386_eflags", "general", core);
        for (String n : List.of("cs", "ss", "ds", "es", "fs", "gs")) add(r, off, n, 4, "int32", "general", core);
        for (int i = 0; i < 8; i++) add(r, off, "st" + i, 10, "i387_ext", "float", core);
        for (String n : List.of("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")) add(r, off, n, 4, "int", "float", core);
        String sse = "org.gnu.gdb.i386.sse";
        for (int i = 0; i < 16; i++) add(r, off, "xmm" + i, 16, "vec128", "vector", sse);
        add(r, off, "mxcsr", 4, "i386_mxcsr", "vector", sse);
        String seg = "org.gnu.gdb.i386.segments";
        add(r, off, "fs_base", 8, "int", "system", seg);
        add(r, off, "gs_base", 8, "int", "system", seg);
        String sys = "dev.jvmm.x86.system";
        for (String n : List.of("cr0", "cr2", "cr3", "cr4", "cr8", "efer")) add(r, off, n, 8, "int", "system", sys);
        REGS = Collections.unmodifiableList(r);
        IMAGE_BYTES = off[0];
    }

    private static void add(List<Reg> r, int[] off, String name, int size, String type, String group, String feature) {
        r.add(new Reg(r.size(), name, size, type, group, feature, off[0]));
        off[0] += size;
    }

    public static long get(byte[] image, int reg) {
        Reg r = REGS.get(reg);
        long v = 0;
        for (int i = Math.min(r.size(), 8) - 1; i >= 0; i--) v = v << 8 | (image[r.offset() + i] & 0xff);
        return v;
    }

    public static void set(byte[] image, int reg, long value) {
        Reg r = REGS.get(reg);
        for (int i = 0; i < r.size(); i++) image[r.offset() + i] = i < 8 ? (byte) (value >>> (8 * i)) : 0;
    }

    /** The target description: x86-64, its registers in the order above. */
    public static String targetXml() {
        StringBuilder sb = new StringBuilder();
        sb.append("<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n");
        sb.append("  <architecture>i386:x86-64</architecture>\n");
        String feature = null;
        for (Reg r : REGS) {
            if (!r.feature().equals(feature)) {
                if (feature != null) sb.append("  </feature>\n");
                feature = r.feature();
                sb.append("  <feature name=\"").append(feature).append("\">\n");
                if (feature.equals("org.gnu.gdb.i386.core")) sb.append(FLAGS_TYPES);
                if (feature.equals("org.gnu.gdb.i386.sse")) sb.append(SSE_TYPES);
            }
            sb.append("    <reg name=\"").append(r.name()).append("\" bitsize=\"").append(r.size() * 8)
                    .append("\" type=\"").append(r.type()).append("\" regnum=\"").append(r.number())
                    .append("\" group=\"").append(r.group()).append("\"/>\n");
        }
        sb.append("  </feature>\n</target>\n");
        return sb.toString();
    }

    private static final String FLAGS_TYPES = """
                <flags id="i386_eflags" size="4">
                  <field name="CF" start="0" end="0"/><field name="" start="1" end="1"/><field name="PF" start="2" end="2"/>
                  <field name="AF" start="4" end="4"/><field name="ZF" start="6" end="6"/><field name="SF" start="7" end="7"/>
                  <field name="TF" start="8" end="8"/><field name="IF" start="9" end="9"/><field name="DF" start="10" end="10"/>
                  <field name="OF" start="11" end="11"/><field name="NT" start="14" end="14"/><field name="RF" start="16" end="16"/>
                  <field name="VM" start="17" end="17"/><field name="AC" start="18" end="18"/><field name="VIF" start="19" end="19"/>
                  <field name="VIP" start="20" end="20"/><field name="ID" start="21" end="21"/>
                </flags>
            """;

    private static final String SSE_TYPES = """
                <vector id="v4f" type="ieee_single" count="4"/>
                <vector id="v2d" type="ieee_double" count="2"/>
                <vector id="v16i8" type="int8" count="16"/>
                <vector id="v8i16" type="int16" count="8"/>
                <vector id="v4i32" type="int32" count="4"/>
                <vector id="v2i64" type="int64" count="2"/>
                <union id="vec128">
                  <field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/><field name="v16_int8" type="v16i8"/>
                  <field name="v8_int16" type="v8i16"/><field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>
                  <field name="uint128" type="uint128"/>
                </union>
                <flags id="i386_mxcsr" size="4">
                  <field name="IE" start="0" end="0"/><field name="DE" start="1" end="1"/><field name="ZE" start="2" end="2"/>
                  <field name="OE" start="3" end="3"/><field name="UE" start="4" end="4"/><field name="PE" start="5" end="5"/>
                  <field name="DAZ" start="6" end="6"/><field name="IM" start="7" end="7"/><field name="DM" start="8" end="8"/>
                  <field name="ZM" start="9" end="9"/><field name="OM" start="10" end="10"/><field name="UM" start="11" end="11"/>
                  <field name="PM" start="12" end="12"/><field name="FZ" start="15" end="15"/>
                </flags>
            """;
}
