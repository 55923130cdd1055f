"""Digital UART gas modules: the Winsen ZE07-CO frame parser and a channel around it.

ZE07-CO (9600 8N1) in its default active-upload mode sends one 9-byte frame a second:
    FF 04 03 01 CH CL FH FL CS
    0x04 gas = CO, 0x03 unit = ppm, 0x01 decimals, CH:CL concentration (×10 with one
    decimal), FH:FL full scale, CS = (-(sum of bytes 1..7)) & 0xFF
A frame is valid when byte 0 is 0xFF and the sum of bytes 1..8 is 0 mod 256
(standards.md §7; note the widely copied example ending in 0x25 has a wrong checksum).

    ch = UartChannel(uart, clock, cfg)   uart: read(n) -> bytes/None (non-blocking),
                                          or readinto(buf) -> count/None (no allocation)
    ch.sample()   drain the UART, parse frames, update ppm_x10 and faults
Same attributes as gasguard.sensing.Channel (ppm_x10, raw_uv (always 0), filtered_uv,
fault, fault_bits, reading_valid, warming_up, over_range, gas, set_age_days,
set_environment). Fault codes: "sensor_comm" (no valid frame for timeout_s, or
bad_frames checksum/format errors in a row), "end_of_life".
The module is factory calibrated: there is no calibration record for it.
"""

from gasguard.sensing import F_COMM, F_EOL  # the one fault table of every channel kind
from gasguard.validate import ConfigError, need_int, reject_unknown

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


FRAME_LEN = const(9)
GAS_CO = const(0x04)
UNIT_PPM = const(0x03)
CMD_QA_MODE = b"\xff\x01\x78\x41\x00\x00\x00\x00\x46"
CMD_ACTIVE_MODE = b"\xff\x01\x78\x40\x00\x00\x00\x00\x47"
CMD_READ = b"\xff\x01\x86\x00\x00\x00\x00\x00\x79"



def checksum(frame):
    """Checksum byte for a 9-byte frame (over bytes 1..7)."""
    s = 0
    for i in range(1, 8):
        s += frame[i]
    return (-s) & 0xFF


def frame_ok(frame):
    if len(frame) != FRAME_LEN or frame[0] != 0xFF:
        return False
    s = 0
    for i in range(1, 9):
        s += frame[i]
    return s & 0xFF == 0


def make_frame(ppm_x10, full_scale_x10=5000):
    """An active-upload frame (for the simulator and tests)."""
    f = bytearray((0xFF, GAS_CO, UNIT_PPM, 0x01, (ppm_x10 >> 8) & 0xFF, ppm_x10 & 0xFF,
                   (full_scale_x10 >> 8) & 0xFF, full_scale_x10 & 0xFF, 0))
    f[8] = checksum(f)
    return bytes(f)


class ZE07Parser:
    """Byte-at-a-time frame assembly with resynchronisation; no allocation per byte."""

    def __init__(self):
        self._buf = bytearray(FRAME_LEN)
        self._n = 0
        self.value_x10 = -1  # last valid concentration, ppm×10
        self.full_scale_x10 = 0
        self.frames = 0  # valid frames (capped)
        self.errors = 0  # bad frames in a row

    def feed_byte(self, b):
        """Returns 1 for a valid frame, -1 for a bad one, 0 while assembling."""
        buf = self._buf
        if self._n == 0 and b != 0xFF:
            return 0  # hunting for the start byte
        buf[self._n] = b
        self._n += 1
        if self._n < FRAME_LEN:
            return 0
        self._n = 0
        s = 0
        i = 1
        while i < FRAME_LEN:
            s += buf[i]
            i += 1
        if s & 0xFF or buf[1] != GAS_CO or buf[2] != UNIT_PPM or buf[3] > 2:
            self.errors += 1 if self.errors < 1000 else 0
            # resync: restart at the next 0xFF inside the rejected frame
            i = 1
            while i < FRAME_LEN and buf[i] != 0xFF:
                i += 1
            j = 0
            while i < FRAME_LEN:
                buf[j] = buf[i]
                i += 1
                j += 1
            self._n = j
            return -1
        v = (buf[4] << 8) | buf[5]
        fs = (buf[6] << 8) | buf[7]
        d = buf[3]  # decimals: 0 -> ×10, 1 -> as is, 2 -> /10
        if d == 0:
            v *= 10
            fs *= 10
        elif d == 2:
            v //= 10
            fs //= 10
        self.value_x10 = v
        self.full_scale_x10 = fs
        self.errors = 0
        if self.frames < 1000000:
            self.frames += 1
        return 1

    def feed(self, data, n=None):
        """Feed bytes; returns the number of valid frames completed."""
        good = 0
        if n is None:
            n = len(data)
        i = 0
        while i < n:
            if self.feed_byte(data[i]) == 1:
                good += 1
            i += 1
        return good


