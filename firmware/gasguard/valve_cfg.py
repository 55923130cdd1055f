"""Valve controller configuration: defaults, validation, integer scaling (docs/valve.md).

Split from gasguard.valve so each module compiles within the ESP32 heap.
"""

from gasguard.validate import ConfigError, need_bool, need_choice, need_int, need_num, reject_unknown

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_CLAMP = const(3200000)

CLOSE_CAUSES = ("interlock", "over_pressure", "under_pressure", "over_flow", "manual", "link_lost", "unknown")

DEFAULTS = {
    "tier": "M",
    "link_lost_action": None,  # None: "close" for tiers M/H, "report" for L
    "switch_closed_level": 1,
    "switch_debounce_ms": 50,
    "trip_pulse_ms": 300,
    "trip_retries": 2,
    "close_time_ms": 3000,
    "sample_ms": 100,
    "over_pressure_pa": 8000,
    "over_pressure_tol_pa": 2000,
    "under_pressure_pa": 800,
    "under_pressure_tol_pa": 200,
    "rated_flow_m3h_x1000": 2500,
    "over_flow_x100": 180,
    "over_flow_tol_x100": 30,
    "backup_trip": True,
    "backup_confirm_ms": 1000,
    "classify_window_ms": 3000,
    "attribution_ms": 6000,
    "pressure_uv_zero": 500000,
    "pressure_uv_per_kpa": 100000.0,
    "pressure_uv_min": 300000,
    "pressure_uv_max": 3000000,
    "flow_mode": "none",
    "flow_uv_zero": 500000,
    "flow_uv_per_m3h": 400000.0,
    "flow_pulses_per_m3": 100,
    "flow_window_ms": 1000,
    "supply_divider": 2.0,
    "supply_low_mv": 3300,
    "supply_ms": 1000,
    "link": None,
}


def _fixed(scale):
    """(gain, shift) so that (x * gain) >> shift ~= x * scale for |x| <= 3.2 V in µV, in 31 bits."""
    shift = 0
    gain = int(scale + 0.5)
    for s in range(0, 24):
        g = int(scale * (1 << s) + 0.5)
        if g * _CLAMP >= (1 << 29):
            break
        shift, gain = s, g
    if gain == 0:
        raise ConfigError("scale %r is too small to represent" % scale)
    return gain, shift


