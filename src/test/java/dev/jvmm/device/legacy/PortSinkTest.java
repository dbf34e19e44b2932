package dev.jvmm.device.legacy;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class PortSinkTest {
    @Test
    void readsZeroAfterWrites() {
        PortSink sink = new PortSink();
        sink.write(0, 1, 0xff);
        assertEquals(0, sink.read(0, 1));
        assertEquals(0, sink.read(0, 4));
    }
}
