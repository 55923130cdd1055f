"""CO alarm by dose: D += dt / T_alarm(ppm), alarm at D >= 1, washout below the no-alarm level.

Integer accumulator (same alarm times on every float width):

- D is kept in units of 1/DOSE_FULL (DOSE_FULL = 2**24 = one alarm dose).
- RATE[i] = round(DOSE_FULL / T_alarm_s(ppm)), dose units per second, for
  ppm = 0..PPM_MAX (1 ppm steps up to FINE_MAX, then FINE_STEP ppm steps, rounded
  down: 441 entries, 1.8 kB), built once per profile at config time (and shared by
  every detector) by log-log interpolation between the
  profile's anchor points (ppm, T_alarm_s). The interpolation itself is done in
  fixed-point integers (binary log2/exp2 on Python ints), so the table is
  bit-identical on CPython, the MicroPython unix port and the ESP32's
  single-precision floats, and needs no float at all.
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

try:
    from array import array
except ImportError:  # pragma: no cover
    array = None

DOSE_FULL = 1 << 24
DOSE_CAP = 2 * DOSE_FULL  # D never exceeds this (keeps it a small int)
PPM_MAX = 1000  # readings above use the PPM_MAX rate
FINE_MAX = 300  # 1 ppm resolution below this, FINE_STEP ppm above
FINE_STEP = 5
TABLE_LEN = FINE_MAX + (PPM_MAX - FINE_MAX) // FINE_STEP + 1
T_MIN_S = 30  # fastest time to alarm (clamp)

Q = 24
_ONE = 1 << Q
_ROOTS = None  # 2**(2**-i) in Q for i = 1..Q, built on first use


def _isqrt(n):
    if n < 2:
        return n
    x = 1 << ((_bitlen(n) + 1) >> 1)
    while True:
        y = (x + n // x) >> 1
        if y >= x:
            return x
        x = y


def _bitlen(n):
    b = 0
    while n:
        n >>= 1
        b += 1
    return b


def _roots():
    global _ROOTS
    if _ROOTS is None:
        r = []
        v = 2 << Q  # 2.0 in Q
        for _ in range(Q):
            v = _isqrt(v << Q)  # sqrt in Q
            r.append(v)
        _ROOTS = r
    return _ROOTS


def log2_q(n):
    """log2(n) for an int n >= 1, in Q fixed point (exact integer algorithm)."""
    if n < 1:
        raise ValueError("log2_q needs n >= 1")
    ip = _bitlen(n) - 1
    x = (n << Q) >> ip  # in [1, 2) as Q
    r = ip << Q
    b = _ONE >> 1
    while b:
        x = (x * x) >> Q
        if x >= (2 << Q):
            x >>= 1
            r += b
        b >>= 1
    return r


def exp2_q(y):
    """2**(y / 2**Q) for y >= 0, returned in Q fixed point."""
    if y < 0:
        raise ValueError("exp2_q needs y >= 0")
    ip = y >> Q
    f = y & (_ONE - 1)
    r = _ONE
    roots = _roots()
    for i in range(Q):
        if f & (1 << (Q - 1 - i)):
            r = (r * roots[i]) >> Q
    return r << ip


def t_alarm_s_q(ppm, targets, logs=None):
    """log2(T_alarm seconds) in Q for an integer ppm, log-log through `targets`.
    `logs`: [(log2 ppm, log2 T)] of the targets, precomputed by build_rates."""
    n = len(targets)
    if n < 2:
        raise ValueError("CO targets: need at least two anchor points")
    if logs is None:
        logs = [(log2_q(p), log2_q(t)) for p, t in targets]
    # pick the segment (extrapolate with the first / last segment)
    i = 0
    while i < n - 2 and ppm > targets[i + 1][0]:
        i += 1
    lp0, lt0 = logs[i]
    lp1, lt1 = logs[i + 1]
    lp = log2_q(ppm)
    num = (lt1 - lt0) * (lp - lp0)
    den = lp1 - lp0
    # round-half-away division on Python ints (same on every interpreter)
    if num >= 0:
        step = (2 * num + den) // (2 * den)
    else:
        step = -((-2 * num + den) // (2 * den))
    return lt0 + step


def index(ppm):
    """Rate-table index of an integer ppm (clamped to 0..PPM_MAX)."""
    if ppm < FINE_MAX:
        return ppm if ppm > 0 else 0
    if ppm > PPM_MAX:
        ppm = PPM_MAX
    return FINE_MAX + (ppm - FINE_MAX) // FINE_STEP


def table_ppm(i):
    """The ppm a table entry was computed for (inverse of index for grid points)."""
    if i < FINE_MAX:
        return i
    return FINE_MAX + (i - FINE_MAX) * FINE_STEP


_CACHE = {}


def rates_for(targets, no_alarm_ppm):
    """The shared rate table (an array of ints) for a profile's curve."""
    key = (targets, no_alarm_ppm)
    t = _CACHE.get(key)
    if t is None:
        t = build_rates(targets, no_alarm_ppm)
        _CACHE[key] = t
    return t


