"""CO alarm by dose: D += dt / T_alarm(ppm), alarm at D >= 1, washout below the no-alarm level.

Integer accumulator (same alarm times on every float width):

- D is kept in units of 1/DOSE_FULL (DOSE_FULL = 2**24 = one alarm dose).
- RATE[i] = round(DOSE_FULL / T_alarm_s(ppm)), dose units per second, for
  ppm = 0..PPM_MAX (1 ppm steps up to FINE_MAX, then FINE_STEP ppm steps, rounded
  down: 441 entries, 1.8 kB), built once per profile at boot by gasguard.co_rates (boot-only code; shared by
  every detector) by log-log interpolation between the
  profile's anchor points (ppm, T_alarm_s). The interpolation itself is done in
  fixed-point integers (binary log2/exp2 on Python ints), so the table is
  bit-identical on CPython, the MicroPython unix port and the ESP32's
  single-precision floats, and needs no float at all. A heap with no block for
  the table at boot (after a collection) gets a coarse one, 1/2 or 1/4 of the entries
  (each entry the highest rate of the ones it stands for: an alarm never later), and
  the boot shows it as fault config_nomem (gasguard.co_rates.table, boot_select).
- Each sample adds RATE[ppm] * dt_ms / 1000 with the remainder carried, so no dose
  is lost to rounding. Products stay below 2**30 (RATE <= DOSE_FULL / T_MIN_S,
  dt chunks <= 1000 ms).
- At or below the no-alarm level D decays exponentially (half-life
  `co_washout_min`, COHb-like washout), one integer step per elapsed second:
  D -= ceil(D / tau_s). A dip below the level therefore only bleeds the dose off
  slowly; it does not restart a timer.
- The alarm turns ON when D >= DOSE_FULL (and the reading is above the no-alarm
  level). It turns OFF (self-reset) once the reading has stayed at or below the
  no-alarm level for `co_clear_s`; D is then capped at DOSE_FULL/2 so that renewed
  exposure re-alarms after half a dose, not instantly and not after a full dose.
"""

DOSE_FULL = 1 << 24
DOSE_CAP = 2 << 24  # D never exceeds this (keeps it a small int)
PPM_MAX = 1000  # readings above use the PPM_MAX rate
FINE_MAX = 300  # 1 ppm resolution below this, FINE_STEP ppm above
FINE_STEP = 5

_TABLES = {}  # (targets, no-alarm ppm) -> rate table: one per profile, shared by every detector


class COAlarm:
    def __init__(self, cfg, rates=None):
        self.no_alarm_x10 = cfg["co_no_alarm_ppm"] * 10
        self.shift = 0  # the table's entry for index i is rates[i >> shift] (co_rates.table)
        if rates is None:
            key = (cfg["co_targets"], cfg["co_no_alarm_ppm"])
            t = _TABLES.get(key)
            if t is None:  # built by boot-time code, released at once
                from gasguard.lazy import load, release

                try:
                    t = load("co_rates").table(key[0], key[1])
                finally:
                    release("co_rates")
                _TABLES[key] = t
            rates, self.shift = t
        self.rates = rates
        # exponential washout: tau = half-life / ln 2, in whole seconds
        self.tau_s = (cfg["co_washout_min"] * 60 * 1000000 + 346573) // 693147
        self.clear_ms = cfg["co_clear_s"] * 1000
        self.dose = 0  # units of 1 / DOSE_FULL
        self._rem = 0  # carried remainder of rate * ms (0..999)
        self._wash_ms = 0  # carried ms for the per-second washout
        self.active = False
        self._low_ms = 0  # time at/below the no-alarm level while active

    def dose_pct(self):
        """Dose as an integer percentage of one alarm dose (for status)."""
        return (self.dose * 100) >> 24

    def state(self):
        """The active levels as bits (1: the CO alarm), as a gas path's alarm."""
        return 1 if self.active else 0

    def info(self, d):
        d["dose_pct"] = self.dose_pct()

    def update(self, x10, dt_ms, _warming=False):
        """Feed one reading (ppm x 10) held for dt_ms; return True if the alarm state changed
        (as a gas path's alarm: bit 1 of the changed levels; warm-up changes nothing)."""
        if dt_ms < 0:
            dt_ms = 0
        if x10 > self.no_alarm_x10:
            ppm = x10 // 10
            if ppm < FINE_MAX:
                i = ppm
            else:
                if ppm > PPM_MAX:
                    ppm = PPM_MAX
                i = FINE_MAX + (ppm - FINE_MAX) // FINE_STEP
            r = self.rates[i >> self.shift]
            d = self.dose
            rem = self._rem
            left = dt_ms
            while left > 0:
                c = left if left < 1000 else 1000
                left -= c
                p = r * c + rem
                d += p // 1000
                rem = p % 1000
            if d > DOSE_CAP:
                d = DOSE_CAP
            self.dose = d
            self._rem = rem
            self._wash_ms = 0
            self._low_ms = 0
            if not self.active and d >= DOSE_FULL:
                self.active = True
                return True
            return False
        # at or below the no-alarm level: washout, and the self-reset timer
        w = self._wash_ms + dt_ms
        d = self.dose
        tau = self.tau_s
        while w >= 1000 and d > 0:
            w -= 1000
            d -= (d + tau - 1) // tau
        if d == 0:
            w = 0
        self._wash_ms = w
        self.dose = d
        self._rem = 0
        if self.active:
            lm = self._low_ms + dt_ms
            if lm >= self.clear_ms:
                self.active = False
                self._low_ms = 0
                if self.dose > (DOSE_FULL >> 1):
                    self.dose = DOSE_FULL >> 1
                return True
            self._low_ms = lm
        return False
