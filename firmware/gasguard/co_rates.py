"""The CO alarm's rate table, built once per profile at boot (boot-only code:
gasguard.lazy.BOOT_ONLY releases it before the loop; gasguard.co_alarm keeps only the table).

RATE[i] = round(DOSE_FULL / T_alarm_s(ppm)), dose units per second, for ppm = 0..PPM_MAX
(1 ppm steps up to FINE_MAX, then FINE_STEP ppm steps, rounded down: TABLE_LEN entries,
1.8 kB), by log-log interpolation between the profile's anchor points (ppm, T_alarm_s),
in fixed-point integers (binary log2/exp2 on Python ints): bit-identical on CPython, the
MicroPython unix port and the ESP32's single-precision floats, and no float at all.
"""

try:
    from array import array
except ImportError:  # pragma: no cover
    array = None

from gasguard.co_alarm import DOSE_FULL, FINE_MAX, FINE_STEP, PPM_MAX

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


def build_rates(targets, no_alarm_ppm, shift=0):
    """RATE table (dose units per second) indexed by index(ppm) >> shift, as an array('i').
    shift 0: the full table. shift > 0 (a heap without a block for it): the coarse table,
    entry j the highest rate of the full table's entries j << shift .. ((j + 1) << shift) - 1,
    so an alarm never comes later than with the full table (a little earlier at most)."""
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
    # the table's one block and nothing more (an array from a sized iterable: no 1.8 KB
    # transient of zeros to copy from, which at boot needed a second hole of that size)
    n = ((TABLE_LEN - 1) >> shift) + 1
    rates = array("i", range(n)) if array is not None else [0] * n
    for j in range(n):
        rates[j] = 0
    for i in range(TABLE_LEN):
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
        if r <= 0:
            r = 1
        if r > rates[i >> shift]:
            rates[i >> shift] = r
    return rates


# What COAlarm falls back to when the heap has no block for the full table: the full table
# again after a collection, then the coarse ones (884 and 444 bytes instead of 1764); each
# keeps every profile's windows, also with a 7 % reading error (test_alarms_units).
SHIFTS = (0, 0, 1, 2)


def table(targets, no_alarm_ppm):
    """(rates, shift) for COAlarm: the full table if the heap has a block for it, retried
    after gc.collect(), else the finest coarse table that fits; MemoryError if none does
    (the boot then refuses that config: fault config_nomem, gasguard.boot_select)."""
    import gc

    err = None
    for shift in SHIFTS:
        try:
            return build_rates(targets, no_alarm_ppm, shift), shift
        except MemoryError as e:
            err = e
            gc.collect()
    raise err


def alarm_time_s(rates, ppm, shift=0):
    """Whole seconds to reach one dose at a constant ppm (None if it never alarms)."""
    r = rates[index(ppm) >> shift]
    if r <= 0:
        return None
    return (DOSE_FULL + r - 1) // r
