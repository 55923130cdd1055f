"""Test double of boards/esp32-common/esp32_hal.py for running the boards' main.py (valve and
detector) on the unix port: the same attributes, built on simboard objects, real `time` as
clock."""

import time

from simboard import SimAnalogIn, SimConsole, SimPin

FEEDS = [0]
LIMIT = [300]


class Watchdog:
    def feed(self):
        FEEDS[0] += 1
        if FEEDS[0] >= LIMIT[0]:
            raise SystemExit("watchdog test limit")


class Board:
    def __init__(self, pins):
        self.pins = pins
        self.clock = time
        self.console = SimConsole()
        self.pressure = SimAnalogIn(700000)  # 2 kPa
        self.flow = SimAnalogIn(500000)
        self.supply = SimAnalogIn(1800000)
        self.trip = SimPin("trip", SimPin.OUT)
        self.led_green = SimPin("led_green", SimPin.OUT)
        self.led_red = SimPin("led_red", SimPin.OUT)
        self.switch = SimPin("switch", SimPin.IN)
        self.button = SimPin("button", SimPin.IN)
        # the detector board's parts (boards/esp32-detector/pins.py), clean air
        self.adc_ch4 = SimAnalogIn(686000)
        self.adc_co = SimAnalogIn(430000)
        self.adc_supply = SimAnalogIn(2500000)
        self.adc_interlock_sense = None
        for name in ("led_yellow", "buzzer", "relay", "heater"):
            setattr(self, name, SimPin(name, SimPin.OUT))

    def rs485(self, cfg):
        from sim_rs485 import DePin, SimUart

        self.rs485_cfg = cfg
        return SimUart(), DePin()

    def watchdog(self, timeout_ms):
        return Watchdog()

    def reset_cause(self):
        return "power_on"

    def free_heap(self):
        import gc

        return gc.mem_free() if hasattr(gc, "mem_free") else None  # None on CPython

    def reboot(self):
        raise SystemExit("reboot")


def radio(channel):
    from esp32_radio import Radio

    return Radio(channel)


def wifi(ssid, password, hostname):
    from esp32_net import WiFi

    return WiFi(ssid, password, hostname)
