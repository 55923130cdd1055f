"""Electrochemical CO cell model (see gasguard.sensors)."""

from gasguard.sensorlib import OK, OVER, UNDER, CalibrationError
from gasguard.validate import ConfigError, need_choice, need_int, need_num, reject_unknown


class ElectrochemCO:
    """Electrochemical CO cell after a transimpedance amplifier with a bias offset.

        v = zero + sens · ppm · (1 + tc·(T − 20 °C)) + zero_tc · (T − 20 °C)
        ppm×10 = (v − zero_eff) · 64 // S      S = sens · 6.4 (µV per ppm, scaled)

    Multiplying by 64 keeps the product below 2**29 for any ADC reading, and S keeps
    1/64 µV-per-ppm resolution. Negative readings are reported as 0; a reading more
    than neg_limit_ppm below the zero is UNDER (out of physical range).
    """

    gas = "co"
    KEYS = (
        "model", "zero_uv", "uv_per_ppm", "zero_tol_uv", "tc_pct_per_c", "zero_tc_uv_per_c",
        "range_ppm", "neg_limit_ppm", "span_min_ppm", "span_gain_min", "span_gain_max",
        "rail_low_uv", "rail_high_uv", "warmup_s", "stuck_s",
    )

    def __init__(self, cfg=None):
        cfg = {} if cfg is None else cfg
        reject_unknown(cfg, self.KEYS, "sensor")
        self.name = need_choice(cfg, "model", ("ec_co",), "ec_co")
        self.zero_nominal = need_int(cfg, "zero_uv", 0, 3000000, 400000)
        sens = need_num(cfg, "uv_per_ppm", 10.0, 16000.0, 3200.0)
        self.s_nominal = int(sens * 6.4 + 0.5)
        self.zero_tol = need_int(cfg, "zero_tol_uv", 0, 1000000, 100000)
        tc = need_num(cfg, "tc_pct_per_c", -2.0, 2.0, 0.0)
        self.tc_q = int(tc * 100 + (0.5 if tc >= 0 else -0.5))  # 1e-4 per °C
        self.zero_tc = need_int(cfg, "zero_tc_uv_per_c", -10000, 10000, 0)
        self.range_ppm = need_int(cfg, "range_ppm", 10, 10000, 500)
        self.range_ppm_x10 = self.range_ppm * 10
        self.neg_limit_x10 = need_int(cfg, "neg_limit_ppm", 1, 1000, 20) * 10
        self.span_min_ppm = need_int(cfg, "span_min_ppm", 1, self.range_ppm, min(50, self.range_ppm))
        self.gain_min = need_num(cfg, "span_gain_min", 0.05, 1.0, 0.5)
        self.gain_max = need_num(cfg, "span_gain_max", 1.0, 20.0, 2.0)
        self.rail_low_uv = need_int(cfg, "rail_low_uv", 0, 3300000, 20000)
        self.rail_high_uv = need_int(cfg, "rail_high_uv", 0, 3300000, 2900000)
        if self.rail_low_uv >= self.rail_high_uv:
            raise ConfigError("rail_low_uv: must be below rail_high_uv")
        self.warmup_s = need_int(cfg, "warmup_s", 0, 7200, 60)
        self.stuck_s = need_int(cfg, "stuck_s", 0, 86400, 3600)
        self._dt_x10 = 0
        self.status = OK
        self.uncalibrate()

    def zero_window_uv(self):
        return self.zero_nominal - self.zero_tol, self.zero_nominal + self.zero_tol

    def uncalibrate(self):
        self.zero_cal = self.zero_nominal
        self.s_cal = self.s_nominal
        self._update()

    def state(self):
        return (self.zero_cal, self.s_cal)

    def restore(self, st):
        self.zero_cal, self.s_cal = st
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

    def check_span_ppm(self, span_ppm_x10):
        if not isinstance(span_ppm_x10, int) or not (
            self.span_min_ppm * 10 <= span_ppm_x10 <= self.range_ppm * 10
        ):
            raise CalibrationError(
                "span gas %r ppm×10 is outside %d..%d ppm for %s"
                % (span_ppm_x10, self.span_min_ppm, self.range_ppm, self.name))

    def span_s(self, zero_uv, span_uv, span_ppm_x10):
        d = span_uv - zero_uv
        if d <= 0:
            raise CalibrationError(
                "span reading %d µV is not above the zero %d µV" % (span_uv, zero_uv))
        s = (d * 64 + span_ppm_x10 // 2) // span_ppm_x10
        # gain = reference / reading = S_nominal / S_cal
        if s * self.gain_max < self.s_nominal or s * self.gain_min > self.s_nominal:
            raise CalibrationError(
                "span gain %.3f outside the plausible band %r..%r (sensitivity %d µV/ppm)"
                % (self.s_nominal / s if s else 0.0, self.gain_min, self.gain_max, s * 10 // 64))
        return s

    def calibrate(self, zero_uv, span_uv=None, span_ppm_x10=None):
        lo, hi = self.zero_window_uv()
        if not lo <= zero_uv <= hi:
            raise CalibrationError(
                "zero %d µV is outside the clean-air window %d..%d µV" % (zero_uv, lo, hi))
        s = self.s_nominal
        if span_uv is not None:
            self.check_span_ppm(span_ppm_x10)
            s = self.span_s(zero_uv, span_uv, span_ppm_x10)
        self.zero_cal = zero_uv
        self.s_cal = s
        self._update()

    def ppm_x10(self, uv):
        d = uv - self.zero_eff
        if d > 8388607:
            d = 8388607
        elif d < -8388607:
            d = -8388607
        p = (d * 64) // self.s_eff
        if p < 0:
            self.status = UNDER if p < -self.neg_limit_x10 else OK
            return 0
        if p > self.range_ppm_x10:
            self.status = OVER
            return self.range_ppm_x10
        self.status = OK
        return p

    def uv(self, ppm_x10):
        """Inverse (simulation): the µV this concentration produces at the current state."""
        # smallest v with (v - zero)·64 // S >= ppm_x10
        return self.zero_eff + (ppm_x10 * self.s_eff + 63) // 64