def build_rates(targets, no_alarm_ppm):
    """RATE table (dose units per second) indexed by index(ppm), as an array('i')."""
    prev_p = 0
    prev_t = None
    for p, t in targets:
        if not (isinstance(p, int) and isinstance(t, int)) or p <= prev_p or t < T_MIN_S:
            raise ValueError("CO targets: need increasing int ppm and int seconds >= %d" % T_MIN_S)
        if prev_t is not None and t >= prev_t:
            raise ValueError("CO targets: time to alarm must fall as ppm rises")
        prev_p = p
        prev_t = t
    lfull = Q << Q  # log2(DOSE_FULL) = 24, in Q
    logs = [(log2_q(p), log2_q(t)) for p, t in targets]
    lmin = log2_q(T_MIN_S)
    rates = array("i", bytes(4 * TABLE_LEN)) if array is not None else [0] * TABLE_LEN
    for i in range(index(no_alarm_ppm + 1), TABLE_LEN):
        ppm = table_ppm(i)
        if ppm <= no_alarm_ppm:
            continue
        lt = t_alarm_s_q(ppm, targets, logs)
        if lt < lmin:
            lt = lmin
        ly = lfull - lt
        if ly < 0:
            r = 0
        else:
            r = (exp2_q(ly) + (_ONE >> 1)) >> Q
        rates[i] = r if r > 0 else 1
    return rates


def alarm_time_s(rates, ppm):
    """Whole seconds to reach one dose at a constant ppm (None if it never alarms)."""
    r = rates[index(ppm)]
    if r <= 0:
        return None
    return (DOSE_FULL + r - 1) // r


class COAlarm:
    def __init__(self, cfg, rates=None):
        self.no_alarm_x10 = cfg["co_no_alarm_ppm"] * 10
        if rates is None:
            rates = rates_for(cfg["co_targets"], cfg["co_no_alarm_ppm"])
        self.rates = rates
        # exponential washout: tau = half-life / ln 2, in whole seconds
        self.tau_s = (cfg["co_washout_min"] * 60 * 1000000 + 346573) // 693147
        self.clear_ms = cfg["co_clear_s"] * 1000
        self.dose = 0  # units of 1 / DOSE_FULL
        self._rem = 0  # carried remainder of rate * ms (0..999)
        self._wash_ms = 0  # carried ms for the per-second washout
        self.active = False
        self._low_ms = 0  # time at/below the no-alarm level while active

    def reset(self):
        self.dose = 0
        self._rem = 0
        self._wash_ms = 0
        self.active = False
        self._low_ms = 0

    def dose_pct(self):
        """Dose as an integer percentage of one alarm dose (for status)."""
        return (self.dose * 100) >> 24

    def update(self, x10, dt_ms):
        """Feed one reading (ppm x 10) held for dt_ms; return True if the alarm state changed."""
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
            r = self.rates[i]
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
