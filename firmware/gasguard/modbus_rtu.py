"""Modbus RTU slave on an RS-485 line: framing, CRC-16/MODBUS, timing, function codes.

    slave = RtuSlave(uart, de, clock, modbus_config(cfg["modbus"]), regs)
    app.pollers.append(slave)        # poll(): one bounded step, never waits

Boundary objects (passed in, never imported):
  uart   any() -> bytes waiting; readinto(buf, n) -> count (or None); write(buf, n) sends
         the first n bytes of buf (MicroPython stream semantics); optional txdone().
         machine.UART(timeout=0, txbuf=256) on the ESP32; a pseudo-terminal in the simulator.
  de     the transceiver's driver-enable output (value(x)), or None for an auto-direction
         transceiver.
  clock  ticks_us(), ticks_diff(new, old), ticks_add(t, d) (the time module on the ESP32).
  regs   the device's register map (gasguard.modbus_regs): read(space, start, n, buf, off)
         and write(addr, value, dry) return 0 or a Modbus exception code; ident() gives the
         device identification objects.

Framing follows the Modbus serial line spec (V1.02): a frame ends after a silence of
3.5 character times (fixed 1750 us above 19200 baud). The silence is measured between
the poll that last saw bytes and the poll that sees none, so a slow loop only merges
frames (which then fail their CRC and are dropped), it never splits one. t1.5 is not
enforced: the CRC rejects a frame with a gap inside. Frames with a bad CRC, shorter
than 4 bytes, longer than 256 bytes or for another address get no reply and change
nothing; a well-formed request the map refuses gets the exception reply (01-04).
Broadcasts (address 0) run writes (06, 16) and are never answered.

No allocation per poll or per request: one receive buffer, one reply buffer, the CRC
table, all made at construction (measured in host_tests/heap/test_modbus_heap.py).
"""

from array import array



def modbus_config(cfg):
    """The `modbus` section checked. The checks (gasguard.modbus, and gasguard.validate under
    it) are boot/CFG-only code (lazy.BOOT_ONLY): imported here at module level, they stayed
    resident behind the slave on every Modbus device (+2 KB, test_modbus_heap)."""
    from gasguard.modbus import config

    return config(cfg)

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_ADU_MAX = const(256)
_CHUNK = const(64)
_READS_PER_POLL = const(5)
_FAST_T35_US = const(1750)  # above 19200 baud (spec 2.5.1.1)

# function codes
_READ_HOLDING = const(3)
_READ_INPUT = const(4)
_WRITE_ONE = const(6)
_DIAGNOSTICS = const(8)
_WRITE_MANY = const(16)
_MEI = const(43)
_MEI_DEVICE_ID = const(14)

# exception codes
ILLEGAL_FUNCTION = const(1)
ILLEGAL_ADDRESS = const(2)
ILLEGAL_VALUE = const(3)
DEVICE_FAILURE = const(4)

INPUT = const(0)  # register spaces of regs.read()
HOLDING = const(1)

def _bits(cfg):
    return 9 + (0 if cfg["parity"] == "none" else 1) + cfg["stop_bits"]


def char_us(cfg):
    """One character on the wire in microseconds (start + 8 data + parity + stop bits),
    rounded up."""
    return (_bits(cfg) * 1000000 + cfg["baud"] - 1) // cfg["baud"]


def silence_us(cfg):
    """t3.5, the inter-frame silence, rounded up; 1750 us above 19200 baud."""
    if cfg["baud"] > 19200:
        return _FAST_T35_US
    b2 = 2 * cfg["baud"]
    return (7 * _bits(cfg) * 1000000 + b2 - 1) // b2


def _crc_table():
    t = array("H", bytes(512))
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t[i] = c
    return t


_TABLE = _crc_table()


