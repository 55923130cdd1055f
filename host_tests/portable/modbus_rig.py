"""A Modbus slave on a simulated line, for the modbus portable tests (not a test module).

    rig = Line(regs)                 # RtuSlave at address 7, 19200 baud even parity
    rig.ask(request(7, 4, 0, 0, 0, 3))   -> the reply bytes (b"" when there is none)
"""

from gasguard.modbus_rtu import RtuSlave, crc16, modbus_config, silence_us
from sim_rs485 import DePin, SimUart, SimUsClock

ADDRESS = 7


def with_crc(body):
    b = bytearray(body)
    c = crc16(b, len(b))
    b.append(c & 0xFF)
    b.append(c >> 8)
    return bytes(b)


def request(addr, fc, *words):
    """addr, fc, then 16-bit words big-endian, CRC appended."""
    b = bytearray([addr, fc])
    for w in words:
        b.append(w >> 8)
        b.append(w & 0xFF)
    return with_crc(b)


def crc_ok(frame):
    return len(frame) >= 4 and crc16(frame, len(frame) - 2) == frame[-2] | (frame[-1] << 8)


class TableRegs:
    """A register map for frame tests: read-only 0..9 (value 0x100 + address), one writable
    register 200 accepting 1..9; records every write that was carried out."""

    def __init__(self):
        self.done = []
        self.raise_on = None

    def read(self, space, start, count, buf, off):
        for i in range(count):
            a = start + i
            if a > 9:
                return 2
            v = 0x100 + a + (0x1000 if space else 0)
            buf[off] = v >> 8
            buf[off + 1] = v & 0xFF
            off += 2
        return 0

    def write(self, addr, value, dry):
        if addr != 200:
            return 2
        if value < 1 or value > 9:
            return 3
        if not dry:
            if value == self.raise_on:
                raise RuntimeError("device failed")
            self.done.append(value)
        return 0

    def ident(self):
        return ((0, b"gasguard"), (1, b"GG-T"), (2, b"0.1.0"), (4, b"test device"),
                (0x80, b"88.1.2/T1"))


class Line:
    def __init__(self, regs=None, address=ADDRESS, baud=19200, parity="even"):
        self.regs = regs or TableRegs()
        self.uart = SimUart()
        self.clock = SimUsClock()
        self.de = DePin()
        self.cfg = modbus_config({"address": address, "baud": baud, "parity": parity})
        self.slave = RtuSlave(self.uart, self.de, self.clock, self.cfg, self.regs)
        self.t35 = silence_us(self.cfg)

    def idle(self, us):
        """Let time pass in 500 us poll steps (a busy main loop)."""
        while us > 0:
            d = 500 if us > 500 else us
            self.clock.advance_us(d)
            self.slave.poll()
            us -= d

    def send(self, data):
        self.uart.feed(data)
        self.slave.poll()

    def ask(self, data):
        self.send(data)
        self.idle(self.t35 + 1000)
        return self.uart.take()