def valve_config(cfg):
    """Validate a valve config (missing keys take DEFAULTS); return a full copy or raise ConfigError."""
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConfigError("valve: expected a dict")
    reject_unknown(cfg, DEFAULTS, "valve")
    d = DEFAULTS
    c = {}
    c["tier"] = need_choice(cfg, "tier", ("L", "M", "H"), d["tier"])
    default_action = "report" if c["tier"] == "L" else "close"
    a = cfg.get("link_lost_action")
    c["link_lost_action"] = need_choice({"x": default_action if a is None else a}, "x", ("close", "report"))
    c["switch_closed_level"] = need_int(cfg, "switch_closed_level", 0, 1, d["switch_closed_level"])
    c["switch_debounce_ms"] = need_int(cfg, "switch_debounce_ms", 5, 500, d["switch_debounce_ms"])
    c["trip_pulse_ms"] = need_int(cfg, "trip_pulse_ms", 20, 2000, d["trip_pulse_ms"])
    c["trip_retries"] = need_int(cfg, "trip_retries", 0, 10, d["trip_retries"])
    c["close_time_ms"] = need_int(cfg, "close_time_ms", 500, 3000, d["close_time_ms"])
    c["sample_ms"] = need_int(cfg, "sample_ms", 20, 1000, d["sample_ms"])
    c["over_pressure_pa"] = need_int(cfg, "over_pressure_pa", 3000, 20000, d["over_pressure_pa"])
    c["over_pressure_tol_pa"] = need_int(cfg, "over_pressure_tol_pa", 0, 5000, d["over_pressure_tol_pa"])
    c["under_pressure_pa"] = need_int(cfg, "under_pressure_pa", 200, 3000, d["under_pressure_pa"])
    c["under_pressure_tol_pa"] = need_int(cfg, "under_pressure_tol_pa", 0, 1000, d["under_pressure_tol_pa"])
    if c["under_pressure_pa"] + c["under_pressure_tol_pa"] >= c["over_pressure_pa"] - c["over_pressure_tol_pa"]:
        raise ConfigError(
            "under_pressure_pa: %d (+%d) overlaps over_pressure_pa %d (-%d)"
            % (c["under_pressure_pa"], c["under_pressure_tol_pa"], c["over_pressure_pa"], c["over_pressure_tol_pa"])
        )
    c["rated_flow_m3h_x1000"] = need_int(cfg, "rated_flow_m3h_x1000", 100, 100000, d["rated_flow_m3h_x1000"])
    c["over_flow_x100"] = need_int(cfg, "over_flow_x100", 110, 400, d["over_flow_x100"])
    c["over_flow_tol_x100"] = need_int(cfg, "over_flow_tol_x100", 0, c["over_flow_x100"] - 101, d["over_flow_tol_x100"])
    c["backup_trip"] = need_bool(cfg, "backup_trip", d["backup_trip"])
    c["backup_confirm_ms"] = need_int(cfg, "backup_confirm_ms", 100, 2000, d["backup_confirm_ms"])
    if c["backup_confirm_ms"] + c["trip_pulse_ms"] > 3000:
        raise ConfigError("backup_confirm_ms: %d + trip_pulse_ms %d exceeds the 3000 ms closing time"
                          % (c["backup_confirm_ms"], c["trip_pulse_ms"]))
    c["classify_window_ms"] = need_int(cfg, "classify_window_ms", 500, 10000, d["classify_window_ms"])
    c["attribution_ms"] = need_int(cfg, "attribution_ms", 1000, 30000, d["attribution_ms"])
    c["pressure_uv_zero"] = need_int(cfg, "pressure_uv_zero", 0, 3000000, d["pressure_uv_zero"])
    c["pressure_uv_per_kpa"] = need_num(cfg, "pressure_uv_per_kpa", 1000.0, 1000000.0, d["pressure_uv_per_kpa"])
    c["pressure_uv_min"] = need_int(cfg, "pressure_uv_min", 0, 3100000, d["pressure_uv_min"])
    c["pressure_uv_max"] = need_int(cfg, "pressure_uv_max", c["pressure_uv_min"] + 1, 3200000, d["pressure_uv_max"])
    c["flow_mode"] = need_choice(cfg, "flow_mode", ("none", "analog", "pulse"), d["flow_mode"])
    c["flow_uv_zero"] = need_int(cfg, "flow_uv_zero", 0, 3000000, d["flow_uv_zero"])
    c["flow_uv_per_m3h"] = need_num(cfg, "flow_uv_per_m3h", 1000.0, 3000000.0, d["flow_uv_per_m3h"])
    c["flow_pulses_per_m3"] = need_int(cfg, "flow_pulses_per_m3", 1, 100000, d["flow_pulses_per_m3"])
    c["flow_window_ms"] = need_int(cfg, "flow_window_ms", 200, 10000, d["flow_window_ms"])
    c["supply_divider"] = need_num(cfg, "supply_divider", 1.0, 20.0, d["supply_divider"])
    c["supply_low_mv"] = need_int(cfg, "supply_low_mv", 0, 60000, d["supply_low_mv"])
    c["supply_ms"] = need_int(cfg, "supply_ms", 100, 60000, d["supply_ms"])
    c["link"] = cfg.get("link")
    # Derived integer parameters (config time).
    c["_p_gain"], c["_p_shift"] = _fixed(1000.0 / c["pressure_uv_per_kpa"])
    c["_f_gain"], c["_f_shift"] = _fixed(1000.0 / c["flow_uv_per_m3h"])
    c["_s_x1000"] = int(c["supply_divider"] * 1000 + 0.5)
    rated = c["rated_flow_m3h_x1000"]
    c["_flow_classify"] = rated * (c["over_flow_x100"] - c["over_flow_tol_x100"]) // 100
    c["_flow_backup"] = rated * (c["over_flow_x100"] + c["over_flow_tol_x100"]) // 100
    c["_p_over_classify"] = c["over_pressure_pa"] - c["over_pressure_tol_pa"]
    c["_p_over_backup"] = c["over_pressure_pa"] + c["over_pressure_tol_pa"]
    c["_p_under_classify"] = c["under_pressure_pa"] + c["under_pressure_tol_pa"]
    c["_p_under_backup"] = c["under_pressure_pa"] - c["under_pressure_tol_pa"]
    c["_flow_k"] = 3600 * 1000 * 1000 // c["flow_pulses_per_m3"]  # m3h_x1000 * ms per pulse
    return c


def pa_to_uv(cfg, pa):
    """Inverse transducer model (simulation and replay): pascal -> µV."""
    return cfg["pressure_uv_zero"] + int(pa * cfg["pressure_uv_per_kpa"] / 1000 + 0.5)


def flow_to_uv(cfg, m3h_x1000):
    return cfg["flow_uv_zero"] + int(m3h_x1000 * cfg["flow_uv_per_m3h"] / 1000 + 0.5)
