package dev.jvmm.vmm;

import dev.jvmm.device.BusDevice;
import dev.jvmm.device.ByteSink;
import dev.jvmm.device.ConsoleEndpoint;
import dev.jvmm.device.legacy.CommandStatusPort;
import dev.jvmm.device.virtio.VirtioDevice;
import dev.jvmm.device.virtio.VirtioSerial;
import dev.jvmm.event.EventLoop;
import dev.jvmm.loader.initramfs.RootfsInit;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class CommandPortsSpecTest {
    @Test
    void createsTheInitsPortsAndPutsTheStatusPortOnTheBus() throws Exception {
        List<String> ports = new ArrayList<>();
        List<BusDevice> devices = new ArrayList<>();
        try (EventLoop loop = new EventLoop()) {
            VirtioSpec.Context context = new VirtioSpec.Context() {
                @Override
                public ByteSink console() {
                    throw new AssertionError("the command's output is not the console's");
                }

                @Override
                public void consoleInput(ConsoleEndpoint endpoint) {
                    throw new AssertionError("stdin is the command's, not the console's");
                }

                @Override
                public EventLoop loop() {
                    return loop;
                }

                @Override
                public OutputStream commandStdout() {
                    return new ByteArrayOutputStream();
                }

                @Override
                public OutputStream commandStderr() {
                    return new ByteArrayOutputStream();
                }

                @Override
                public void ioPort(String name, int port, int length, BusDevice device) {
                    ports.add(name + "@0x" + Integer.toHexString(port) + "+" + length);
                    devices.add(device);
                }
            };
            VirtioSpec spec = new VirtioSpec.CommandPorts(false);
            assertEquals("virtio-serial", spec.kind());
            VirtioDevice d = spec.create(context);
            try {
                VirtioSerial serial = assertInstanceOf(VirtioSerial.class, d);
                assertEquals(3, serial.portCount());
                assertEquals(CommandChannel.STDIN, serial.portId(RootfsInit.STDIN_PORT));
                assertEquals(CommandChannel.STDOUT, serial.portId(RootfsInit.STDOUT_PORT));
                assertEquals(CommandChannel.STDERR, serial.portId(RootfsInit.STDERR_PORT));
                assertEquals(List.of("command-status@0x520+8"), ports, "the status port and the phase byte at 0x524");
                assertInstanceOf(CommandStatusPort.class, devices.get(0));
                assertEquals(0, serial.input(CommandChannel.STDIN).offer(new byte[1], 0, 1), "without stdin the input has ended");
            } finally {
                d.close();
            }
        }
    }
}
