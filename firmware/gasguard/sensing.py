"""The sensing pipeline as it runs: ADC -> oversampling -> filters -> sensor model with its
calibration -> ppm×10, and the faults. Integers only; nothing here allocates per sample.

This module is what stays resident on a detector (docs/heap-budget.md): the sample step of a
`Channel`, the filters, the two sensor models' forward and inverse paths, the supply monitor,
the Q12 log2/exp2 math and the one fault table. Everything that only builds these objects
from a config (checks, defaults, config-time floats -> integers) is gasguard.sensors, and
zero/span calibration (record, windows, gains, plausibility, the CAL checks) is
gasguard.calibration: both are boot/CFG/CAL-time code (gasguard.lazy.BOOT_ONLY), released
before the loop. What the alarm path needs of them are the plain integers they leave on
these objects. Build them with gasguard.sensors (`from_config`, `Channel`,
`SupplyMonitor`, `Pipeline`, ...): the classes here have no constructor of their own.

Sensor models (attributes set by gasguard.sensors, calibration by gasguard.calibration):
    gas, name                      "ch4"/"co", the config name
    ppm_x10(uv) -> int             forward path; clamps to 0..range_ppm_x10 and sets .status
                                   to OK, OVER or UNDER (gasguard.sensors)
    uv(ppm_x10) -> int             inverse, for the simulator, `gasguard replay` and the CAL
                                   alarm-point check (not on the sample path)
    set_cal(*state)                apply a calibration state (plain integers); `nominal` is
                                   the uncalibrated one
    clean_air_uv                   the µV of clean air for the current zero
    set_environment(temp_c_x10, rh_pct)   compensation (integers)
    rail_low_uv, rail_high_uv, warmup_s, stuck_s, range_ppm_x10, lel_ppm (methane)

Power laws are evaluated in the log2 domain with Q12 fixed point (1/4096 of a binary
order of magnitude, 0.017 % relative) using two 65-entry tables with linear
interpolation. The tables are constants, so results are bit-identical on every
interpreter.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


class CalibrationError(ValueError):
    """A calibration value that is not plausible for this sensor; the message says why.
    (Re-exported by gasguard.calibration.)"""


# model status (.status): OK, OVER (above the measuring range: reported at full scale, never
# hidden), UNDER (physically implausible low reading, e.g. far below the zero); private
# consts here (no globals), the names are gasguard.sensors.OK/OVER/UNDER
_OK = const(0)
_OVER = const(1)
_UNDER = const(2)

# ---- the one fault table of every sensing channel (ADC Channel, UART module, test doubles) --
# A channel reports its active faults as bits of `fault_bits` and its top fault as the code
# `fault`: FAULT_BITS[i] is the bit of FAULT_CODES[i], both listed from the highest priority
# down (the bit values are fixed: Modbus registers 3-4 carry them, docs/modbus.md). The
# detector turns bits into events and `diag` fault names ("co:sensor_comm") with this table,
# so a code means the same thing whatever the channel kind (test_channel_conformance.py).
# The bits only this module uses are const() (no global); the ones imported elsewhere are
# plain globals (a const() imported by name would be one anyway).
_F_SHORT = const(1)
_F_OPEN = const(2)
_F_RANGE = const(4)
_F_STUCK = const(8)
F_CAL = 16
F_EOL = 32
F_COMM = 64
INVALIDATING = 79  # short | open | range | stuck | comm: no usable reading
N_FAULTS = 7
FAULT_CODES = ("sensor_short", "sensor_open", "out_of_range", "sensor_stuck", "sensor_comm",
               "cal_missing", "end_of_life")
FAULT_BITS = (_F_SHORT, _F_OPEN, _F_RANGE, _F_STUCK, 64, 16, 32)  # F_COMM, F_CAL, F_EOL
_RAIL = const(3)  # short | open
_MAX_DT_MS = const(1 << 24)  # one sample gap counted at most ~4.6 h (timers saturate anyway)

_Q = const(12)  # log2 fixed point: value = x / 4096
_ONE = const(4096)
_EXP2_MAX = const(29 * 4096 - 1)  # result <= 2**29

# The two tables as bytes (a tuple of ints is ~4x the heap of these, measured): entry i is
# a little-endian u16 at 2i, the distance of the table value from the chord through its ends.
#   _LOG2: round(log2(1 + i/64) * 65536) - 1024·i            (log2 is above the chord)
#   _EXP2: 65536 + 1024·i - round(2 ** (i/64) * 65536)        (exp2 is below it)
# i = 0..64; test_sensing_properties.py rebuilds both from the formulas.
_LOG2 = (
    b"\x00\x00\xba\x01]\x03\xeb\x04d\x06\xc8\x07\x19\tV\n\x80\x0b\x98\x0c\x9f\r\x94\x0e"
    b"x\x0fL\x10\x10\x11\xc5\x11j\x12\x00\x13\x89\x13\x03\x14o\x14\xce\x14 \x15e\x15\x9d\x15"
    b"\xca\x15\xea\x15\xff\x15\x08\x16\x06\x16\xfa\x15\xe2\x15\xc0\x15\x94\x15^\x15\x1e\x15"
    b"\xd4\x14\x81\x14$\x14\xbe\x13P\x13\xd9\x12Y\x12\xd1\x11@\x11\xa8\x10\x07\x10_\x0f"
    b"\xaf\x0e\xf7\r8\rr\x0c\xa5\x0b\xd0\n\xf5\t\x13\t*\x08;\x07E\x06I\x05F\x04>\x03/\x02"
    b"\x1a\x01\x00\x00"
)
_EXP2 = (
    b"\x00\x006\x01e\x02\x8c\x03\xaa\x04\xc1\x05\xd0\x06\xd6\x07\xd4\x08\xca\t\xb8\n\x9c\x0b"
    b"x\x0cL\r\x16\x0e\xd8\x0e\x90\x0f?\x10\xe6\x10\x82\x11\x16\x12\x9f\x12\x1f\x13\x96\x13"
    b"\x02\x14e\x14\xbd\x14\x0c\x15P\x15\x89\x15\xb8\x15\xdc\x15\xf6\x15\x05\x16\t\x16\x01\x16"
    b"\xef\x15\xd1\x15\xa7\x15r\x152\x15\xe5\x14\x8d\x14(\x14\xb7\x13:\x13\xb0\x12\x19\x12"
    b"v\x11\xc6\x10\t\x10>\x0ff\x0e\x81\r\x8e\x0c\x8d\x0b~\nb\t7\x08\xfd\x06\xb5\x05^\x04"
    b"\xf9\x02\x84\x01\x00\x00"
)


def log2_q12(x):
    """log2(x) in Q12 for an int 1 <= x < 2**30 (x < 1 is treated as 1)."""
    if x < 1:
        return 0
    e = 0
    t = x
    if t >= 65536:
        t >>= 16
        e = 16
    if t >= 256:
        t >>= 8
        e += 8
    if t >= 16:
        t >>= 4
        e += 4
    if t >= 4:
        t >>= 2
        e += 2
    if t >= 2:
        e += 1
    if e >= 16:
        m = x >> (e - 16)
    else:
        m = x << (16 - e)
    f = m - 65536  # 0 .. 65535
    i = f >> 10
    fr = f & 1023
    tb = _LOG2
    j = i + i
    a = (tb[j] | tb[j + 1] << 8) + (i << 10)
    b = (tb[j + 2] | tb[j + 3] << 8) + (i << 10) + 1024
    frac16 = a + (((b - a) * fr) >> 10)
    return (e << 12) + ((frac16 + 8) >> 4)


def exp2_q12(y):
    """round(2 ** (y/4096)) as an int, for y <= 29·4096 - 1 (larger y saturates)."""
    if y > _EXP2_MAX:
        y = _EXP2_MAX
    n = y >> 12
    f = y & 4095
    i = f >> 6
    fr = f & 63
    tb = _EXP2
    j = i + i
    a = 65536 + (i << 10) - (tb[j] | tb[j + 1] << 8)
    b = 66560 + (i << 10) - (tb[j + 2] | tb[j + 3] << 8)
    m = a + (((b - a) * fr) >> 6)  # Q16, 65536 .. 131072
    if n >= 16:
        return m << (n - 16)
    if n < -1:
        return 0
    s = 16 - n
    return (m + (1 << (s - 1))) >> s


def interp(table, x10):
    """Piecewise-linear lookup in a compensation table (sensors.comp_table: a flat tuple
    x0, y0, x1, y1, ... of ints), flat beyond the ends (ints only)."""
    n = len(table)
    if not n:
        return 0
    if x10 <= table[0]:
        return table[1]
    if x10 >= table[n - 2]:
        return table[n - 1]
    i = 2
    while table[i] < x10:
        i += 2
    x0 = table[i - 2]
    y0 = table[i - 1]
    # |y1 - y0| < 2**15, x10 - x0 < 2**11: product < 2**26
    return y0 + (table[i + 1] - y0) * (x10 - x0) // (table[i] - x0)


class MethaneMOS:
    """SnO2 methane sensor (MQ-4 / TGS2611 class) read across a load resistor.

    Circuit: Vc -> Rs (sensor) -> RL -> ground; V_RL is scaled down by `adc_div` onto
    the ADC. With Vtop = Vc/adc_div in ADC µV and v the ADC reading:
        Rs/RL = (Vtop - v) / v
        log2(Rs/R0) = log2(Vtop - v) - log2(v) + K        K = log2(RL/R0)
        ppm = a · (Rs/R0)^b  - ppm_air                    (ppm_air: the fit at clean air)
    Subtracting the fit's value at the clean-air ratio makes clean air read exactly 0
    (the MQ-4 fit gives 16 ppm there). Zero calibration sets R0 from a clean-air
    reading (Rs_air / air_ratio); span calibration adds a log-domain gain (span_q12).
    Config keys and defaults: gasguard.sensors (MOS_KEYS).
    """

    gas = "ch4"

    def set_cal(self, k_q12, span_q12, zero_uv):
        """Apply a calibration state: k = log2(RL/R0) and the span gain, log2 in Q12, and the
        zero reading (None: nominal). gasguard.calibration derives and checks them."""
        self.k_q12 = k_q12
        self.span_q12 = span_q12
        self.zero_uv = zero_uv
        self.p_air = exp2_q12(self.c_q12 + ((self.b_q12 * self.air_q12) >> _Q) + span_q12)
        # above this log the reading is over the range whatever the rounding
        self.max_q12 = log2_q12(self.range_ppm_x10 + self.p_air) + 16
        # a calibrated zero reads exactly 0 (the inverse is 0.05 % off)
        self.clean_air_uv = self.uv(0) if zero_uv is None else zero_uv

    def set_environment(self, temp_c_x10, rh_pct=None):
        """Compensation: Rs is divided by the configured factor for this temperature
        (and humidity). Integer interpolation; no effect without temp_comp/rh_comp."""
        c = interp(self.temp_comp, temp_c_x10)
        if rh_pct is not None:
            c += interp(self.rh_comp, rh_pct * 10)
        self.comp_q12 = c

    def ratio_q12(self, uv):
        """log2((Vtop - v)/v) = log2(Rs/RL) in Q12, v clipped into 1..Vtop-1 (the forward
        path's first step; gasguard.cal_math derives the zero from it)."""
        vt = self.vtop_uv
        if uv < 1:
            uv = 1
        elif uv > vt - 1:
            uv = vt - 1
        return log2_q12(vt - uv) - log2_q12(uv)

    def ppm_x10(self, uv):
        # log2(Rs/RL), then log2(Rs/R0) compensated, clamped
        lr = self.ratio_q12(uv) + self.k_q12 - self.comp_q12
        if lr > 49152:
            lr = 49152
        elif lr < -49152:
            lr = -49152
        if lr > self.high_q12:
            self.status = _UNDER  # Rs far above clean air: heater or element failure
            return 0
        L = self.c_q12 + ((self.b_q12 * lr) >> _Q) + self.span_q12
        if L > self.max_q12:  # clearly beyond the range
            self.status = _OVER
            return self.range_ppm_x10
        p = exp2_q12(L) - self.p_air
        self.status = _OK
        if p <= 0:
            return 0
        if p > self.range_ppm_x10:
            self.status = _OVER
            return self.range_ppm_x10
        return p

    def uv(self, ppm_x10):
        """Inverse model (simulation, CAL check): the ADC µV this concentration produces."""
        if ppm_x10 < 0:
            ppm_x10 = 0
        if ppm_x10 > 10000000:
            ppm_x10 = 10000000
        L = log2_q12(ppm_x10 + self.p_air) - self.span_q12
        lr_c = ((L - self.c_q12) * _ONE) // self.b_q12
        q = lr_c + self.comp_q12 - self.k_q12  # log2(Rs/RL)
        if q < -14 * _ONE:
            q = -14 * _ONE
        if q > 12 * _ONE:
            q = 12 * _ONE
        x16 = exp2_q12(q + 16 * _ONE)  # Rs/RL in Q16
        return (self.vtop_uv * 65536 + (65536 + x16) // 2) // (65536 + x16)


class ElectrochemCO:
    """Electrochemical CO cell after a transimpedance amplifier with a bias offset.

        v = zero + sens · ppm · (1 + tc·(T − 20 °C)) + zero_tc · (T − 20 °C)
        ppm×10 = (v − zero_eff) · 64 // S      S = sens · 6.4 (µV per ppm, scaled)

    Multiplying by 64 keeps the product below 2**29 for any ADC reading, and S keeps
    1/64 µV-per-ppm resolution. Negative readings are reported as 0; a reading more
    than neg_limit_ppm below the zero is UNDER (out of physical range). Calibration sets
    zero_cal and s_cal. Config keys and defaults: gasguard.sensors (CO_KEYS).
    """

    gas = "co"

    def set_cal(self, zero_cal, s_cal):
        """Apply a calibration state: the zero (µV) and the sensitivity S (µV per ppm × 6.4)."""
        self.zero_cal = zero_cal
        self.s_cal = s_cal
        self._update()

    def _update(self):
        d = self._dt_x10
        f = 4096 + (self.tc_q * d * 128) // 3125  # 1 + tc·dT in Q12
        if f < 2048:
            f = 2048
        elif f > 8192:
            f = 8192
        s = (self.s_cal * f) >> 12
        self.s_eff = s if s > 0 else 1
        self.zero_eff = self.zero_cal + (self.zero_tc * d) // 10
        self.clean_air_uv = self.zero_eff

    def set_environment(self, temp_c_x10, rh_pct=None):
        """Temperature compensation of sensitivity and zero (reference 20.0 °C)."""
        if temp_c_x10 < -400:
            temp_c_x10 = -400
        elif temp_c_x10 > 850:
            temp_c_x10 = 850
        self._dt_x10 = temp_c_x10 - 200
        self._update()

    def ppm_x10(self, uv):
        d = uv - self.zero_eff
        if d > 8388607:
            d = 8388607
        elif d < -8388607:
            d = -8388607
        p = (d * 64) // self.s_eff
        if p < 0:
            self.status = _UNDER if p < -self.neg_limit_x10 else _OK
            return 0
        if p > self.range_ppm_x10:
            self.status = _OVER
            return self.range_ppm_x10
        self.status = _OK
        return p

    def uv(self, ppm_x10):
        """Inverse (simulation, CAL check): the µV this concentration produces now."""
        # smallest v with (v - zero)·64 // S >= ppm_x10
        return self.zero_eff + (ppm_x10 * self.s_eff + 63) // 64


# ---- filters (built by gasguard.sensors: `Pipeline`, `Median`, ...) ----------------------
# Every filter has update(x) -> int and reset(). They work on ints (µV or ppm×10) with
# |x| < 2**24, keep every intermediate value below 2**30 (the ESP32 small-int range), and
# allocate nothing: their buffers are preallocated lists overwritten in place.
_LIMIT = const(1 << 24)  # |input| bound for every filter (µV up to 16.7 V, ppm×10 up to 1.6e6)


def _clip(x):
    if x >= _LIMIT:
        return _LIMIT - 1
    if x <= -_LIMIT:
        return 1 - _LIMIT
    return x


# kinds of Filter
_CHAIN = const(0)
_MEDIAN = const(1)
_EMA = const(2)
_CLAMP = const(3)
_DELTA = const(4)
_AVERAGE = const(5)
_OFFSET = const(6)


class Filter:
    """One filter, or a chain of them applied in order (a channel's pipeline), by `kind`
    (one class, not seven: every class and method is heap on the device):

    chain    `stages`, each a Filter
    median   median of the last `window` inputs (odd, 1..15); until the window has filled,
             the median of what has been seen so far: always one of the inputs
    ema      exponential moving average y += alpha·(x − y), alpha = `alpha`/256 (1..256);
             exact fixed point: the state is y + r/256 with 0 <= r < 256, the product split
             so no intermediate exceeds 2**26; the first input initialises it
    clamp    limit to `lo`..`hi`
    delta    spike rejection: a jump larger than `max` from the last accepted value is held
             back (the last accepted value is output) for up to `hold` samples; a change
             that persists longer is real. hold=0 disables it. `rejected`: count (capped)
    average  mean of the last `window` inputs (1..32), running sum, rounded toward -inf
    offset   + `offset`
    """

    def reset(self):
        k = self.kind
        if k == _CHAIN:
            for f in self.stages:
                f.reset()
        elif k == _MEDIAN:
            self._n = 0
            self._pos = 0
        elif k == _EMA:
            self._y = 0
            self._r = 0
            self._init = False
        elif k == _DELTA:
            self._last = 0
            self._init = False
            self._held = 0
            self.rejected = 0
        elif k == _AVERAGE:
            self._n = 0
            self._pos = 0
            self._sum = 0
            for i in range(self.window):
                self._ring[i] = 0

    def update(self, x):
        k = self.kind
        if k == _CHAIN:
            for f in self.stages:
                x = f.update(x)
            return x
        if k == _CLAMP:
            if x < self.lo:
                return self.lo
            if x > self.hi:
                return self.hi
            return x
        x = _clip(x)
        if k == _MEDIAN:
            w = self.window
            ring = self._ring
            ring[self._pos] = x
            self._pos += 1
            if self._pos == w:
                self._pos = 0
            if self._n < w:
                self._n += 1
            n = self._n
            s = self._scratch
            # insertion sort of the n valid entries into the scratch buffer (no allocation)
            i = 0
            while i < n:
                v = ring[i]
                j = i - 1
                while j >= 0 and s[j] > v:
                    s[j + 1] = s[j]
                    j -= 1
                s[j + 1] = v
                i += 1
            return s[(n - 1) >> 1]
        if k == _EMA:
            if not self._init:
                self._init = True
                self._y = x
                self._r = 0
                return x
            a = self.alpha
            d = x - self._y  # |d| < 2**25
            hi = d >> 8
            lo = d & 255
            r = self._r
            t = r + lo * a - ((r * a) >> 8)  # -256 < t < 2**17
            self._y += hi * a + (t >> 8)
            self._r = t & 255
            return self._y
        if k == _DELTA:
            if not self._init:
                self._init = True
                self._last = x
                return x
            d = x - self._last
            if (d > self.max or d < -self.max) and self._held < self.hold:
                self._held += 1
                if self.rejected < 1000000:
                    self.rejected += 1
                return self._last
            self._held = 0
            self._last = x
            return x
        if k == _AVERAGE:
            # 32 · 2**24 = 2**29: the sum stays in range
            ring = self._ring
            self._sum += x - ring[self._pos]
            ring[self._pos] = x
            self._pos += 1
            if self._pos == self.window:
                self._pos = 0
            if self._n < self.window:
                self._n += 1
            return self._sum // self._n
        return _clip(x + self.offset)


# ---- one gas channel (built by gasguard.sensors.Channel) --------------------------------
class Channel:
    """One gas channel: ADC -> oversampled µV -> filters -> model + calibration -> ppm×10.

    ch.sample()        one sample period (the detector calls it ~1 Hz); no heap allocation
    ch.ppm_x10         latest concentration ×10 (0 while a reading-invalidating fault is on)
    ch.raw_uv          latest oversampled (spike-trimmed) microvolts
    ch.filtered_uv     after the filter pipeline
    ch.fault           None or the highest-priority active fault code
    ch.reading_valid   False while a fault makes the reading meaningless (short, open,
                       out_of_range, stuck). cal_missing and end_of_life keep a valid
                       (nominal-model / ageing-sensor) reading: gate alarms on this flag,
                       not on `fault is None`, so a gross leak still alarms
    ch.fault_bits      every active fault as bits (FAULT_BITS order == FAULT_CODES order)
    ch.warming_up      True until warmup_s of sampling have passed
    ch.over_range      True when the reading is at the top of the measuring range
    ch.gas             "ch4" or "co"
    ch.set_age_days(n) sensor age in days (the app knows the wall clock / manufacture date)
    ch.set_environment(temp_c_x10, rh_pct)   compensation input for the model
    ch.set_calibration(cal)   apply a gasguard.calibration.ChannelCal (or None)

    Fault rules: gasguard.sensors (Channel) and docs/calibration.md.
    """

    def _apply_cal(self, cal):
        # the record applies itself (gasguard.calibration, loaded at boot and for CAL); this
        # module imports no calibration code, and the record object is not kept
        self.cal_problem = None
        try:
            if cal is None:
                raise CalibrationError("no calibration for this channel")
            cal.apply(self.model)
        except CalibrationError as e:
            self.model.set_cal(*self.model.nominal)
            self.cal_problem = str(e)

    def set_calibration(self, cal):
        """Apply a new ChannelCal (or None) now, e.g. after a service calibration. A
        refused record leaves the model nominal and raises the cal_missing fault; the
        other faults, filters and warm-up are not touched."""
        self._apply_cal(cal)
        if self.cal_problem is None:
            self._set_bits(self.fault_bits & ~F_CAL)
        else:
            self._set_bits(self.fault_bits | F_CAL)

    # --- inputs from the app ---------------------------------------------------------
    def set_age_days(self, days):
        if isinstance(days, bool) or not isinstance(days, int) or days < 0 or days > 100000:
            raise ValueError("age_days: %r is not a day count" % (days,))
        self.age_days = days
        if days >= self.service_life_days:
            self._set_bits(self.fault_bits | F_EOL)
        else:
            self._set_bits(self.fault_bits & ~F_EOL)

    def set_environment(self, temp_c_x10, rh_pct=None):
        self.model.set_environment(temp_c_x10, rh_pct)

    # --- the sample step -------------------------------------------------------------
    def sample(self):
        clock = self.clock
        now = clock.ticks_ms()
        dt = clock.ticks_diff(now, self._last_t)
        self._last_t = now
        if dt < 0:
            dt = 0
        elif dt > _MAX_DT_MS:
            dt = _MAX_DT_MS
        self.samples += 1

        # warm-up: accumulate elapsed ms (robust to the ticks wrap; latches off)
        if self.warming_up:
            self._warm_elapsed += dt
            if self._warm_elapsed >= self.warmup_ms:
                self.warming_up = False

        # oversample and trim the extremes (spike rejection within the burst)
        buf = self._buf
        n = self.oversample
        adc = self.adc
        i = 0
        while i < n:
            v = adc.read_uv()
            j = i - 1
            while j >= 0 and buf[j] > v:
                buf[j + 1] = buf[j]
                j -= 1
            buf[j + 1] = v
            i += 1
        t = self.trim
        s = 0
        i = t
        while i < n - t:
            s += buf[i]
            i += 1
        raw = s // (n - 2 * t)
        self.raw_uv = raw

        warming = self.warming_up
        bits = self.fault_bits

        # rails (open / short), on the raw value so filters cannot hide them
        low = self.rail_low_uv
        high = self.rail_high_uv
        bits = self._debounce(0, raw > high, bits, _F_SHORT)
        bits = self._debounce(1, raw < low and not warming, bits, _F_OPEN)

        # stuck: raw µV confined to a band for stuck_ms
        if self.stuck_ms:
            if raw < self._stuck_lo:
                self._stuck_lo = raw
            if raw > self._stuck_hi:
                self._stuck_hi = raw
            if (warming or self._stuck_warm_edge or self.samples == 1
                    or self._stuck_hi - self._stuck_lo > self.stuck_band_uv):
                # (re)start the window at this sample; a reading taken while warming is
                # no evidence, so the window starts at the first warm sample
                self._stuck_lo = raw
                self._stuck_hi = raw
                self._stuck_elapsed = 0
                self._stuck_warm_edge = warming
                bits &= ~_F_STUCK
            else:
                self._stuck_elapsed += dt
                if self._stuck_elapsed >= self.stuck_ms:
                    self._stuck_elapsed = self.stuck_ms
                    bits |= _F_STUCK

        # a reading at a rail is not a measurement: it does not enter the filters (the
        # last filtered value holds while the fault debounces); after a rail fault the
        # filters restart, so no stale history or rail value leaks into the reading
        if raw > high or raw < low:
            f = self.filtered_uv if self.samples > 1 else raw
            if bits & _RAIL:
                self._refill = True
        else:
            if self._refill:
                self._refill = False
                self.pipeline.reset()
            f = self.pipeline.update(raw)
        self.filtered_uv = f
        model = self.model
        p = model.ppm_x10(f)
        st = model.status
        self.over_range = st == _OVER
        # implausible reading; at a rail the rail fault says more, so not counted twice
        bits = self._debounce(
            2, st == _UNDER and not warming and low <= raw <= high, bits, _F_RANGE)

        self._set_bits(bits)
        if bits & INVALIDATING:
            p = 0
        self.ppm_x10 = p
        return p

    def _debounce(self, k, bad, bits, bit):
        if bad:
            self._good[k] = 0
            if self._bad[k] < self.fault_count:
                self._bad[k] += 1
            if self._bad[k] >= self.fault_count:
                bits |= bit
        else:
            self._bad[k] = 0
            if bits & bit:
                self._good[k] += 1
                if self._good[k] >= self.clear_count:
                    self._good[k] = 0
                    bits &= ~bit
            else:
                self._good[k] = 0
        return bits

    def _set_bits(self, bits):
        self.fault_bits = bits
        self.reading_valid = not bits & INVALIDATING
        if not bits:
            self.fault = None
            return
        i = 0
        while not bits & FAULT_BITS[i]:
            i += 1
        self.fault = FAULT_CODES[i]


# ---- supply voltage monitor (built by gasguard.sensors.SupplyMonitor) -------------------
class SupplyMonitor:
    """A divider onto an ADC pin, low-supply fault with hysteresis.

    sup.sample()       oversample the ADC, update .millivolts and .fault (no allocation)
    sup.millivolts     supply in mV (int)
    sup.fault          None or "supply_low"

    The fault comes on after `count` samples in a row below low_mv and goes off after
    `count` samples in a row at or above low_mv + hyst_mv, so a supply hovering at the
    threshold does not chatter.
    """

    def sample(self):
        s = 0
        i = 0
        n = self.oversample
        while i < n:
            s += self.adc.read_uv()
            i += 1
        # mV = µV · div_q10 / 1024000; µV < 2**22 and div_q10 < 2**15: split µV so every
        # product stays below 2**30 (uv·d/1024 = hi·d + lo·d/1024, then /1000)
        uv = s // n
        d = self.div_q10
        mv = ((uv >> 10) * d + (((uv & 1023) * d) >> 10)) // 1000
        self.millivolts = mv
        if mv < self.low_mv:
            self._good = 0
            if self._bad < self.count:
                self._bad += 1
            if self._bad >= self.count:
                self.fault = "supply_low"
        else:
            self._bad = 0
            if self.fault is not None and mv >= self.low_mv + self.hyst_mv:
                self._good += 1
                if self._good >= self.count:
                    self._good = 0
                    self.fault = None
            else:
                self._good = 0
        return mv
