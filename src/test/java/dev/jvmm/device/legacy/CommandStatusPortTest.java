package dev.jvmm.device.legacy;

import dev.jvmm.loader.initramfs.RootfsInit;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class CommandStatusPortTest extends StatusReportsTest {
    private final CommandStatusPort port = new CommandStatusPort(this::report);

    @Test
    void theInitsPortAndCodes() {
        assertEquals(RootfsInit.STATUS_PORT, CommandStatusPort.PORT);
        assertEquals(RootfsInit.EXIT_SETUP_FAILED, CommandStatusPort.INVALID_STATUS);
    }

    @Test
    void thePhaseByteReportsTheInitsMilestones() {
        assertEquals(RootfsInit.PHASE_PORT, CommandStatusPort.PORT + CommandStatusPort.PHASE_OFFSET);
        List<Integer> phases = new java.util.ArrayList<>();
        CommandStatusPort p = new CommandStatusPort(this::report, phases::add);
        for (int v : new int[] {1, 2, 0, 5, 255, 3, 4}) p.write(CommandStatusPort.PHASE_OFFSET, 1, v);
        p.write(CommandStatusPort.PHASE_OFFSET, 4, 2); // not a byte
        p.write(CommandStatusPort.PHASE_OFFSET + 1, 1, 2); // not the phase byte
        assertEquals(List.of(1, 2, 3, 4), phases);
        assertEquals(5, p.ignoredWrites());
        assertFalse(p.reported(), "a phase is no status");
        assertTrue(statuses.isEmpty());
    }

    @Test
    void theFirstWriteIsTheStatus() {
        assertFalse(port.reported());
        port.write(0, 4, 3);
        assertEquals(List.of(3), statuses);
        assertEquals("the command exited with status 3", reasons.get(0));
        assertTrue(port.reported());
        port.write(0, 4, 0);
        assertEquals(List.of(3), statuses, "only the first report counts");
        assertEquals(1, port.ignoredWrites());
    }

    @Test
    void zeroAndTheLargestStatus() {
        port.write(0, 4, 0);
        assertEquals(List.of(0), statuses);
        CommandStatusPort other = new CommandStatusPort((s, why) -> statuses.add(s));
        other.write(0, 4, 255);
        assertEquals(List.of(0, 255), statuses);
    }

    @Test
    void signalsAndTheInitsOwnCodesAreNamed() {
        assertEquals("the command exited with status 137 (128 + signal 9)", CommandStatusPort.describe(137));
        assertEquals("the command exited with status 127 (the command was not found)", CommandStatusPort.describe(127));
        assertEquals("the command exited with status 126 (the command cannot be executed)", CommandStatusPort.describe(126));
        assertEquals("the command exited with status 125 (the guest could not be set up)", CommandStatusPort.describe(125));
        assertEquals("the command exited with status 128", CommandStatusPort.describe(128));
    }

    /** Above 255 is a broken guest: never masked to the low byte (0x100 would be a success), reported as 125. */
    @Test
    void aValueAbove255IsAGuestError() {
        port.write(0, 4, 0x100);
        assertEquals(List.of(125), statuses);
        assertEquals("the guest reported exit status 256 (0x100), more than 255: counted as 125", reasons.get(0));
        CommandStatusPort other = new CommandStatusPort((s, why) -> statuses.add(s));
        other.write(0, 4, 0xffff_ffffL);
        assertEquals(List.of(125, 125), statuses);
    }

    @Test
    void otherSizesAndOffsetsAreIgnored() {
        port.write(0, 1, 1);
        port.write(0, 2, 1);
        port.write(0, 8, 1);
        port.write(1, 4, 1);
        port.write(2, 1, 1);
        assertEquals(List.of(), statuses);
        assertFalse(port.reported(), "a stray write does not use up the one report");
        assertEquals(5, port.ignoredWrites());
        port.write(0, 4, 42);
        assertEquals(List.of(42), statuses);
    }

    @Test
    void readsAllOnes() {
        assertReadsAllOnesAndReportsNothing(port);
    }
}
