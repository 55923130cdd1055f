"""Shared pieces of the sensor models: Q12 log2/exp2 in integers, status codes,
CalibrationError, %LEL helpers and compensation tables (see gasguard.sensors).

Power laws are evaluated in the log2 domain with Q12 fixed point (1/4096 of a binary
order of magnitude, 0.017 % relative) using two 65-entry tables with linear
interpolation. The tables are constants, so results are bit-identical on every
interpreter.
"""

from gasguard.validate import ConfigError, need_num

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


class CalibrationError(ValueError):
    """A calibration value that is not plausible for this sensor; the message says why.
    (Re-exported by gasguard.calibration.)"""


OK = const(0)
OVER = const(1)  # above the measuring range: reported at full scale (never hidden)
UNDER = const(2)  # physically implausible low reading (e.g. far below the zero)

Q = const(12)  # log2 fixed point: value = x / 4096
ONE = const(4096)

# round(log2(1 + i/64) * 65536), i = 0..64
_LOG2 = (
    0, 1466, 2909, 4331, 5732, 7112, 8473, 9814, 11136, 12440, 13727, 14996, 16248,
    17484, 18704, 19909, 21098, 22272, 23433, 24579, 25711, 26830, 27936, 29029, 30109,
    31178, 32234, 33279, 34312, 35334, 36346, 37346, 38336, 39316, 40286, 41246, 42196,
    43137, 44068, 44990, 45904, 46809, 47705, 48593, 49472, 50344, 51207, 52063, 52911,
    53751, 54584, 55410, 56229, 57040, 57845, 58643, 59434, 60219, 60997, 61769, 62534,
    63294, 64047, 64794, 65536,
)
# round(2 ** (i/64) * 65536), i = 0..64
_EXP2 = (
    65536, 66250, 66971, 67700, 68438, 69183, 69936, 70698, 71468, 72246, 73032, 73828,
    74632, 75444, 76266, 77096, 77936, 78785, 79642, 80510, 81386, 82273, 83169, 84074,
    84990, 85915, 86851, 87796, 88752, 89719, 90696, 91684, 92682, 93691, 94711, 95743,
    96785, 97839, 98905, 99982, 101070, 102171, 103283, 104408, 105545, 106694, 107856,
    109031, 110218, 111418, 112631, 113858, 115098, 116351, 117618, 118899, 120194,
    121502, 122825, 124163, 125515, 126882, 128263, 129660, 131072,
)

LOG2_MAX_IN = const((1 << 30) - 1)
EXP2_MAX_Q12 = const(29 * 4096 - 1)  # result <= 2**29


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
    a = _LOG2[i]
    frac16 = a + (((_LOG2[i + 1] - a) * fr) >> 10)
    return (e << 12) + ((frac16 + 8) >> 4)


def exp2_q12(y):
    """round(2 ** (y/4096)) as an int, for y <= EXP2_MAX_Q12 (larger y saturates)."""
    if y > EXP2_MAX_Q12:
        y = EXP2_MAX_Q12
    n = y >> 12
    f = y & 4095
    i = f >> 6
    fr = f & 63
    a = _EXP2[i]
    m = a + (((_EXP2[i + 1] - a) * fr) >> 6)  # Q16, 65536 .. 131072
    if n >= 16:
        return m << (n - 16)
    if n < -1:
        return 0
    s = 16 - n
    return (m + (1 << (s - 1))) >> s


def log2_real_q12(v):
    """Config time: log2 of a positive real number in Q12, via the integer tables."""
    v = float(v)
    shift = 0
    while v < 65536.0:
        v *= 2.0
        shift += 1
    while v >= 1073741823.0:
        v /= 2.0
        shift -= 1
    return log2_q12(int(v + 0.5)) - shift * ONE


def lel_ppm(vol_pct):
    """Lower explosive limit in ppm from %vol (CN 5.0 default; IEC 60079-20-1 says 4.4)."""
    v = need_num({"lel_vol_pct": vol_pct}, "lel_vol_pct", 4.0, 5.0)
    return int(v * 10000 + 0.5)


def pct_lel_x10(ppm_x10, lel_ppm_value=50000):
    """%LEL × 10 (integer, rounded down): 5000 ppm at LEL 50 000 ppm -> 100 (10.0 %LEL)."""
    if ppm_x10 <= 0:
        return 0
    if ppm_x10 > 10000000:
        ppm_x10 = 10000000
    return ppm_x10 * 100 // lel_ppm_value


def comp_table(cfg, key, lo, hi):
    """[[x, factor], ...] sorted by x -> tuple of (x×10, log2(factor) Q12) pairs."""
    pts = cfg.get(key)
    if pts is None:
        return ()
    if not isinstance(pts, (list, tuple)) or not 1 <= len(pts) <= 16:
        raise ConfigError("%s: expected a list of 1..16 [x, factor] pairs" % key)
    out = []
    last = None
    for p in pts:
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise ConfigError("%s: %r is not an [x, factor] pair" % (key, p))
        x = need_num({key: p[0]}, key, lo, hi)
        f = need_num({key + " factor": p[1]}, key + " factor", 0.1, 10.0)
        x10 = int(x * 10 + (0.5 if x >= 0 else -0.5))
        if last is not None and x10 <= last:
            raise ConfigError("%s: x values must increase (%r)" % (key, p[0]))
        last = x10
        out.append((x10, log2_real_q12(f)))
    return tuple(out)


def interp(table, x10):
    """Piecewise-linear lookup in a _comp_table, flat beyond the ends (ints only)."""
    if not table:
        return 0
    if x10 <= table[0][0]:
        return table[0][1]
    n = len(table)
    if x10 >= table[n - 1][0]:
        return table[n - 1][1]
    i = 1
    while table[i][0] < x10:
        i += 1
    x0, y0 = table[i - 1]
    x1, y1 = table[i]
    # |y1 - y0| < 2**15, x10 - x0 < 2**11: product < 2**26
    return y0 + (y1 - y0) * (x10 - x0) // (x1 - x0)
