"""Per-channel zero/span calibration, kept in one rarely written, CRC-sealed record.

The record lives in the store under "calibration" and is framed by gasguard.record
(magic, version, length, CRC-32). Its payload (version 1, little-endian):

    count:u8, then per channel:
      gas_len:u8 gas:ascii   model_len:u8 model:ascii
      zero_uv:i32  span_uv:i32 (-1 = no span)  span_ppm_x10:i32 (0 = no span)
      date:u32 (yyyymmdd)  op_len:u8 operator:utf-8 (1..32 bytes)

What is stored are the measurements (µV in clean air, µV in span gas, the span gas
concentration), not derived gains: the model re-derives and re-checks them when the
record is applied, so a record made for another sensor model or circuit is refused.

Every change goes through a check that names the reason (CalibrationError, a
ValueError) and builds a new record; a refused value changes nothing. There is no
automatic baseline correction: zero and span only change by an explicit service step.

Also here: the zero/span math of the sensor models (clean-air windows, span gains and their
plausibility, the state to restore after a trial). This module is boot/CAL-time code
(gasguard.lazy.BOOT_ONLY): what the alarm path keeps of a calibration is the model's state,
plain integers applied with `model.set_cal()` (gasguard.sensing).
"""

import struct

from gasguard import record
from gasguard.sensing import CalibrationError, ElectrochemCO, exp2_q12, log2_q12

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


STORE_NAME = "calibration"
VERSION = const(1)
MAX_OPERATOR = const(32)

__all__ = (
    "CalibrationError", "ChannelCal", "CalibrationRecord", "load", "save", "apply",
    "compute_zero", "compute_span", "check_date", "calibrate", "uncalibrate", "state",
    "restore", "zero_window", "check_span_ppm",
)


def _model(model_or_cfg):
    if isinstance(model_or_cfg, dict):
        from gasguard.sensors import from_config  # a config (host tools, simulator)

        return from_config(model_or_cfg)
    return model_or_cfg


# ---- the models' zero and span ----------------------------------------------------------
# MethaneMOS: state (k_q12, span_q12, zero_uv), k = log2(RL/R0) from the zero, span_q12 the
# log2 gain; ElectrochemCO: state (zero_cal, s_cal), the zero µV and the sensitivity S.


def state(m):
    """The model's calibration state, to restore after a trial calibration."""
    if isinstance(m, ElectrochemCO):
        return (m.zero_cal, m.s_cal)
    return (m.k_q12, m.span_q12, m.zero_uv)


def restore(m, st):
    m.set_cal(*st)


def uncalibrate(m):
    m.set_cal(*m.nominal)


def zero_window(m):
    """The plausible clean-air readings (lo, hi) µV for a zero."""
    if isinstance(m, ElectrochemCO):
        return m.zero_nominal - m.zero_tol, m.zero_nominal + m.zero_tol
    # more Rs -> fewer µV
    return _rs_uv(m, m.rs_air_max), _rs_uv(m, m.rs_air_min)


def _rs_uv(m, rs_ohm):
    """ADC µV for a MOS sensor resistance."""
    return m.vtop_uv * m.rl_ohm // (m.rl_ohm + rs_ohm)


def _ratio_q12(m, uv):
    """log2((Vtop - v)/v) = log2(Rs/RL), v clipped into 1..Vtop-1 (as sensing's forward path)."""
    vt = m.vtop_uv
    if uv < 1:
        uv = 1
    elif uv > vt - 1:
        uv = vt - 1
    return log2_q12(vt - uv) - log2_q12(uv)


def _raw_log(m, uv):
    lr = _ratio_q12(m, uv) + m.k_q12 - m.comp_q12
    if lr > 49152:
        lr = 49152
    elif lr < -49152:
        lr = -49152
    return m.c_q12 + ((m.b_q12 * lr) >> 12) + m.span_q12


def check_span_ppm(m, span_ppm_x10):
    if not isinstance(span_ppm_x10, int) or not (
        m.span_min_ppm * 10 <= span_ppm_x10 <= m.range_ppm * 10
    ):
        raise CalibrationError(
            "span gas %r ppm×10 is outside %d..%d ppm for %s"
            % (span_ppm_x10, m.span_min_ppm, m.range_ppm, m.name))


