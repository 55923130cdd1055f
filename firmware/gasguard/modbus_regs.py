"""What both devices' Modbus register maps share (docs/modbus.md is the published map).

One read-only address space, the same through function 03 and 04: the device's own
block from register 0 (gasguard.modbus_det, gasguard.modbus_valve), the common block
from 100 (map version, kind, firmware, uptime) and the command block at 200. The only
writable register is COMMAND (200): a controller may ask for a hush, a self-test or a
valve close, nothing else. Opening a valve, thresholds, calibration and configuration
are not reachable from the bus: such a write answers exception 02 (address) or 03
(value). A command goes through the same device entry points as the service console
and the platform downlink (gasguard.devices.CommandHandler -> app.hush(), ...), so the
same rules apply (e.g. no hush during a high methane alarm).

How the map may grow (MAP_VERSION): registers are only ever added, at addresses that
answered exception 02 before; an existing register never changes meaning, scale or
address. Adding registers or commands bumps MAP_VERSION by one; a change that would
break a reader is not made (it would be a new device kind instead).

A subclass provides KIND, COMMANDS (the command codes it accepts), SIZE (registers
0..SIZE-1 of its own block) and value(a) for 0 <= a < SIZE. Reads allocate nothing.
"""

from gasguard import VERSION

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


MAP_VERSION = const(1)
COMMON = const(100)  # first register of the common block
_COMMON_N = const(6)
COMMAND = const(200)  # the command register (write); reads the last command accepted
RESULT = const(201)  # outcome of the last command

# command codes (two ASCII letters, so a stray small value written by a controller
# configured for another device does nothing)
CMD_HUSH = const(0x4855)  # "HU"
CMD_SELF_TEST = const(0x5354)  # "ST"
CMD_CLOSE = const(0x434C)  # "CL": close the valve (detector: ask its interlocks)

# RESULT values
R_NONE = const(0)
R_DONE = const(1)
R_REFUSED = const(2)  # the device declined (e.g. hush during a high methane alarm)
R_FAILED = const(3)  # the device raised: the reply was exception 04

KIND_DETECTOR = const(1)
KIND_VALVE = const(2)

UNKNOWN = const(0xFFFF)  # a reading the device does not have or cannot trust
_U16 = const(0xFFFF)

# function-code-free exception codes (same values as gasguard.modbus_rtu)
_ILLEGAL_ADDRESS = const(2)
_ILLEGAL_VALUE = const(3)


def _version_words(v):
    parts = (v.split("-")[0] + ".0.0").split(".")
    return (int(parts[0]) << 8) | (int(parts[1]) & 0xFF), int(parts[2]) & _U16


def u16(x):
    """Clamp an int reading to 0..0xFFFE (0xFFFF means unknown); None -> unknown."""
    if x is None:
        return UNKNOWN
    if x < 0:
        return 0
    return x if x < _U16 else _U16 - 1


class RegisterMap:
    KIND = 0
    COMMANDS = ()
    SIZE = 0

    def __init__(self, app, handler, vendor, product, ident_id, model):
        self.app = app
        self.handler = handler  # gasguard.devices.CommandHandler(app)
        self._fw = _version_words(VERSION)
        self.last_command = 0
        self.last_result = R_NONE
        self._ident = ((0, vendor.encode()), (1, (model or product).encode()),
                       (2, VERSION.encode()), (4, product.encode()),
                       (0x80, (ident_id or "").encode()))

    def ident(self):
        """43/14 objects: 0 VendorName, 1 ProductCode, 2 MajorMinorRevision, 4 ProductName,
        0x80 (private) the industrial-internet identifier."""
        return self._ident

    def read(self, space, start, count, buf, off):
        """Registers start..start+count-1 big-endian into buf[off:]; 0 or exception 02."""
        for i in range(count):
            a = start + i
            if a < self.SIZE:
                v = self.value(a)
            elif COMMON <= a < COMMON + _COMMON_N:
                v = self._common(a - COMMON)
            elif a == COMMAND:
                v = self.last_command
            elif a == RESULT:
                v = self.last_result
            else:
                return _ILLEGAL_ADDRESS
            buf[off] = (v >> 8) & 0xFF
            buf[off + 1] = v & 0xFF
            off += 2
        return 0

    def _common(self, i):
        if i == 0:
            return MAP_VERSION
        if i == 1:
            return self.KIND
        if i == 2:
            return self._fw[0]
        if i == 3:
            return self._fw[1]
        up = self.app.uptime_s()
        return (up >> 16) & _U16 if i == 4 else up & _U16

    def write(self, addr, value, dry):
        """Only COMMAND is writable, only with a code this device accepts. dry=True checks."""
        if addr != COMMAND:
            return _ILLEGAL_ADDRESS
        if value not in self.COMMANDS:
            return _ILLEGAL_VALUE
        if dry:
            return 0
        self.last_command = value
        self.last_result = R_FAILED  # until the call below returns
        h = self.handler
        if value == CMD_HUSH:
            r = h.hush()
        elif value == CMD_SELF_TEST:
            r = h.self_test()
        else:
            r = h.close_valve()
        refused = isinstance(r, dict) and (r.get("hushed") is False or r.get("started") is False)
        self.last_result = R_REFUSED if refused else R_DONE
        return 0
