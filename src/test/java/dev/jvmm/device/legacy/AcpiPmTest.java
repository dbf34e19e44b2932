package dev.jvmm.device.legacy;

import dev.jvmm.arch.x86.acpi.AcpiPorts;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class AcpiPmTest {
    private final List<String> events = new ArrayList<>();
    private final AcpiPm pm = new AcpiPm((status, reason) -> events.add(status + ":" + reason), () -> events.add("reset"));

    @Test
    void s5WithSlpEnPowersOff() {
        pm.write(0, 1, AcpiPorts.S5_SLP_TYP << 2 | 0x20);
        assertEquals(List.of("0:the guest powered off (ACPI S5)"), events);
    }

    @Test
    void s5WithoutSlpEnOrOtherSleepTypesAreIgnored() {
        pm.write(0, 1, AcpiPorts.S5_SLP_TYP << 2);          // SLP_TYP without SLP_EN
        for (int typ = 0; typ < 8; typ++) {
            if (typ != AcpiPorts.S5_SLP_TYP) {
                pm.write(0, 1, typ << 2 | 0x20);
            }
        }
        pm.write(1, 1, 0xff);
        assertEquals(List.of(), events);
    }

    @Test
    void resetValueResets() {
        pm.write(2, 1, 2);
        pm.write(2, 1, 0);
        assertEquals(List.of(), events);
        pm.write(2, 1, AcpiPorts.RESET_VALUE);
        assertEquals(List.of("reset"), events);
    }

    @Test
    void sleepStatusReadsZero() {
        assertEquals(0, pm.read(1, 1) & 0x80, "WAK_STS clear");
        assertEquals(0, pm.read(0, 1));
        assertEquals(0, pm.read(2, 1));
    }

    @Test
    void portsMatchTheFadtContract() {
        assertEquals(0x3c0, AcpiPm.BASE_PORT + AcpiPm.SLEEP_CONTROL);
        assertEquals(0x3c1, AcpiPm.BASE_PORT + AcpiPm.SLEEP_STATUS);
        assertEquals(0x3c2, AcpiPm.BASE_PORT + AcpiPm.RESET);
        assertEquals(3, AcpiPm.LENGTH);
    }
}
