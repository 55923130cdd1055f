"""A controller on a simulated RS-485 line in front of a device app (not a test module):
attach_modbus as main.py does it, then read and write like a gas alarm controller."""

from modbus_rig import ADDRESS, crc_ok, request
from gasguard.devices import attach_modbus
from sim_rs485 import SimUart, SimUsClock


def words(rep):
    assert crc_ok(rep), rep
    return [(rep[3 + 2 * i] << 8) | rep[4 + 2 * i] for i in range(rep[2] // 2)]


class Bus:
    def __init__(self, app, poll):
        self.uart = SimUart()
        self.clock = SimUsClock()
        self.poll = poll
        cfg = {"modbus": {"address": ADDRESS, "baud": 38400}}
        self.slave = attach_modbus(app, lambda c: (self.uart, None), self.clock, cfg)

    def ask(self, frame):
        self.uart.feed(frame)
        for _ in range(4):
            self.clock.advance_us(1000)
            self.poll()
        return self.uart.take()

    def regs(self, fc, start, n):
        return words(self.ask(request(ADDRESS, fc, start, n)))