KEYS = ("timeout_s", "bad_frames", "warmup_s", "service_life_days", "range_ppm")


class UartChannel:
    def __init__(self, uart, clock, cfg=None):
        cfg = {} if cfg is None else cfg
        if not isinstance(cfg, dict):
            raise ConfigError("uart channel: expected a dict, got %r" % (cfg,))
        reject_unknown(cfg, KEYS, "uart channel")
        self.timeout_ms = need_int(cfg, "timeout_s", 2, 60, 5) * 1000
        self.bad_frames = need_int(cfg, "bad_frames", 1, 20, 3)
        self.warmup_ms = need_int(cfg, "warmup_s", 0, 7200, 180) * 1000
        self.service_life_days = need_int(cfg, "service_life_days", 30, 7300, 1826)
        self.range_ppm_x10 = need_int(cfg, "range_ppm", 10, 10000, 500) * 10
        self.uart = uart
        self.clock = clock
        self.parser = ZE07Parser()
        self._rx = bytearray(32)
        self._mv = memoryview(self._rx)
        self.gas = "co"
        self.model = None
        self.cal = None
        self.cal_problem = None
        self.age_days = 0
        self.raw_uv = 0
        self.ppm_x10 = 0
        self.filtered_uv = 0
        self.over_range = False
        self._last_t = clock.ticks_ms()
        self._warm = 0
        self._silent = 0
        self.warming_up = self.warmup_ms > 0
        self._set_bits(0)

    def set_age_days(self, days):
        if isinstance(days, bool) or not isinstance(days, int) or days < 0 or days > 100000:
            raise ValueError("age_days: %r is not a day count" % (days,))
        self.age_days = days
        b = self.fault_bits & ~F_EOL
        self._set_bits(b | F_EOL if days >= self.service_life_days else b)

    def set_environment(self, temp_c_x10, rh_pct=None):
        pass  # compensated inside the module

    def _read(self):
        u = self.uart
        if hasattr(u, "readinto"):
            n = u.readinto(self._mv)
            return 0 if not n else n
        data = u.read(32)
        if not data:
            return 0
        n = len(data)
        self._rx[0:n] = data
        return n

    def sample(self):
        now = self.clock.ticks_ms()
        dt = self.clock.ticks_diff(now, self._last_t)
        self._last_t = now
        if dt < 0:
            dt = 0
        elif dt > 1 << 24:
            dt = 1 << 24
        if self.warming_up:
            self._warm += dt
            if self._warm >= self.warmup_ms:
                self.warming_up = False
        p = self.parser
        got = 0
        k = 0
        while k < 8:  # bounded: at most 8 reads of 32 bytes per sample
            n = self._read()
            if not n:
                break
            got += p.feed(self._rx, n)
            k += 1
        bits = self.fault_bits
        if got:
            self._silent = 0
            bits &= ~F_COMM
        else:
            self._silent += dt
            if self._silent >= self.timeout_ms:
                self._silent = self.timeout_ms
                bits |= F_COMM
        if p.errors >= self.bad_frames:
            bits |= F_COMM
        v = p.value_x10
        if v < 0:
            v = 0
        self.over_range = v >= self.range_ppm_x10
        if self.over_range:
            v = self.range_ppm_x10
        self.filtered_uv = v
        self._set_bits(bits)
        self.ppm_x10 = 0 if bits & F_COMM else v
        return self.ppm_x10

    def _set_bits(self, bits):
        self.fault_bits = bits
        self.reading_valid = not bits & F_COMM
        if bits & F_COMM:
            self.fault = "sensor_comm"
        elif bits & F_EOL:
            self.fault = "end_of_life"
        else:
            self.fault = None

    def active_faults(self):
        out = []
        if self.fault_bits & F_COMM:
            out.append("sensor_comm")
        if self.fault_bits & F_EOL:
            out.append("end_of_life")
        return out
