"""Semiconductor (SnO2) methane sensor model: MQ-4 / TGS2611 class (see gasguard.sensors)."""

from gasguard.sensorlib import (
    ONE, OK, OVER, Q, UNDER, CalibrationError, comp_table, exp2_q12, interp, lel_ppm,
    log2_q12, log2_real_q12, pct_lel_x10,
)
from gasguard.validate import ConfigError, need_choice, need_int, need_num, reject_unknown


class MethaneMOS:
    """SnO2 methane sensor (MQ-4 / TGS2611 class) read across a load resistor.

    Circuit: Vc -> Rs (sensor) -> RL -> ground; V_RL is scaled down by `adc_div` onto
    the ADC. With Vtop = Vc/adc_div in ADC µV and v the ADC reading:
        Rs/RL = (Vtop - v) / v
        log2(Rs/R0) = log2(Vtop - v) - log2(v) + K        K = log2(RL/R0)
        ppm = a · (Rs/R0)^b  - ppm_air                    (ppm_air: the fit at clean air)
    Subtracting the fit's value at the clean-air ratio makes clean air read exactly 0
    (the MQ-4 fit gives 16 ppm there). Zero calibration sets R0 from a clean-air
    reading (Rs_air / air_ratio); span calibration adds a log-domain gain.
    """

    gas = "ch4"
    KEYS = (
        "model", "vc_mv", "rl_ohm", "adc_div", "a", "b", "air_ratio", "r0_ohm",
        "rs_air_min_ohm", "rs_air_max_ohm", "range_ppm", "span_min_ppm",
        "span_gain_min", "span_gain_max", "high_rs_factor", "warmup_s", "stuck_s",
        "temp_comp", "rh_comp", "lel_vol_pct",
    )

    def __init__(self, cfg=None):
        cfg = {} if cfg is None else cfg
        reject_unknown(cfg, self.KEYS, "sensor")
        self.name = need_choice(cfg, "model", ("mq4", "mos_ch4"), "mq4")
        self.vc_uv = need_int(cfg, "vc_mv", 1000, 12000, 5000) * 1000
        self.rl_ohm = need_int(cfg, "rl_ohm", 100, 1000000, 20000)
        div = need_num(cfg, "adc_div", 1.0, 20.0, 2.0)
        self.vtop_uv = int(self.vc_uv / div + 0.5)
        if self.vtop_uv > 3300000:
            raise ConfigError("adc_div: Vc/adc_div = %d µV exceeds the ADC input range" % self.vtop_uv)
        need = self.name == "mos_ch4"
        a = need_num(cfg, "a", 0.01, 1000000.0, None if need else 1012.7)
        b = need_num(cfg, "b", -4.0, -0.2, None if need else -2.786)
        air = need_num(cfg, "air_ratio", 1.1, 50.0, None if need else 4.4)
        r0 = need_int(cfg, "r0_ohm", 100, 1000000, 10000)
        self.rs_air_min = need_int(cfg, "rs_air_min_ohm", 100, 10000000, 5000)
        self.rs_air_max = need_int(cfg, "rs_air_max_ohm", 100, 10000000, 200000)
        if self.rs_air_min >= self.rs_air_max:
            raise ConfigError("rs_air_min_ohm: must be below rs_air_max_ohm")
        self.range_ppm = need_int(cfg, "range_ppm", 100, 100000, 10000)
        self.span_min_ppm = need_int(cfg, "span_min_ppm", 10, self.range_ppm, min(300, self.range_ppm))
        self.gain_min = need_num(cfg, "span_gain_min", 0.05, 1.0, 0.25)
        self.gain_max = need_num(cfg, "span_gain_max", 1.0, 20.0, 4.0)
        hf = need_num(cfg, "high_rs_factor", 1.5, 100.0, 3.0)
        self.warmup_s = need_int(cfg, "warmup_s", 0, 7200, 300)
        self.stuck_s = need_int(cfg, "stuck_s", 0, 86400, 3600)
        self.temp_comp = comp_table(cfg, "temp_comp", -40, 85)
        self.rh_comp = comp_table(cfg, "rh_comp", 0, 100)
        self.lel_ppm = lel_ppm(cfg.get("lel_vol_pct", 5.0))

        self.b_q12 = int(b * ONE - 0.5)  # b < 0: round half away from zero
        self.c_q12 = log2_real_q12(a * 10.0)  # fit constant for ppm×10
        self.air_q12 = log2_real_q12(air)
        self.high_q12 = self.air_q12 + log2_real_q12(hf)
        self.range_ppm_x10 = self.range_ppm * 10
        self.k_nominal = log2_q12(self.rl_ohm) - log2_q12(r0)
        # rails: V_RL below 1 % of Vc = open (Rs > 99·RL); above 98 % = short (Rs < RL/49)
        self.rail_low_uv = self.vtop_uv // 100
        self.rail_high_uv = self.vtop_uv * 98 // 100
        self.comp_q12 = 0
        self.status = OK
        self.uncalibrate()

    # --- calibration ---------------------------------------------------------------
    def _ratio_q12(self, uv):
        """log2((Vtop - v)/v) = log2(Rs/RL), v clipped into 1..Vtop-1."""
        vt = self.vtop_uv
        if uv < 1:
            uv = 1
        elif uv > vt - 1:
            uv = vt - 1
        return log2_q12(vt - uv) - log2_q12(uv)

    def _rs_uv(self, rs_ohm):
        """ADC µV for a sensor resistance (config/calibration time)."""
        return self.vtop_uv * self.rl_ohm // (self.rl_ohm + rs_ohm)

    def zero_window_uv(self):
        # more Rs -> fewer µV
        return self._rs_uv(self.rs_air_max), self._rs_uv(self.rs_air_min)

    def uncalibrate(self):
        self.k_q12 = self.k_nominal
        self.span_q12 = 0
        self.zero_uv = None
        self._update_air()

    def state(self):
        """The calibration state, to restore after a trial calibration."""
        return (self.k_q12, self.span_q12, self.zero_uv)

    def restore(self, st):
        self.k_q12, self.span_q12, self.zero_uv = st
        self._update_air()

    def _update_air(self):
        self.p_air = exp2_q12(self.c_q12 + ((self.b_q12 * self.air_q12) >> Q) + self.span_q12)
        # above this log the reading is over the range whatever the rounding
        self.max_q12 = log2_q12(self.range_ppm_x10 + self.p_air) + 16
        if self.zero_uv is None:
            self.clean_air_uv = self.uv(0)
        else:
            self.clean_air_uv = self.zero_uv  # reads exactly 0 (the inverse is 0.05 % off)

    def _k_for_zero(self, zero_uv):
        return self.air_q12 - self._ratio_q12(zero_uv)

    def span_gain_q12(self, zero_uv, span_uv, span_ppm_x10):
        """log2 of the span gain (reference / reading after zero), Q12; checks it."""
        saved = self.state()
        try:
            self.k_q12 = self._k_for_zero(zero_uv)
            self.span_q12 = 0
            self._update_air()
            raw = self._raw_log(span_uv)
            if raw is None or raw <= log2_q12(self.p_air):
                raise CalibrationError(
                    "span reading %d µV is not above the clean-air zero %d µV" % (span_uv, zero_uv))
            # reading after subtracting the clean-air term, as the forward path does
            read = exp2_q12(raw) - self.p_air
            if read < 1:
                raise CalibrationError("span reading %d µV is at the zero" % span_uv)
            # gain g: a·g·r^b - a·g·air^b = ref  ->  g = ref / read
            g = log2_q12(span_ppm_x10) - log2_q12(read)
        finally:
            self.restore(saved)
        gmin = log2_real_q12(self.gain_min)
        gmax = log2_real_q12(self.gain_max)
        if g < gmin or g > gmax:
            raise CalibrationError(
                "span gain %d/4096 (log2) outside the plausible band %r..%r"
                % (g, self.gain_min, self.gain_max))
        return g

    def calibrate(self, zero_uv, span_uv=None, span_ppm_x10=None):
        """Apply a zero (and optional span); raises CalibrationError, changing nothing."""
        lo, hi = self.zero_window_uv()
        if not lo <= zero_uv <= hi:
            raise CalibrationError(
                "zero %d µV is outside the clean-air window %d..%d µV (Rs %d..%d ohm)"
                % (zero_uv, lo, hi, self.rs_air_min, self.rs_air_max))
        g = 0
        if span_uv is not None:
            self.check_span_ppm(span_ppm_x10)
            g = self.span_gain_q12(zero_uv, span_uv, span_ppm_x10)
        self.k_q12 = self._k_for_zero(zero_uv)
        self.span_q12 = g
        self.zero_uv = zero_uv
        self._update_air()

    def check_span_ppm(self, span_ppm_x10):
        if not isinstance(span_ppm_x10, int) or not (
            self.span_min_ppm * 10 <= span_ppm_x10 <= self.range_ppm * 10
        ):
            raise CalibrationError(
                "span gas %r ppm×10 is outside %d..%d ppm for %s"
                % (span_ppm_x10, self.span_min_ppm, self.range_ppm, self.name))

    # --- forward / inverse ---------------------------------------------------------
    def set_environment(self, temp_c_x10, rh_pct=None):
        """Compensation: Rs is divided by the configured factor for this temperature
        (and humidity). Integer interpolation; no effect without temp_comp/rh_comp."""
        c = interp(self.temp_comp, temp_c_x10)
        if rh_pct is not None:
            c += interp(self.rh_comp, rh_pct * 10)
        self.comp_q12 = c

    def _lr(self, uv):
        lr = self._ratio_q12(uv) + self.k_q12 - self.comp_q12
        if lr > 49152:
            lr = 49152
        elif lr < -49152:
            lr = -49152
        return lr

    def _raw_log(self, uv):
        return self.c_q12 + ((self.b_q12 * self._lr(uv)) >> Q) + self.span_q12

    def ppm_x10(self, uv):
        lr = self._lr(uv)
        if lr > self.high_q12:
            self.status = UNDER  # Rs far above clean air: heater or element failure
            return 0
        L = self.c_q12 + ((self.b_q12 * lr) >> Q) + self.span_q12
        if L > self.max_q12:  # clearly beyond the range
            self.status = OVER
            return self.range_ppm_x10
        p = exp2_q12(L) - self.p_air
        self.status = OK
        if p <= 0:
            return 0
        if p > self.range_ppm_x10:
            self.status = OVER
            return self.range_ppm_x10
        return p

    def uv(self, ppm_x10):
        """Inverse model (simulation): the ADC µV this concentration produces."""
        if ppm_x10 < 0:
            ppm_x10 = 0
        if ppm_x10 > 10000000:
            ppm_x10 = 10000000
        L = log2_q12(ppm_x10 + self.p_air) - self.span_q12
        lr_c = ((L - self.c_q12) * ONE) // self.b_q12
        q = lr_c + self.comp_q12 - self.k_q12  # log2(Rs/RL)
        if q < -14 * ONE:
            q = -14 * ONE
        if q > 12 * ONE:
            q = 12 * ONE
        x16 = exp2_q12(q + 16 * ONE)  # Rs/RL in Q16
        v = (self.vtop_uv * 65536 + (65536 + x16) // 2) // (65536 + x16)
        return v

    def pct_lel_x10(self, ppm_x10):
        return pct_lel_x10(ppm_x10, self.lel_ppm)
