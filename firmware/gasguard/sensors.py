"""Sensor models: ADC microvolts -> concentration (ppm×10) and back, in integers.

A model is a small object chosen by name in the board config (`from_config`):

    mq4, mos_ch4   MethaneMOS     semiconductor (SnO2) methane sensor in a load-resistor
                                  divider; Rs/R0 power law  ppm = a·(Rs/R0)^b
    ec_co          ElectrochemCO  electrochemical CO cell after a transimpedance stage;
                                  linear µV per ppm around a zero offset

Every model has
    gas, name                      "ch4"/"co", the config name
    ppm_x10(uv) -> int             forward path (integers only; no allocation); clamps to
                                   0..range_ppm_x10 and sets .status to OK, OVER or UNDER
    uv(ppm_x10) -> int             inverse, for the simulator and `gasguard replay`
                                   (not on the sample path; may use large ints)
    clean_air_uv                   the µV of clean air for the current zero (nominal or calibrated)
    set_environment(temp_c_x10, rh_pct)   compensation hook (integers)
    zero_window_uv() -> (lo, hi)   plausible clean-air readings (for calibration checks)
    calibrate(zero_uv, span_uv, span_ppm_x10) / uncalibrate()  used by gasguard.calibration
    rail_low_uv, rail_high_uv      ADC readings beyond which the sensor is open / shorted
    warmup_s, stuck_s              defaults for the channel (0 = no stuck check)

The models live in sensor_mos.py / sensor_co.py and the shared integer math in
sensorlib.py (small modules: MicroPython compiles each one with little RAM).
Config-time values given as floats (a, b, ratios) become integers at construction.
"""

from gasguard.sensorlib import (  # noqa: F401  (re-exported)
    OK, OVER, UNDER, CalibrationError, exp2_q12, lel_ppm, log2_q12, pct_lel_x10,
)
from gasguard.sensor_co import ElectrochemCO
from gasguard.sensor_mos import MethaneMOS
from gasguard.validate import ConfigError

MODELS = {"mq4": MethaneMOS, "mos_ch4": MethaneMOS, "ec_co": ElectrochemCO}


def from_config(cfg):
    """Build the model named by cfg["model"] (ConfigError for an unknown name)."""
    if not isinstance(cfg, dict):
        raise ConfigError("sensor: expected a dict, got %r" % (cfg,))
    name = cfg.get("model")
    cls = MODELS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError("model: %r is not one of %s" % (name, ", ".join(sorted(MODELS))))
    return cls(cfg)
