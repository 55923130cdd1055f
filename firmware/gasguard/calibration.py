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

The zero/span math of the sensor models and the CAL checks are gasguard.cal_math, a part of
this module loaded when a record is applied or a step is checked (reading the record, `CAL?`,
does not load it). This module is boot/CAL-time code (gasguard.lazy.BOOT_ONLY): what the
alarm path keeps of a calibration is the model's state, plain integers applied with
`model.set_cal()` (gasguard.sensing).
"""

import struct

from gasguard import record
from gasguard.lazy import release
from gasguard.sensing import CalibrationError

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
    "compute_zero", "compute_span", "check_date", "check_clean_air", "check_alarms",
)
_M = []  # gasguard.cal_math, once loaded (_math())


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
            _math().calibrate(model, self.zero_uv, self.span_uv, self.span_ppm_x10)
        except CalibrationError:
            model.set_cal(*model.nominal)
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
        model.set_cal(*model.nominal)
        raise CalibrationError("no calibration for this channel")
    cal.apply(model)


def _math():
    """gasguard.cal_math, loaded on first use and held by this module only: it is not left in
    sys.modules, so it leaves the heap when calibration is released (lazy.BOOT_ONLY) without a
    release list entry of its own."""
    if not _M:
        import gasguard.cal_math

        _M.append(gasguard.cal_math)
        release("cal_math")
    return _M[0]


def compute_zero(model_or_cfg, uv):
    """Check a clean-air reading as a zero for this sensor; return it (int µV)."""
    return _math().compute_zero(model_or_cfg, uv)


def check_clean_air(model, uv, limit_x10):
    """A zero must be taken in clean air: the reading, converted by the sensor's nominal
    model (its datasheet curve, no calibration), must be below limit_x10 (ppm x 10). The
    model is left as it was (gasguard.cal_math)."""
    _math().check_clean_air(model, uv, limit_x10)


def check_alarms(model, cal, points):
    """The firmware's own end-to-end check of a calibration before it is committed: with cal
    applied, a sensor behaving as its nominal model at each (true_x10, must_x10) point must
    read at least must_x10 (gasguard.cal_math)."""
    _math().check_alarms(model, cal, points)


def compute_span(model_or_cfg, zero_uv, uv, ref_ppm_x10):
    """Check a span-gas reading against the zero; return the sensitivity gain as a float
    (reference / uncorrected reading; 1.0 = nominal). Raises CalibrationError."""
    return _math().compute_span(model_or_cfg, zero_uv, uv, ref_ppm_x10)


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
        m = _math()._model(model_or_cfg)
        compute_zero(m, uv)
        c = ChannelCal(m.gas, m.name, uv, None, None, date, operator)
        return self._replace(c)

    def with_span(self, model_or_cfg, uv, ref_ppm_x10, date, operator):
        """A new record with a span point on top of the existing zero for the gas."""
        m = _math()._model(model_or_cfg)
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
