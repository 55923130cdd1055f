"""The sensor models' zero and span, and the checks of a CAL step: clean-air windows, span
gains and their plausibility, the state to restore after a trial, the alarm-point check.

A part of gasguard.calibration, loaded by it only when a record is applied (boot, CAL COMMIT)
or a CAL step is checked, and held by it: it leaves the heap with calibration (boot/CAL-time
code, gasguard.lazy.BOOT_ONLY), so reading the record (`CAL?`) does not load it. What the
alarm path keeps is the model's state, plain integers applied with `model.set_cal()`.
"""

from gasguard.sensing import CalibrationError, ElectrochemCO, exp2_q12, log2_q12


def _check_int(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise CalibrationError("%s: %r is not an integer in %d..%d" % (name, v, lo, hi))
    return v


def _model(model_or_cfg):
    """A model object, or one built from a config dict (host tools, simulator)."""
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


def _raw_log(m, uv):
    lr = m.ratio_q12(uv) + m.k_q12 - m.comp_q12
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
        m.set_cal(m.air_q12 - m.ratio_q12(zero_uv), 0, m.zero_uv)
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
    m.set_cal(m.air_q12 - m.ratio_q12(zero_uv), g, zero_uv)


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