def crc16(buf, n):
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) of buf[0:n]; sent low byte first."""
    c = 0xFFFF
    t = _TABLE
    for i in range(n):
        c = (c >> 8) ^ t[(c ^ buf[i]) & 0xFF]
    return c


class RtuSlave:
    name = "modbus"

    def __init__(self, uart, de, clock, cfg, regs):
        self.uart = uart
        self.de = de
        self.clock = clock
        self.address = cfg["address"]
        self.cfg = cfg
        self.regs = regs
        self._char_us = char_us(cfg)
        self._t35 = silence_us(cfg)
        self._rx = bytearray(_ADU_MAX)
        self._chunk = bytearray(_CHUNK)
        self._tx = bytearray(_ADU_MAX)
        self._n = 0  # bytes of the frame being received
        self._over = False  # more than _ADU_MAX bytes without a silence: drop the lot
        self._last = clock.ticks_us()
        self._tx_until = 0
        self._sending = False
        self._txdone = getattr(uart, "txdone", None)  # bound once: no allocation per poll
        # counters (status(), docs/modbus.md)
        self.frames = 0  # well-formed frames for this address (or broadcast)
        self.replies = 0
        self.exceptions = 0
        self.crc_errors = 0
        self.short_frames = 0
        self.overruns = 0
        self.other_address = 0
        self.broadcasts = 0
        if de is not None:
            de.value(0)

    # ------------------------------------------------------------ step machine
    def poll(self):
        now = self.clock.ticks_us()
        if self._sending:
            self._tx_step(now)
            return
        uart = self.uart
        got = False
        for _ in range(_READS_PER_POLL):
            if not uart.any():
                break
            k = uart.readinto(self._chunk, _CHUNK)
            if not k:
                break
            got = True
            n = self._n
            if self._over or n + k > _ADU_MAX:
                self._over = True
                continue
            rx = self._rx
            ch = self._chunk
            for i in range(k):
                rx[n + i] = ch[i]
            self._n = n + k
        if got:
            self._last = now
            return
        if (self._n or self._over) and self.clock.ticks_diff(now, self._last) >= self._t35:
            n = self._n
            over = self._over
            self._n = 0  # consumed before it is handled: a failing reply cannot repeat it
            self._over = False
            if over:
                self.overruns += 1
            else:
                self._frame(n)

    def _tx_step(self, now):
        td = self._txdone
        done = td() if td is not None else self.clock.ticks_diff(now, self._tx_until) >= 0
        if not done:
            return
        if self.de is not None:
            self.de.value(0)
        self._sending = False
        # what the receiver heard while we drove the line (an echo) is not a request
        while self.uart.any():
            if not self.uart.readinto(self._chunk, _CHUNK):
                break
        self._n = 0
        self._over = False
        self._last = now

    def _send(self, n):
        tx = self._tx
        c = crc16(tx, n)
        tx[n] = c & 0xFF
        tx[n + 1] = c >> 8
        n += 2
        if self.de is not None:
            self.de.value(1)
        try:
            self.uart.write(tx, n)
        except Exception:
            if self.de is not None:
                self.de.value(0)  # never leave the line driven: it would block every slave
            raise
        self.replies += 1
        self._sending = True
        # when the last stop bit has left (used when the UART cannot tell)
        now = self.clock.ticks_us()
        self._tx_until = self.clock.ticks_add(now, n * self._char_us + self._t35)
        self._tx_step(now)

    def _exception(self, fc, code):
        tx = self._tx
        tx[0] = self.address
        tx[1] = fc | 0x80
        tx[2] = code
        self.exceptions += 1
        self._send(3)

    # ------------------------------------------------------------ one frame
    def _frame(self, n):
        rx = self._rx
        if n < 4:
            self.short_frames += 1
            return
        if crc16(rx, n - 2) != rx[n - 2] | (rx[n - 1] << 8):
            self.crc_errors += 1
            return
        addr = rx[0]
        if addr != self.address and addr != 0:
            self.other_address += 1
            return
        self.frames += 1
        fc = rx[1]
        if addr == 0:
            self.broadcasts += 1
            if fc == _WRITE_ONE or fc == _WRITE_MANY:
                try:
                    self._write(rx, n, fc)
                except Exception:
                    pass
            return  # a broadcast is never answered
        try:
            code = self._request(rx, n, fc)
        except Exception:
            code = DEVICE_FAILURE
        if code:
            self._exception(fc, code)

    def _request(self, rx, n, fc):
        """Answer one request for this address; return 0 (reply sent) or an exception code."""
        tx = self._tx
        if fc == _READ_INPUT or fc == _READ_HOLDING:
            if n != 8:
                return ILLEGAL_VALUE
            count = (rx[4] << 8) | rx[5]
            if count < 1 or count > 125:
                return ILLEGAL_VALUE
            code = self.regs.read(INPUT if fc == _READ_INPUT else HOLDING,
                                  (rx[2] << 8) | rx[3], count, tx, 3)
            if code:
                return code
            tx[0] = self.address
            tx[1] = fc
            tx[2] = 2 * count
            self._send(3 + 2 * count)
            return 0
        if fc == _WRITE_ONE or fc == _WRITE_MANY:
            code = self._write(rx, n, fc)
            if code:
                return code
            for i in range(6):
                tx[i] = rx[i]
            self._send(6)
            return 0
        if fc == _DIAGNOSTICS:
            if n < 6:
                return ILLEGAL_VALUE
            if rx[2] or rx[3]:
                return ILLEGAL_FUNCTION  # only sub-function 0, return query data
            for i in range(n - 2):
                tx[i] = rx[i]
            self._send(n - 2)
            return 0
        if fc == _MEI:
            if n != 7:
                return ILLEGAL_VALUE
            if rx[2] != _MEI_DEVICE_ID:
                return ILLEGAL_FUNCTION
            return self._device_id(rx[3], rx[4])
        return ILLEGAL_FUNCTION

    def _write(self, rx, n, fc):
        regs = self.regs
        start = (rx[2] << 8) | rx[3]
        if fc == _WRITE_ONE:
            if n != 8:
                return ILLEGAL_VALUE
            value = (rx[4] << 8) | rx[5]
            code = regs.write(start, value, True)
            return code or regs.write(start, value, False)
        count = (rx[4] << 8) | rx[5]
        if n < 9 or count < 1 or count > 123 or rx[6] != 2 * count or n != 9 + 2 * count:
            return ILLEGAL_VALUE
        for dry in (True, False):  # all registers checked before any is written
            for i in range(count):
                code = regs.write(start + i, (rx[7 + 2 * i] << 8) | rx[8 + 2 * i], dry)
                if code:
                    return code
        return 0

    def _device_id(self, kind, first):
        """43/14 read device identification: 1 basic, 2 regular, 3 extended stream, 4 one
        object. Objects come from regs.ident() as ((id, bytes), ...) in id order."""
        objs = self.regs.ident()
        if kind < 1 or kind > 4:
            return ILLEGAL_VALUE
        top = (0x02, 0x7F, 0xFF, 0xFF)[kind - 1]
        if kind == 4:
            found = False
            for oid, _ in objs:
                if oid == first:
                    found = True
            if not found:
                return ILLEGAL_ADDRESS
        elif first > top:
            first = 0  # spec 6.21: an out-of-range start restarts at 0
        tx = self._tx
        tx[0] = self.address
        tx[1] = _MEI
        tx[2] = _MEI_DEVICE_ID
        tx[3] = kind
        tx[4] = 0x83  # conformity: extended identification, stream and individual access
        tx[5] = 0  # more follows
        tx[6] = 0  # next object id
        count = 0
        p = 8
        for oid, val in objs:
            if oid < first or oid > top or (kind == 4 and oid != first):
                continue
            ln = len(val)
            if p + 2 + ln > _ADU_MAX - 2:
                tx[5] = 0xFF
                tx[6] = oid
                break
            tx[p] = oid
            tx[p + 1] = ln
            for i in range(ln):
                tx[p + 2 + i] = val[i]
            p += 2 + ln
            count += 1
        tx[7] = count
        self._send(p)
        return 0

    def status(self):
        return {"address": self.address, "baud": self.cfg["baud"], "parity": self.cfg["parity"],
                "frames": self.frames, "replies": self.replies, "exceptions": self.exceptions,
                "crc_errors": self.crc_errors, "short_frames": self.short_frames,
                "overruns": self.overruns, "other_address": self.other_address,
                "broadcasts": self.broadcasts}
