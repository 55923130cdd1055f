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

# key, default, lo, hi (one flat table: one object, not one per row): integers, checked in
# this order, then the numbers (floats allowed, configuration time only). Defaults and
# their sources: docs/valve.md.
_INTS = (
    "switch_closed_level", 1, 0, 1,
    "switch_debounce_ms", 50, 5, 500,
    "trip_pulse_ms", 300, 20, 2000,
    "trip_retries", 2, 0, 10,
    "close_time_ms", 3000, 500, 3000,
    "sample_ms", 100, 20, 1000,
    "over_pressure_pa", 8000, 3000, 20000,
    "over_pressure_tol_pa", 2000, 0, 5000,
    "under_pressure_pa", 800, 200, 3000,
    "under_pressure_tol_pa", 200, 0, 1000,
    "rated_flow_m3h_x1000", 2500, 100, 100000,
    "over_flow_x100", 180, 110, 400,
    "over_flow_tol_x100", 30, 0, 100,
    "backup_confirm_ms", 1000, 100, 2000,
    "classify_window_ms", 3000, 500, 10000,
    "attribution_ms", 6000, 1000, 30000,
    "pressure_uv_zero", 500000, 0, 3000000,
    "pressure_uv_min", 300000, 0, 3100000,
    "pressure_uv_max", 3000000, 1, 3200000,
    "flow_uv_zero", 500000, 0, 3000000,
    "flow_pulses_per_m3", 100, 1, 100000,
    "flow_window_ms", 1000, 200, 10000,
    "supply_low_mv", 3300, 0, 60000,
    "supply_ms", 1000, 100, 60000,
)
_NUMS = (
    "pressure_uv_per_kpa", 100000.0, 1000.0, 1000000.0,
    "flow_uv_per_m3h", 400000.0, 1000.0, 3000000.0,
    "supply_divider", 2.0, 1.0, 20.0,
)
# link_lost_action None: "close" for tiers M/H, "report" for L
_OTHER = ("tier", "link_lost_action", "backup_trip", "flow_mode", "link")


def __getattr__(name):
    """DEFAULTS (every key with its default; tools and tests): built when asked for, not at
    every load of this module (boot and each CFG write)."""
    if name != "DEFAULTS":
        raise AttributeError(name)
    d = {"tier": "M", "link_lost_action": None, "backup_trip": True, "flow_mode": "none",
         "link": None}
    for t in (_INTS, _NUMS):
        for i in range(0, len(t), 4):
            d[t[i]] = t[i + 1]
    return d


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


def _check(cond, msg):
    if not cond:
        raise ConfigError(msg)


def valve_config(cfg):
    """Validate a valve config (missing keys take their defaults); return a full copy or
    raise ConfigError."""
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConfigError("valve: expected a dict")
    known = list(_OTHER)
    for t in (_INTS, _NUMS):
        for i in range(0, len(t), 4):
            known.append(t[i])
    reject_unknown(cfg, known, "valve")
    c = {}
    c["tier"] = need_choice(cfg, "tier", ("L", "M", "H"), "M")
    a = cfg.get("link_lost_action")
    if a is None:
        a = "report" if c["tier"] == "L" else "close"
    c["link_lost_action"] = need_choice({"link_lost_action": a}, "link_lost_action", ("close", "report"))
    c["backup_trip"] = need_bool(cfg, "backup_trip", True)
    c["flow_mode"] = need_choice(cfg, "flow_mode", ("none", "analog", "pulse"), "none")
    c["link"] = cfg.get("link")
    for t, need in ((_INTS, need_int), (_NUMS, need_num)):
        for i in range(0, len(t), 4):
            c[t[i]] = need(cfg, t[i], t[i + 2], t[i + 3], t[i + 1])
    _derive(c)
    return c


def _derive(c):
    """Cross-checks, then the integer parameters the sample path uses."""
    _check(c["under_pressure_pa"] + c["under_pressure_tol_pa"] < c["over_pressure_pa"] - c["over_pressure_tol_pa"],
           "under_pressure_pa: %d (+%d) overlaps over_pressure_pa %d (-%d)"
           % (c["under_pressure_pa"], c["under_pressure_tol_pa"], c["over_pressure_pa"], c["over_pressure_tol_pa"]))
    _check(c["over_flow_x100"] - c["over_flow_tol_x100"] > 100,
           "over_flow_tol_x100: %d leaves the trip at or below the rated flow" % c["over_flow_tol_x100"])
    _check(c["backup_confirm_ms"] + c["trip_pulse_ms"] <= 3000,
           "backup_confirm_ms: %d + trip_pulse_ms %d exceeds the 3000 ms closing time"
           % (c["backup_confirm_ms"], c["trip_pulse_ms"]))
    _check(c["pressure_uv_min"] < c["pressure_uv_max"],
           "pressure_uv_max: %d is not above pressure_uv_min %d" % (c["pressure_uv_max"], c["pressure_uv_min"]))
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


def pa_to_uv(cfg, pa):
    """Inverse transducer model (simulation and replay): pascal -> µV."""
    return cfg["pressure_uv_zero"] + int(pa * cfg["pressure_uv_per_kpa"] / 1000 + 0.5)


def flow_to_uv(cfg, m3h_x1000):
    return cfg["flow_uv_zero"] + int(m3h_x1000 * cfg["flow_uv_per_m3h"] / 1000 + 0.5)
