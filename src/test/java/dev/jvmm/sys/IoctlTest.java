package dev.jvmm.sys;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Bit packing of ioctl numbers. The kernel's generic {@code _IOC(dir, type, nr, size)} (used on x86) is
 * {@code dir << 30 | size << 16 | type << 8 | nr}, with {@code _IOC_NONE = 0}, {@code _IOC_WRITE = 1},
 * {@code _IOC_READ = 2} and a 14-bit size field.
 */
class IoctlTest {

    @Test
    void packsDirectionSizeTypeAndNumber() {
        // _IO(0xAE, 0x01) = 0xAE << 8 | 0x01 (KVM_CREATE_VM)
        assertEquals(0x0000_AE01L, Ioctl.io(0xAE, 0x01));
        // _IOR(0xAE, 0x81, 144) = 2 << 30 | 144 << 16 | 0xAE << 8 | 0x81 = 0x8000_0000 | 0x0090_0000 | 0xAE81
        // (KVM_GET_REGS); bit 31 set, and the result must not be sign-extended
        assertEquals(0x8090_AE81L, Ioctl.ior(0xAE, 0x81, 144));
        // _IOW(0xAE, 0x82, 144) = 1 << 30 | 144 << 16 | 0xAE82 (KVM_SET_REGS)
        assertEquals(0x4090_AE82L, Ioctl.iow(0xAE, 0x82, 144));
        // _IOWR(0xAE, 0x05, 8) = 3 << 30 | 8 << 16 | 0xAE05 (KVM_GET_SUPPORTED_CPUID)
        assertEquals(0xC008_AE05L, Ioctl.iowr(0xAE, 0x05, 8));
    }

    @Test
    void sizeMustFitFourteenBits() {
        // the largest size: _IOW(0xAE, 0x00, 0x3FFF) = 0x4000_0000 | 0x3FFF_0000 | 0xAE00
        assertEquals(0x7FFF_AE00L, Ioctl.iow(0xAE, 0x00, (1 << 14) - 1));
        assertThrows(IllegalArgumentException.class, () -> Ioctl.iow(0xAE, 0x00, 1 << 14));
        assertThrows(IllegalArgumentException.class, () -> Ioctl.ior(0xAE, 0x00, -1));
    }
}
