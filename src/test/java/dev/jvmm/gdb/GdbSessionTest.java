package dev.jvmm.gdb;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every command against a fake two-vCPU target: 64 KiB of memory, identity-mapped below 0x10000, nothing above. */
class GdbSessionTest {
    static class FakeTarget implements GdbTarget {
        final byte[] memory = new byte[0x10000];
        final byte[][] regs = {new byte[X86Registers.IMAGE_BYTES], new byte[X86Registers.IMAGE_BYTES]};
        Action[] lastActions;
        long[] lastDr;
        Set<Long> lastSw;
        int interrupts, detaches, kills;
        boolean detachCleanedUp;

        @Override public int cpus() { return 2; }
        @Override public void attach(Listener l) { }
        @Override public boolean stopped() { return true; }
        @Override public byte[] readRegisters(int cpu) { return regs[cpu].clone(); }
        @Override public void writeRegisters(int cpu, byte[] image) { regs[cpu] = image.clone(); }

        @Override
        public byte[] readMemory(int cpu, long address, int length) {
            if (address < 0 || address >= memory.length) return new byte[0];
            int n = (int) Math.min(length, memory.length - address);
            return Arrays.copyOfRange(memory, (int) address, (int) address + n);
        }

        @Override
        public boolean writeMemory(int cpu, long address, byte[] data) {
            if (address < 0 || address + data.length > memory.length) return false;
            System.arraycopy(data, 0, memory, (int) address, data.length);
            return true;
        }

        @Override
        public void resume(Action[] actions, long[] dr, Set<Long> sw) {
            lastActions = actions;
            lastDr = dr;
            lastSw = sw;
        }

        @Override public void interrupt() { interrupts++; }

        @Override
        public void detach(Runnable cleanUp) {
            cleanUp.run();
            detachCleanedUp = true;
            detaches++;
        }

        @Override public void kill() { kills++; }
    }

    FakeTarget target;
    List<String> sent;
    GdbSession session;

    @BeforeEach
    void setUp() {
        target = new FakeTarget();
        sent = new ArrayList<>();
        session = new GdbSession(target, b -> sent.add(new String(b, StandardCharsets.ISO_8859_1)));
    }

    private void feed(String s) {
        byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
        session.receive(b, 0, b.length);
    }

