"""One gas channel: ADC -> oversampled µV -> filters -> model + calibration -> ppm×10, faults.

    ch = Channel(adc, clock, model, cal, cfg)
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

Fault rules (defaults in brackets, all configurable, see docs/calibration.md):
  sensor_short  raw µV above the model's high rail for fault_count [3] samples in a row
  sensor_open   raw µV below the low rail for fault_count samples (not during warm-up:
                a cold MOS element reads high resistance)
  out_of_range  a physically implausible reading (model UNDER: CO far below zero, MOS
                Rs far above clean air) for fault_count samples (not during warm-up).
                A reading ABOVE the measuring range is not a fault: it is reported at
                full scale with over_range set, so a big leak always alarms.
  sensor_stuck  raw µV varied by no more than stuck_band_uv [0 = bit-identical] for
                stuck_s [MOS 3600 s, CO off]; not during warm-up
  cal_missing   no valid calibration for this channel (missing/corrupt record, or a
                record the model refuses): the channel still runs on the nominal
                model so a gross leak can alarm
  end_of_life   age_days >= service_life_days [1826 = 5 years, CJJ/T 146]
Faults are set after fault_count bad samples in a row and cleared after clear_count
[3] good samples in a row. ppm_x10 is forced to 0 only by short/open/out_of_range/
stuck, the faults that make the reading meaningless; the fault code is always set then.
"""

from gasguard.sensorlib import OVER, UNDER, CalibrationError
from gasguard.filters import Pipeline
from gasguard.faults import (  # noqa: F401  (the one fault table; re-exported)
    F_CAL, F_EOL, F_OPEN, F_RANGE, F_SHORT, F_STUCK, FAULT_BITS, FAULT_CODES, INVALIDATING,
)
from gasguard.validate import ConfigError, need_int, reject_unknown

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


RAIL = const(3)  # short | open

KEYS = (
    "oversample", "trim", "filters", "rail_low_uv", "rail_high_uv", "fault_count",
    "clear_count", "warmup_s", "stuck_s", "stuck_band_uv", "service_life_days",
)

DEFAULT_FILTERS = ({"median": 3},)
MAX_DT_MS = const(1 << 24)  # one sample gap counted at most ~4.6 h (timers saturate anyway)


class Channel:
    def __init__(self, adc, clock, model, cal, cfg=None):
        cfg = {} if cfg is None else cfg
        if not isinstance(cfg, dict):
            raise ConfigError("channel: expected a dict, got %r" % (cfg,))
        reject_unknown(cfg, KEYS, "channel")
        n = need_int(cfg, "oversample", 1, 16, 8)
        trim = need_int(cfg, "trim", 0, (n - 1) // 2, 1 if n >= 4 else 0)
        pipeline = Pipeline(cfg.get("filters", DEFAULT_FILTERS))
        low = need_int(cfg, "rail_low_uv", 0, 3300000, model.rail_low_uv)
        high = need_int(cfg, "rail_high_uv", 0, 3300000, model.rail_high_uv)
        if low >= high:
            raise ConfigError("rail_low_uv: %d must be below rail_high_uv %d" % (low, high))
        fc = need_int(cfg, "fault_count", 1, 60, 3)
        cc = need_int(cfg, "clear_count", 1, 60, 3)
        warm = need_int(cfg, "warmup_s", 0, 7200, model.warmup_s)
        stuck = need_int(cfg, "stuck_s", 0, 86400, model.stuck_s)
        band = need_int(cfg, "stuck_band_uv", 0, 100000, 0)
        life = need_int(cfg, "service_life_days", 30, 7300, 1826)

        # everything validated: now commit
        self.adc = adc
        self.clock = clock
        self.model = model
        self.gas = model.gas
        self.oversample = n
        self.trim = trim
        self.pipeline = pipeline
        self.rail_low_uv = low
        self.rail_high_uv = high
        self.fault_count = fc
        self.clear_count = cc
        self.warmup_ms = warm * 1000
        self.stuck_ms = stuck * 1000
        self.stuck_band_uv = band
        self.service_life_days = life
        self._buf = [0] * n

        self.age_days = 0
        self.fault_bits = 0
        self._apply_cal(cal)
        self.reset()

    def _apply_cal(self, cal):
        # boot/CAL time only: gasguard.calibration is not resident (lazy.BOOT_ONLY), and the
        # record object is not kept (it would pin that module's code in the heap)
        from gasguard.calibration import apply

        self.cal_problem = None
        try:
            apply(self.model, cal)
        except CalibrationError as e:
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

    def reset(self):
        """Power-on state: warm-up restarts, filters and fault debouncers clear."""
        self.pipeline.reset()
        self.ppm_x10 = 0
        self.raw_uv = 0
        self.filtered_uv = 0
        self.over_range = False
        self.samples = 0
        self._refill = False
        self._last_t = self.clock.ticks_ms()
        self._warm_elapsed = 0
        self.warming_up = self.warmup_ms > 0
        self._bad = [0, 0, 0]  # consecutive bad samples: short, open, range
        self._good = [0, 0, 0]
        self._stuck_lo = 0
        self._stuck_hi = 0
        self._stuck_elapsed = 0
        self._stuck_warm_edge = False
        bits = 0
        if self.cal_problem is not None:
            bits |= F_CAL
        if self.age_days >= self.service_life_days:
            bits |= F_EOL
        self._set_bits(bits)

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

    def pct_lel_x10(self):
        """%LEL × 10 of the current reading (methane channels only)."""
        return self.model.pct_lel_x10(self.ppm_x10)

    # --- the sample step -------------------------------------------------------------
    def sample(self):
        clock = self.clock
        now = clock.ticks_ms()
        dt = clock.ticks_diff(now, self._last_t)
        self._last_t = now
        if dt < 0:
            dt = 0
        elif dt > MAX_DT_MS:
            dt = MAX_DT_MS
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
        bits = self._debounce(0, raw > high, bits, F_SHORT)
        bits = self._debounce(1, raw < low and not warming, bits, F_OPEN)

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
                bits &= ~F_STUCK
            else:
                self._stuck_elapsed += dt
                if self._stuck_elapsed >= self.stuck_ms:
                    self._stuck_elapsed = self.stuck_ms
                    bits |= F_STUCK

        # a reading at a rail is not a measurement: it does not enter the filters (the
        # last filtered value holds while the fault debounces); after a rail fault the
        # filters restart, so no stale history or rail value leaks into the reading
        if raw > high or raw < low:
            f = self.filtered_uv if self.samples > 1 else raw
            if bits & RAIL:
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
        self.over_range = st == OVER
        # implausible reading; at a rail the rail fault says more, so not counted twice
        bits = self._debounce(
            2, st == UNDER and not warming and low <= raw <= high, bits, F_RANGE)

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

    def active_faults(self):
        """List of every active fault code, highest priority first (allocates)."""
        return [FAULT_CODES[i] for i in range(len(FAULT_BITS)) if self.fault_bits & FAULT_BITS[i]]