def _mos_gain(m, zero_uv, span_uv, span_ppm_x10):
    """log2 of the MOS span gain (reference / reading after zero), Q12; checks it."""
    saved = state(m)
    try:
        m.set_cal(m.air_q12 - _ratio_q12(m, zero_uv), 0, m.zero_uv)
        raw = _raw_log(m, span_uv)
        if raw is None or raw <= log2_q12(m.p_air):
            raise CalibrationError(
                "span reading %d µV is not above the clean-air zero %d µV" % (span_uv, zero_uv))
        # reading after subtracting the clean-air term, as the forward path does
        read = exp2_q12(raw) - m.p_air
        if read < 1:
            raise CalibrationError("span reading %d µV is at the zero" % span_uv)
        # gain g: a·g·r^b - a·g·air^b = ref  ->  g = ref / read
        g = log2_q12(span_ppm_x10) - log2_q12(read)
    finally:
        restore(m, saved)
    if g < m.gain_lo_q12 or g > m.gain_hi_q12:
        raise CalibrationError(
            "span gain %d/4096 (log2) outside the plausible band %r..%r"
            % (g, m.gain_min, m.gain_max))
    return g


def _co_s(m, zero_uv, span_uv, span_ppm_x10):
    """The CO sensitivity S from a span reading; checks the gain."""
    d = span_uv - zero_uv
    if d <= 0:
        raise CalibrationError(
            "span reading %d µV is not above the zero %d µV" % (span_uv, zero_uv))
    s = (d * 64 + span_ppm_x10 // 2) // span_ppm_x10
    # gain = reference / reading = S_nominal / S_cal
    if s * m.gain_max < m.s_nominal or s * m.gain_min > m.s_nominal:
        raise CalibrationError(
            "span gain %.3f outside the plausible band %r..%r (sensitivity %d µV/ppm)"
            % (m.s_nominal / s if s else 0.0, m.gain_min, m.gain_max, s * 10 // 64))
    return s


def calibrate(m, zero_uv, span_uv=None, span_ppm_x10=None):
    """Apply a zero (and optional span) to model m; raises CalibrationError, changing nothing."""
    lo, hi = zero_window(m)
    co = isinstance(m, ElectrochemCO)
    if not lo <= zero_uv <= hi:
        if co:
            raise CalibrationError(
                "zero %d µV is outside the clean-air window %d..%d µV" % (zero_uv, lo, hi))
        raise CalibrationError(
            "zero %d µV is outside the clean-air window %d..%d µV (Rs %d..%d ohm)"
            % (zero_uv, lo, hi, m.rs_air_min, m.rs_air_max))
    if span_uv is not None:
        check_span_ppm(m, span_ppm_x10)
    if co:
        s = m.s_nominal if span_uv is None else _co_s(m, zero_uv, span_uv, span_ppm_x10)
        m.set_cal(zero_uv, s)
        return
    g = 0 if span_uv is None else _mos_gain(m, zero_uv, span_uv, span_ppm_x10)
    m.set_cal(m.air_q12 - _ratio_q12(m, zero_uv), g, zero_uv)


def check_date(date):
    """date as int yyyymmdd, 2020..2099, with a real month and day."""
    if isinstance(date, bool) or not isinstance(date, int):
        raise CalibrationError("date: expected an int yyyymmdd, got %r" % (date,))
    y, m, d = date // 10000, date // 100 % 100, date % 100
    if not 2020 <= y <= 2099 or not 1 <= m <= 12 or not 1 <= d <= 31:
        raise CalibrationError("date: %r is not a date yyyymmdd in 2020..2099" % (date,))
    if d > (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1]:
        raise CalibrationError("date: %r has no such day" % (date,))
    return date


def check_operator(op):
    if not isinstance(op, str):
        raise CalibrationError("operator: expected text, got %r" % (op,))
    b = op.encode()
    if not 1 <= len(b) <= MAX_OPERATOR:
        raise CalibrationError("operator: 1..%d bytes, got %d" % (MAX_OPERATOR, len(b)))
    for c in b:
        if c < 32 or c == 127:
            raise CalibrationError("operator: control characters are not allowed")
    return op


def _check_int(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise CalibrationError("%s: %r is not an integer in %d..%d" % (name, v, lo, hi))
    return v


class ChannelCal:
    """One channel's calibration: the clean-air zero and, optionally, a span point."""

    def __init__(self, gas, model, zero_uv, span_uv=None, span_ppm_x10=None, date=20200101,
                 operator="factory"):
        if gas not in ("ch4", "co"):
            raise CalibrationError("gas: %r is not ch4 or co" % (gas,))
        if not isinstance(model, str) or not 1 <= len(model) <= 16:
            raise CalibrationError("model: %r is not a model name" % (model,))
        self.gas = gas
        self.model = model
        self.zero_uv = _check_int("zero_uv", zero_uv, 0, 3300000)
        if (span_uv is None) != (span_ppm_x10 is None):
            raise CalibrationError("span: needs both the reading and the gas concentration")
        if span_uv is not None:
            _check_int("span_uv", span_uv, 0, 3300000)
            _check_int("span_ppm_x10", span_ppm_x10, 1, 10000000)
        self.span_uv = span_uv
        self.span_ppm_x10 = span_ppm_x10
        self.date = check_date(date)
        self.operator = check_operator(operator)

    def apply(self, model):
        """Configure model with this calibration. On any problem the model is left on its
        nominal parameters and CalibrationError says why (gasguard.sensing.Channel calls
        this: the channel itself imports no calibration code)."""
        try:
            if self.gas != model.gas:
                raise CalibrationError("record is for %s, channel is %s" % (self.gas, model.gas))
            if self.model != model.name:
                raise CalibrationError(
                    "record was made for sensor model %s, channel has %s" % (self.model, model.name))
            calibrate(model, self.zero_uv, self.span_uv, self.span_ppm_x10)
        except CalibrationError:
            uncalibrate(model)
            raise

    def __eq__(self, other):
        return isinstance(other, ChannelCal) and self.as_dict() == other.as_dict()

    def as_dict(self):
        return {
            "gas": self.gas, "model": self.model, "zero_uv": self.zero_uv,
            "span_uv": self.span_uv, "span_ppm_x10": self.span_ppm_x10,
            "date": self.date, "operator": self.operator,
        }

    def __repr__(self):
        return "ChannelCal(%r)" % (self.as_dict(),)


def apply(model, cal):
    """Configure model with cal (a ChannelCal). On any problem the model is left on its
    nominal parameters and CalibrationError says why."""
    if cal is None:
        uncalibrate(model)
        raise CalibrationError("no calibration for this channel")
    cal.apply(model)


def compute_zero(model_or_cfg, uv):
    """Check a clean-air reading as a zero for this sensor; return it (int µV)."""
    m = _model(model_or_cfg)
    _check_int("zero reading", uv, 0, 3300000)
    lo, hi = zero_window(m)
    if not lo <= uv <= hi:
        raise CalibrationError(
            "zero %d µV is outside the clean-air window %d..%d µV of %s" % (uv, lo, hi, m.name))
    return uv


def check_clean_air(model, uv, limit_x10):
    """A zero must be taken in clean air: the reading, converted by the sensor's nominal
    model (its datasheet curve, no calibration), must be below limit_x10 (ppm x 10).
    The model is left as it was."""
    saved = state(model)
    try:
        uncalibrate(model)
        got = model.ppm_x10(uv)
    finally:
        restore(model, saved)
    if got >= limit_x10:
        raise CalibrationError("zero: %d ppm by the sensor's clean-air model (limit %d): not clean "
                               "air" % (got // 10, limit_x10 // 10))


def check_alarms(model, cal, points):
    """The firmware's own end-to-end check of a calibration before it is committed: with cal
    applied, a sensor behaving as its nominal model at each (true_x10, must_x10) point must
    read at least must_x10 (so the alarm set points are still reached). The model is left as
    it was. CalibrationError names the first point that fails."""
    saved = state(model)
    try:
        uncalibrate(model)
        uvs = [model.uv(t) for t, _m in points]
        calibrate(model, cal.zero_uv, cal.span_uv, cal.span_ppm_x10)
        for i in range(len(points)):
            t, need = points[i]
            got = model.ppm_x10(uvs[i])
            if got < need:
                raise CalibrationError(
                    "with this calibration %d ppm of gas reads %d ppm, below %d ppm: it would "
                    "not alarm" % (t // 10, got // 10, need // 10))
    finally:
        restore(model, saved)


def compute_span(model_or_cfg, zero_uv, uv, ref_ppm_x10):
    """Check a span-gas reading against the zero; return the sensitivity gain as a float
    (reference / uncorrected reading; 1.0 = nominal). Raises CalibrationError."""
    m = _model(model_or_cfg)
    _check_int("span reading", uv, 0, 3300000)
    compute_zero(m, zero_uv)
    check_span_ppm(m, ref_ppm_x10)
    saved = state(m)
    try:
        calibrate(m, zero_uv, uv, ref_ppm_x10)
        if isinstance(m, ElectrochemCO):
            gain = m.s_nominal / m.s_cal
        else:
            gain = 2.0 ** (m.span_q12 / 4096.0)
    finally:
        restore(m, saved)
    return gain


class CalibrationRecord:
    """All channels' calibration. `problem` is None, "missing" or "corrupt: <why>"."""

    def __init__(self, channels=(), problem=None):
        self.channels = {}
        for c in channels:
            if not isinstance(c, ChannelCal):
                raise CalibrationError("expected ChannelCal entries")
            if c.gas in self.channels:
                raise CalibrationError("two entries for %s" % c.gas)
            self.channels[c.gas] = c
        self.problem = problem

    def get(self, gas):
        """The ChannelCal for gas, or None (the channel then reports cal_missing)."""
        return self.channels.get(gas)

    def gases(self):
        return sorted(self.channels)

    # --- changes (each returns a new record; self is unchanged) ----------------------
    def with_zero(self, model_or_cfg, uv, date, operator):
        """A new record with gas's zero set from a clean-air reading. A new zero drops the
        old span point, which was measured against the old zero: redo the span."""
        m = _model(model_or_cfg)
        compute_zero(m, uv)
        c = ChannelCal(m.gas, m.name, uv, None, None, date, operator)
        return self._replace(c)

    def with_span(self, model_or_cfg, uv, ref_ppm_x10, date, operator):
        """A new record with a span point on top of the existing zero for the gas."""
        m = _model(model_or_cfg)
        old = self.channels.get(m.gas)
        if old is None:
            raise CalibrationError("span needs a zero first for %s" % m.gas)
        if old.model != m.name:
            raise CalibrationError("the zero was made for %s, not %s" % (old.model, m.name))
        compute_span(m, old.zero_uv, uv, ref_ppm_x10)
        c = ChannelCal(m.gas, m.name, old.zero_uv, uv, ref_ppm_x10, date, operator)
        return self._replace(c)

    def without(self, gas):
        return CalibrationRecord([c for g, c in self.channels.items() if g != gas])

    def _replace(self, c):
        others = [x for g, x in self.channels.items() if g != c.gas]
        return CalibrationRecord(others + [c])

    # --- bytes ---------------------------------------------------------------------
    def encode(self):
        out = bytearray(struct.pack("<B", len(self.channels)))
        for gas in self.gases():
            c = self.channels[gas]
            for s in (c.gas, c.model):
                b = s.encode()
                out += struct.pack("<B", len(b)) + b
            su = -1 if c.span_uv is None else c.span_uv
            sp = 0 if c.span_ppm_x10 is None else c.span_ppm_x10
            out += struct.pack("<iiiI", c.zero_uv, su, sp, c.date)
            b = c.operator.encode()
            out += struct.pack("<B", len(b)) + b
        return record.seal(bytes(out), VERSION)

    @staticmethod
    def decode(buf):
        """Parse sealed bytes; raises CalibrationError (with the reason) if anything is off."""
        try:
            p = record.unseal(buf, VERSION)
        except ValueError as e:
            raise CalibrationError("record: %s" % e)
        try:
            n = p[0]
            pos = 1
            chans = []
            for _ in range(n):
                strs = []
                for _k in range(2):
                    ln = p[pos]
                    strs.append(bytes(p[pos + 1 : pos + 1 + ln]).decode())
                    pos += 1 + ln
                zero, su, sp, date = struct.unpack_from("<iiiI", p, pos)
                pos += 16
                ln = p[pos]
                if pos + 1 + ln > len(p):
                    raise CalibrationError("record: truncated operator")
                op = bytes(p[pos + 1 : pos + 1 + ln]).decode()
                pos += 1 + ln
                if su == -1 and sp == 0:
                    su = sp = None
                chans.append(ChannelCal(strs[0], strs[1], zero, su, sp, date, op))
            if pos != len(p):
                raise CalibrationError("record: %d trailing bytes" % (len(p) - pos))
        except CalibrationError:
            raise
        except Exception as e:  # IndexError, UnicodeError, struct.error (not a ValueError)
            raise CalibrationError("record: malformed payload (%s)" % e)
        return CalibrationRecord(chans)


def load(store, name=STORE_NAME):
    """The calibration record from the store. Never raises for bad content: a missing or
    corrupt record gives an empty record whose `problem` says what happened."""
    buf = store.read(name)
    if buf is None:
        return CalibrationRecord(problem="missing")
    try:
        return CalibrationRecord.decode(buf)
    except CalibrationError as e:
        return CalibrationRecord(problem="corrupt: %s" % e)


def save(store, rec, name=STORE_NAME):
    """Write the record (atomic replace in the store)."""
    if not isinstance(rec, CalibrationRecord) or rec.problem is not None:
        raise CalibrationError("refusing to save a record that has a problem")
    store.write(name, rec.encode())
