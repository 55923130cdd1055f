"""Binds the gasguard hardware boundary to the ESP32's `machine` module.

This is the only place (with esp32_radio.py) that imports machine. Everything it
returns has the small interfaces described in docs/architecture.md, so the logic in
firmware/gasguard/ never knows it runs on real hardware.
"""

import sys
import time

import machine
import select


class AnalogIn:
    """An ADC pin at 11 dB attenuation; read_uv() applies the chip's eFuse calibration."""

    def __init__(self, gpio):
        self._adc = machine.ADC(machine.Pin(gpio), atten=machine.ADC.ATTN_11DB)

    def read_uv(self):
        return self._adc.read_uv()


def output(gpio, active_low=False, value=0):
    pin = machine.Pin(gpio, machine.Pin.OUT, value=value ^ active_low)
    return machine.Signal(pin, invert=active_low)


def input_pin(gpio, pull_up=True, active_low=True):
    pin = machine.Pin(gpio, machine.Pin.IN, machine.Pin.PULL_UP if pull_up else None)
    return machine.Signal(pin, invert=active_low)


class Console:
    """USB serial as a non-blocking byte stream (the service protocol's line)."""

    def __init__(self):
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._in = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
        self._out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else sys.stdout

    def read(self, n=64):
        """Up to n bytes that are already waiting; None when there are none. Never waits:
        stdin only promises one byte per ready poll, so read byte by byte while it is ready."""
        buf = None
        while n > 0 and self._poll.poll(0):
            b = self._in.read(1)
            if not b:
                break
            buf = b if buf is None else buf + b
            n -= 1
        return buf

    def write(self, data):
        return self._out.write(data)


class Board:
    """The boundary objects of one ESP32 board, built from its pin map (pins.py)."""

    def __init__(self, pins):
        self.pins = pins
        self.clock = time  # ticks_ms/ticks_diff/ticks_add, wrapping at 2**30
        self.console = Console()
        for name, gpio in pins.get("adc", {}).items():
            setattr(self, name, AnalogIn(gpio))
        for name, spec in pins.get("out", {}).items():
            setattr(self, name, output(spec[0], spec[1]))
        for name, spec in pins.get("in", {}).items():
            setattr(self, name, input_pin(spec[0], spec[1], spec[2]))
        for name in pins.get("absent", ()):
            setattr(self, name, None)

    def rs485(self, cfg):
        """The RS-485 line as (uart, de) for gasguard.modbus_rtu, from the pin map's rs485
        entry and a checked modbus config; None when the board has no transceiver.
        timeout=0: reads never wait; txbuf: writes queue the reply and return at once (the
        slave releases DE when txdone() says the last stop bit has left)."""
        spec = self.pins.get("rs485")
        if spec is None:
            return None
        parity = {"none": None, "even": 0, "odd": 1}[cfg["parity"]]
        uart = machine.UART(spec["uart"], baudrate=cfg["baud"], bits=8, parity=parity,
                            stop=cfg["stop_bits"], tx=spec["tx"], rx=spec["rx"], timeout=0,
                            timeout_char=0, rxbuf=512, txbuf=256)
        de = output(spec["de"][0], spec["de"][1])
        return uart, de

    def watchdog(self, timeout_ms):
        return machine.WDT(timeout=timeout_ms)

    def unique_id(self):
        return machine.unique_id()

    def reset_cause(self):
        causes = {
            machine.PWRON_RESET: "power_on",
            machine.HARD_RESET: "hard_reset",
            machine.WDT_RESET: "watchdog",
            machine.DEEPSLEEP_RESET: "deep_sleep",
            machine.SOFT_RESET: "soft_reset",
        }
        return causes.get(machine.reset_cause(), "unknown")

    def free_heap(self):
        import gc

        gc.collect()  # what is really free, not what the last collection left
        return gc.mem_free()

    def reboot(self):
        machine.reset()


def radio(channel):
    """The ESP-NOW radio (esp32_radio, loaded only for a device with a link)."""
    from esp32_radio import Radio

    return Radio(channel)


def wifi(ssid, password, hostname):
    """The Wi-Fi station as a poller (esp32_net, loaded only for a device that reports)."""
    from esp32_net import WiFi

    return WiFi(ssid, password, hostname)
