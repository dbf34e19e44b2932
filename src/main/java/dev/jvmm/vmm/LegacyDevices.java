package dev.jvmm.vmm;

import dev.jvmm.arch.x86.PcPlatform;
import dev.jvmm.device.Bus;
import dev.jvmm.device.ByteSink;
import dev.jvmm.device.IrqLine;
import dev.jvmm.device.legacy.AcpiPm;
import dev.jvmm.device.legacy.CmosRtc;
import dev.jvmm.device.legacy.DebugExit;
import dev.jvmm.device.legacy.I8042;
import dev.jvmm.device.legacy.I8254;
import dev.jvmm.device.legacy.PortSink;
import dev.jvmm.device.legacy.PvPanic;
import dev.jvmm.device.legacy.SystemControlPortB;
import dev.jvmm.device.legacy.Uart16550;
import dev.jvmm.event.EventLoop;

import java.time.Clock;
import java.util.function.Consumer;

/**
 * The PC's legacy devices on the port bus, at the ports {@link PcPlatform} names (which the MP and
 * ACPI tables describe): COM1, isa-debug-exit, the i8042 (its reset line), the CMOS RTC, the ACPI
 * power-management registers and pvpanic (with ACPI), jvmm's own i8254 when asked for (--pit user, its channel 0
 * driven by event-loop timers), and a sink for POST codes at 0x80.
 */
final class LegacyDevices {
    /** The VM's interrupt lines, by GSI. */
    interface Irqs {
        IrqLine line(int gsi);
    }

    private final Uart16550 com1;

    /**
     * @param console where COM1's output goes (a vCPU writing to a full console waits)
     * @param stop    how a device ends the run (debug exit, reset, power off)
     */
    LegacyDevices(Bus pio, Irqs irqs, ByteSink console, Consumer<Stop> stop, VmConfig config, EventLoop loop) {
        com1 = new Uart16550(irqs.line(PcPlatform.COM1_IRQ), console::put);
        pio.register("com1", PcPlatform.COM1_PORT, Uart16550.LENGTH, com1);
        pio.register("isa-debug-exit", PcPlatform.DEBUG_EXIT_PORT, 1,
                new DebugExit((s, why) -> stop.accept(new Stop(StopCause.DEBUG_EXIT, s, why))));
        I8042 i8042 = new I8042((s, why) -> stop.accept(new Stop(StopCause.RESET, ExitStatus.OK, why)));
        pio.register("i8042", PcPlatform.I8042_DATA_PORT, 1, i8042);
        pio.register("i8042", PcPlatform.I8042_COMMAND_PORT, 1, i8042.commandPort());
        pio.register("rtc", PcPlatform.RTC_PORT, CmosRtc.LENGTH, new CmosRtc(config.memBytes(), Clock.systemUTC()));
        if (config.acpi()) {
            pio.register("acpi-pm", AcpiPm.BASE_PORT, AcpiPm.LENGTH, new AcpiPm(
                    (s, why) -> stop.accept(new Stop(StopCause.POWER_OFF, s, why)),
                    () -> stop.accept(new Stop(StopCause.RESET, ExitStatus.OK, "the guest reset the machine (ACPI)"))));
        }
        if (config.acpi()) { // announced in the DSDT: only a kernel with ACPI finds it
            pio.register("pvpanic", PvPanic.PORT, 1, new PvPanic(
                    how -> stop.accept(new Stop(StopCause.GUEST_PANIC, ExitStatus.GUEST_PANIC, how))));
        }
        if (config.pit() == VmConfig.PitMode.USER) startUserPit(pio, irqs, loop);
        pio.register("post-code", PcPlatform.POST_PORT, 1, new PortSink());
    }

    /** COM1, the console's default input and output. */
    Uart16550 com1() {
        return com1;
    }

    /** --pit=user: jvmm's i8254 on ports 0x40-0x43 and 0x61, its channel 0 driven by event-loop timers. */
    private static void startUserPit(Bus pio, Irqs irqs, EventLoop loop) {
        I8254 pit = new I8254(System::nanoTime, irqs.line(I8254.IRQ));
        pio.register("pit", I8254.BASE_PORT, I8254.LENGTH, pit);
        pio.register("port61", SystemControlPortB.PORT, SystemControlPortB.LENGTH, new SystemControlPortB(pit));
        EventLoop.Timer[] timer = new EventLoop.Timer[1];
        Runnable[] rearm = new Runnable[1];
        rearm[0] = () -> {
            if (timer[0] != null) timer[0].cancel();
            timer[0] = null;
            long deadline = pit.nextDeadlineNanos();
            if (deadline != Long.MAX_VALUE) {
                timer[0] = loop.schedule(Math.max(0, deadline - System.nanoTime()), () -> {
                    pit.advance();
                    rearm[0].run();
                });
            }
        };
        pit.setDeadlineListener(() -> loop.execute(rearm[0]));
        rearm[0].run();
    }
}