    /** Sends one packet; returns the reply's payload (unescaped), or null if there was none. */
    private String ask(String payload) {
        sent.clear();
        byte[] f = Rsp.frame(payload);
        session.receive(f, 0, f.length);
        assertEquals("+", sent.isEmpty() ? null : sent.get(0), "the packet is acknowledged: " + payload);
        if (sent.size() < 2) return null;
        String r = sent.get(1);
        assertEquals('$', r.charAt(0));
        byte[] raw = r.substring(1, r.length() - 3).getBytes(StandardCharsets.ISO_8859_1);
        assertEquals(r.substring(r.length() - 2), String.format("%02x", Rsp.checksum(raw, 0, raw.length)));
        try {
            return new String(Rsp.unescape(raw, 0, raw.length, 1 << 20), StandardCharsets.ISO_8859_1);
        } catch (Rsp.RspException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void qSupportedAdvertisesThePacketSizeAndTheTargetDescription() {
        String r = ask("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386");
        assertTrue(r.contains("PacketSize=4000"), r);
        assertTrue(r.contains("qXfer:features:read+"), r);
        StringBuilder xml = new StringBuilder();
        int off = 0;
        while (true) {
            String chunk = ask("qXfer:features:read:target.xml:" + Integer.toHexString(off) + ",200");
            xml.append(chunk.substring(1));
            off += chunk.length() - 1;
            if (chunk.charAt(0) == 'l') break;
            assertEquals('m', chunk.charAt(0));
        }
        assertEquals(X86Registers.targetXml(), xml.toString());
        assertTrue(xml.toString().contains("<architecture>i386:x86-64</architecture>"));
        assertTrue(xml.toString().contains("name=\"fs_base\"") && xml.toString().contains("name=\"cr3\""));
        assertEquals("E00", ask("qXfer:features:read:other.xml:0,100"));
        assertEquals("E22", ask("qXfer:features:read:target.xml:zz,100"));
    }

    @Test
    void registersReadAndWrite() {
        X86Registers.set(target.regs[0], X86Registers.RIP, 0x1234_5678_9abcL);
        X86Registers.set(target.regs[0], X86Registers.CR3, 0x5000);
        String g = ask("g");
        assertEquals(X86Registers.IMAGE_BYTES * 2, g.length());
        assertEquals("bc9a785634120000", ask("p10"));
        assertEquals(Rsp.hexLe(0x5000, 8), ask("p" + Integer.toHexString(X86Registers.CR3)));
        assertEquals("OK", ask("P0=efbeadde00000000"));
        assertEquals(0xdeadbeefL, X86Registers.get(target.regs[0], X86Registers.RAX));
        assertEquals("E22", ask("P0=efbe"), "a value of the wrong size");
        assertEquals("E00", ask("p" + Integer.toHexString(X86Registers.REGS.size())));
        assertEquals("E22", ask("pffffffffff"));
        assertEquals("E22", ask("p-1"));
        // G writes the whole image; fs_base / segment registers are part of it
        byte[] image = new byte[X86Registers.IMAGE_BYTES];
        X86Registers.set(image, X86Registers.FS_BASE, 0xffff_8880_0000_0000L);
        X86Registers.set(image, X86Registers.CS, 0x10);
        assertEquals("OK", ask("G" + Rsp.hex(image)));
        assertArrayEquals(image, target.regs[0]);
        assertEquals("E22", ask("G" + Rsp.hex(image) + "00"), "longer than the image");
        assertEquals("E22", ask("G0"), "odd hex");
    }

    @Test
    void threadsAreVcpus() {
        assertEquals("m1,2", ask("qfThreadInfo"));
        assertEquals("l", ask("qsThreadInfo"));
        assertEquals("OK", ask("T2"));
        assertEquals("E01", ask("T3"));
        assertEquals("OK", ask("Hg2"));
        X86Registers.set(target.regs[1], X86Registers.RBX, 7);
        assertEquals(Rsp.hexLe(7, 8), ask("p1"));
        assertEquals("QC2", ask("qC"));
        assertEquals("E01", ask("Hg5"));
        assertEquals("OK", ask("Hc-1"));
        assertEquals("OK", ask("Hg0"));
        assertEquals("E22", ask("Hx1"));
        assertEquals(Rsp.hex("vCPU 1"), ask("qThreadExtraInfo,2"));
    }

    @Test
    void memoryReadWriteAndBadAddresses() {
        target.memory[0x100] = 0x12;
        target.memory[0x101] = 0x34;
        assertEquals("1234", ask("m100,2"));
        assertEquals("OK", ask("M200,3:aabbcc"));
        assertEquals((byte) 0xbb, target.memory[0x201]);
        assertEquals("E22", ask("M200,3:aabb"), "length and data differ");
        // X carries binary data: escaped bytes arrive as themselves
        byte[] x = "X300,4:".getBytes(StandardCharsets.ISO_8859_1);
        byte[] data = {'$', '#', '}', '*'};
        byte[] pkt = Arrays.copyOf(x, x.length + 4);
        System.arraycopy(data, 0, pkt, x.length, 4);
        sent.clear();
        byte[] f = Rsp.frame(pkt);
        session.receive(f, 0, f.length);
        assertTrue(sent.get(1).startsWith("$OK#"), sent.toString());
        assertArrayEquals(data, Arrays.copyOfRange(target.memory, 0x300, 0x304));
        assertEquals("OK", ask("X300,0:"));
        // untranslatable: an error; partially readable: what can be read
        assertEquals("E14", ask("m20000,4"));
        assertEquals("0000", ask("mfffe,4"));
        assertEquals("E14", ask("Mfffe,4:00000000"));
        // hostile lengths and numbers
        assertEquals("E22", ask("m0,ffffffff"));
        assertEquals("E22", ask("m0,2001"));
        assertEquals("E22", ask("m0"));
        assertEquals("E22", ask("mxyz,4"));
        assertEquals("E22", ask("m10000000000000000,1"));
        assertEquals(GdbSession.MAX_MEMORY * 2, ask("m0," + Integer.toHexString(GdbSession.MAX_MEMORY)).length());
    }

    @Test
    void softwareBreakpointsPatchInt3AndRestore() {
        target.memory[0x400] = (byte) 0x90;
        assertEquals("OK", ask("Z0,400,1"));
        assertEquals((byte) 0xcc, target.memory[0x400]);
        assertEquals("OK", ask("Z0,400,1"), "twice is no error");
        assertEquals("E14", ask("Z0,30000,1"), "not in memory");
        assertNull(ask("c"));
        assertEquals(Set.of(0x400L), target.lastSw);
        session.targetStopped(StopEvent.of(1, StopEvent.Kind.SW_BREAK));
        assertEquals("OK", ask("z0,400,1"));
        assertEquals((byte) 0x90, target.memory[0x400]);
        assertEquals("OK", ask("z0,400,1"), "removing one that is not there");
    }

    @Test
    void softwareBreakpointsAreRefusedWhereTheTargetCannotRunInt3() {
        GdbTarget noInt3 = new FakeTarget() {
            @Override
            public boolean softwareBreakpoints() {
                return false;
            }
        };
        session = new GdbSession(noInt3, b -> sent.add(new String(b, StandardCharsets.ISO_8859_1)));
        assertEquals("E01", ask("Z0,400,1"));
        assertEquals(0, ((FakeTarget) noInt3).memory[0x400], "nothing patched");
        assertEquals("OK", ask("Z1,400,1"), "a hardware breakpoint instead");
    }

    @Test
    void hardwareBreakpointsAndWatchpointsUseTheDebugRegisters() {
        assertEquals("OK", ask("Z1,1000,1"));
        assertEquals("OK", ask("Z2,2000,4"));
        assertEquals("OK", ask("Z3,3000,8"));
        assertEquals("OK", ask("Z4,4001,1"));
        assertEquals("E28", ask("Z1,5000,1"), "all four debug registers are in use");
        assertEquals("E22", ask("Z2,2001,4"), "misaligned");
        assertEquals("E22", ask("Z2,2000,3"), "no such length");
        assertEquals("E22", ask("Z5,2000,1"));
        assertNull(ask("vCont;c"));
        long[] dr = target.lastDr;
        assertEquals(0x1000, dr[0]);
        assertEquals(0x2000, dr[1]);
        assertEquals(0x3000, dr[2]);
        assertEquals(0x4001, dr[3]);
        // G0..G3, GE; slot 0 execute/1, slot 1 write/4, slot 2 read-write/8, slot 3 read-write/1
        long dr7 = 0xaa | 1 << 9 | 0x0L << 16 | 0xdL << 20 | 0xbL << 24 | 0x3L << 28;
        assertEquals(dr7, dr[7]);
        session.targetStopped(new DebugRegisters().classify(0, 0) /* a step */);
        assertEquals("OK", ask("z2,2000,4"));
        assertEquals("OK", ask("Z1,5000,1"), "a freed register is used again");
        DebugRegisters d = session.debugRegisters();
        assertEquals(StopEvent.Kind.HW_BREAK, d.classify(0, 1).kind());
        assertEquals(new StopEvent(1, StopEvent.Kind.RWATCH, 0x3000), d.classify(1, 4));
        assertEquals(StopEvent.Kind.STEP, d.classify(0, 1 << 14).kind());
    }

    @Test
    void continueStepAndVCont() {
        assertEquals("vCont;c;C;s;S", ask("vCont?"));
        assertNull(ask("c"));
        assertArrayEquals(new GdbTarget.Action[] {GdbTarget.Action.CONTINUE, GdbTarget.Action.CONTINUE}, target.lastActions);
        assertTrue(session.running());
        // while running, only Ctrl-C counts
        assertNull(ask("g"));
        feed("\u0003");
        assertEquals(1, target.interrupts);
        sent.clear();
        session.targetStopped(StopEvent.of(1, StopEvent.Kind.INTERRUPT));
        assertEquals("$T02thread:2;#" , sent.get(0).substring(0, sent.get(0).length() - 2));
        assertFalse(session.running());
        assertEquals("T02thread:2;", ask("?"));
        // s steps the stopped thread, the other continues
        assertNull(ask("s"));
        assertArrayEquals(new GdbTarget.Action[] {GdbTarget.Action.CONTINUE, GdbTarget.Action.STEP}, target.lastActions);
        session.targetStopped(StopEvent.of(1, StopEvent.Kind.STEP));
        assertNull(ask("vCont;s:1;c"));
        assertArrayEquals(new GdbTarget.Action[] {GdbTarget.Action.STEP, GdbTarget.Action.CONTINUE}, target.lastActions);
        session.targetStopped(new StopEvent(0, StopEvent.Kind.WATCH, 0x2000));
        assertEquals("T05thread:1;watch:2000;", ask("?"));
        assertNull(ask("vCont;s:2"));
        assertArrayEquals(new GdbTarget.Action[] {GdbTarget.Action.STOP, GdbTarget.Action.STEP}, target.lastActions);
        session.targetStopped(StopEvent.of(1, StopEvent.Kind.HW_BREAK));
        assertEquals("E01", ask("vCont;c:7"));
        assertEquals("E22", ask("vCont;x"));
        assertEquals("E22", ask("vCont;"));
        assertNull(ask("vCont;C05:1;c"));
        session.targetStopped(StopEvent.of(0, StopEvent.Kind.SW_BREAK));
        // c ADDR continues from ADDR
        assertNull(ask("c500"));
        assertEquals(0x500, X86Registers.get(target.regs[0], X86Registers.RIP));
    }

    @Test
    void detachRestoresBreakpointsAndEnds() {
        target.memory[0x10] = 0x55;
        ask("Z0,10,1");
        assertEquals("OK", ask("D"));
        assertEquals(0x55, target.memory[0x10]);
        assertEquals(1, target.detaches);
        assertTrue(session.closed());
        sent.clear();
        feed("$g#67");
        assertTrue(sent.isEmpty(), "nothing answered after the detach: " + sent);
    }

    @Test
    void killEndsTheRun() {
        assertNull(ask("k"));
        assertEquals(1, target.kills);
        assertTrue(session.closed());
    }

    @Test
    void aDisconnectMidPacketDetachesCleanly() {
        target.memory[0x10] = 0x55;
        ask("Z0,10,1");
        assertNull(ask("c"));
        feed("$m0,4");
        session.disconnected();
        assertEquals(0x55, target.memory[0x10], "int3 removed even though the guest ran");
        assertEquals(1, target.detaches);
        assertTrue(session.closeReason().contains("middle of a packet"), session.closeReason());
    }

    @Test
    void badChecksumsAreNackedAndRetransmissionsServed() {
        sent.clear();
        feed("$g#00");
        assertEquals(List.of("-"), sent);
        ask("qC");
        String reply = sent.get(1);
        sent.clear();
        feed("-");
        assertEquals(List.of(reply), sent, "a '-' from gdb gets the last packet again");
    }

    @Test
    void noAckModeStopsAcknowledgements() {
        assertEquals("OK", ask("QStartNoAckMode"));
        sent.clear();
        byte[] f = Rsp.frame("qC");
        session.receive(f, 0, f.length);
        assertEquals(1, sent.size());
        assertTrue(sent.get(0).startsWith("$QC1#"));
    }

    @Test
    void anOversizedPacketEndsTheSessionCleanly() {
        feed("$" + "m".repeat(Rsp.PACKET_SIZE + 1));
        assertTrue(session.closed());
        assertEquals(1, target.detaches);
    }

    @Test
    void theVmEndingIsReported() {
        assertNull(ask("c"));
        sent.clear();
        session.targetExited(33);
        assertTrue(sent.get(0).startsWith("$W21#"), sent.toString());
        assertTrue(session.closed());
    }

    @Test
    void unknownAndMalformedPacketsGetEmptyOrErrorReplies() {
        assertEquals("", ask("vMustReplyEmpty"));
        assertEquals("", ask("qTStatus"));
        assertEquals("", ask("!"));
        assertEquals("1", ask("qAttached"));
        assertEquals("E22", ask("Z"));
        assertEquals("E22", ask("Z0,zz,1"));
        assertEquals("E22", ask("H"));
        assertEquals("E22", ask("Tpa.b"));
        java.util.Random r = new java.util.Random(5);
        for (int i = 0; i < 2000; i++) {
            byte[] junk = new byte[r.nextInt(40)];
            for (int k = 0; k < junk.length; k++) junk[k] = (byte) ("gGpPmMXZzHTqQvcs?0123456789abcdef,:;=-".charAt(r.nextInt(38)));
            if (junk.length > 0 && (junk[0] == 'c' || junk[0] == 's' || junk[0] == 'k' || junk[0] == 'D' || junk[0] == 'v')) continue;
            byte[] f = Rsp.frame(junk);
            session.receive(f, 0, f.length);
            if (session.running()) session.targetStopped(StopEvent.of(0, StopEvent.Kind.INTERRUPT));
        }
        assertFalse(session.closed());
        assertEquals("QC1", ask("qC"));
    }
}
