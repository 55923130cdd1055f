"""Standard profiles and product tiers as data, and the detector-config check.

A *profile* (cn, en, ul) carries the numbers a standard fixes: methane set-point
bounds, the methane LEL convention, the CO time-to-alarm table and its no-alarm
level. A *tier* (low, mid, high) carries what a product must have: which gases,
whether an interlock is mandatory, whether the identifier is active.

`load(config)` checks a detector config against both and returns a complete,
normalised dict (defaults filled in, %LEL converted to integer ppm x 10). A config
that violates a standard's bounds or a tier's minimum raises ConfigError naming
the key, the value and the allowed range; nothing is applied. Sources of every
number: docs/alarms.md.

`assemble(board, config, store, channels, supply)` is what the CFG check runs: the config
check, then the channels and the supply monitor it needs (gasguard.sensors.inputs, built
from the board unless given) and the checks between them. Detector() runs the same steps
one module at a time (this module is out of the heap while the inputs are built), then
`build_detector(det, ...)` wires its parts (gas paths, faults, hush, outputs, button) from
the checked config.

Config time only: floats are allowed here, never on the sample path. Boot/CFG-time code
(gasguard.lazy.BOOT_ONLY): the detector keeps the checked config as a plain dict.
"""

from gasguard.validate import ConfigError, need_int, need_num, need_choice, need_bool

# CO time-to-alarm tables. Each window: (ppm, earliest_s, latest_s); latest None =
# "must not alarm within earliest_s" only; earliest 0 = "must alarm by latest_s".
# Targets: (ppm, target_s) anchor points of the dose curve, interpolated log-log.
CO_CN_UL_WINDOWS = (
    (30, 30 * 86400, None),  # UL 2034: 30 ppm no alarm for 30 days
    (70, 60 * 60, 240 * 60),  # GB 15322.2-2019 3.3.20 / UL 2034
    (150, 10 * 60, 50 * 60),  # UL 2034
    (400, 4 * 60, 15 * 60),  # UL 2034
)
CO_EN_WINDOWS = (
    (30, 120 * 60, None),  # EN 50291-1: 30 ppm no alarm before 120 min
    (50, 60 * 60, 90 * 60),
    (100, 10 * 60, 40 * 60),
    (300, 0, 3 * 60),
)
# Anchor targets near the geometric middle of each window (standards.md §4.2 [derived]).
CO_CN_UL_TARGETS = ((41, 720 * 60), (50, 300 * 60), (70, 120 * 60), (150, 24 * 60), (400, 8 * 60))
CO_EN_TARGETS = ((36, 140 * 60), (50, 74 * 60), (100, 20 * 60), (300, 90))

PROFILES = {
    "cn": {
        "lel_pct_vol": (5.0, 4.0, 5.0),  # default, lo, hi
        "ch4_low_pct_lel": (10, 3, 25),
        "ch4_high_pct_lel": (25, 10, 50),
        "ch4_delay_s": (15, 15, 45),
        "co_no_alarm_ppm": 40,
        "hush_co_max_ppm": (400, 70, 400),  # no CO hush above (default, lo, hi): docs/alarms.md
        "co_windows": CO_CN_UL_WINDOWS,
        "co_targets": CO_CN_UL_TARGETS,
    },
    "ul": {
        "lel_pct_vol": (5.0, 4.0, 5.0),
        "ch4_low_pct_lel": (10, 3, 25),
        "ch4_high_pct_lel": (25, 10, 50),
        "ch4_delay_s": (15, 5, 45),
        "co_no_alarm_ppm": 40,
        "hush_co_max_ppm": (400, 70, 400),  # no CO hush above (default, lo, hi): docs/alarms.md
        "co_windows": CO_CN_UL_WINDOWS,
        "co_targets": CO_CN_UL_TARGETS,
    },
    "en": {
        "lel_pct_vol": (4.4, 4.0, 5.0),
        "ch4_low_pct_lel": (10, 3, 20),
        "ch4_high_pct_lel": (25, 10, 50),
        "ch4_delay_s": (15, 5, 45),
        "co_no_alarm_ppm": 35,
        "hush_co_max_ppm": (300, 50, 300),
        "co_windows": CO_EN_WINDOWS,
        "co_targets": CO_EN_TARGETS,
    },
}

TIERS = {
    # gases: what the product measures; interlock: valve shut-off mandatory;
    # identifier: active identifier (registration) mandatory.
    "low": {"co": False, "interlock": False, "identifier": False},
    "mid": {"co": True, "interlock": True, "identifier": True},
    "high": {"co": True, "interlock": True, "identifier": True},
}

# Plain bounded settings: (key, lo, hi, default). Sources: docs/alarms.md.
_INTS = (
    ("sample_period_ms", 200, 2000, 1000),
    ("ch4_clear_s", 0, 30, 10),  # + MOS recovery (<= 30 s) stays within the 60 s rule
    ("co_clear_s", 10, 600, 60),
    ("co_washout_min", 60, 480, 180),  # COHb-like washout half-life
    ("hush_s", 60, 360, 300),  # UL 2034 (1998): silence 4..6 min
    ("hush_co_rise_pct", 10, 100, 50),
    ("hush_max", 1, 3, 2),  # hushes per alarm episode (docs/alarms.md, "Hush")
    ("interlock_ch4_level", 1, 2, 2),
    ("fault_chirp_s", 10, 60, 45),
)
_BOOLS = (("warmup_gross_only", True), ("relay_latch", False), ("self_test_relay", False))

RELAY_SOURCES = ("none", "ch4_low", "ch4_high", "co", "any")

# Detector keys this module validates; sub-dicts are handed to the sensing modules.
KNOWN = (
    "profile", "tier", "sample_period_ms",
    "lel_pct_vol", "ch4_low_pct_lel", "ch4_high_pct_lel", "ch4_hyst_pct_lel",
    "ch4_delay_s", "ch4_clear_s", "warmup_gross_only",
    "co_enabled", "co_clear_s", "co_washout_min",
    "hush_s", "hush_co_rise_pct", "hush_max", "hush_co_max_ppm",
    "relay", "relay_latch", "interlock_ch4_level", "interlock_on_co",
    "identifier_active", "self_test_relay", "fault_chirp_s",
    "ch4", "co", "supply",
)


def load(config):
    """Validate a detector config; return a complete normalised copy or raise ConfigError."""
    if not isinstance(config, dict):
        raise ConfigError("detector config: expected a dict, got %r" % (config,))
    for k in config:
        if k not in KNOWN:
            raise ConfigError("detector config: unknown key %r" % (k,))
    pname = need_choice(config, "profile", ("cn", "en", "ul"), "cn")
    prof = PROFILES[pname]
    tname = need_choice(config, "tier", ("low", "mid", "high"), "mid")
    tier = TIERS[tname]
    out = {"profile": pname, "tier": tname}
    for k, lo, hi, d in _INTS:
        out[k] = need_int(config, k, lo, hi, d)
    for k, d in _BOOLS:
        out[k] = need_bool(config, k, d)

    # --- methane ---------------------------------------------------------------
    vals = []
    for k in ("lel_pct_vol", "ch4_low_pct_lel", "ch4_high_pct_lel"):
        d, lo, hi = prof[k]
        vals.append(need_num(config, k, lo, hi, d))
    lel, low, high = vals
    out["lel_pct_vol"] = lel
    hyst = need_num(config, "ch4_hyst_pct_lel", 1, 5, 3)
    if high < low + 5:
        raise ConfigError(
            "ch4_high_pct_lel: %r must be at least 5 %%LEL above ch4_low_pct_lel (%r)" % (high, low))
    if low - hyst < 1:
        raise ConfigError("ch4_hyst_pct_lel: %r leaves a release point below 1 %%LEL" % (hyst,))
    out["ch4_low_pct_lel"] = low
    out["ch4_high_pct_lel"] = high
    out["ch4_hyst_pct_lel"] = hyst
    # To integers once, via thousandths (robust to single-precision floats on the ESP32):
    # 1 %LEL in ppm x 10 = lel_pct_vol * 1000; x %LEL = x * lel_pct_vol * 1000.
    lel_m = int(lel * 1000 + 0.5)
    out["ch4_pct_lel_x10"] = lel_m
    for k, v in (("ch4_low_x10", low), ("ch4_high_x10", high), ("ch4_hyst_x10", hyst)):
        out[k] = (int(v * 1000 + 0.5) * lel_m + 500) // 1000
    d = prof["ch4_delay_s"]
    out["ch4_delay_s"] = need_int(config, "ch4_delay_s", d[1], d[2], d[0])

    # --- CO ----------------------------------------------------------------------
    co = need_bool(config, "co_enabled", tier["co"])
    if tier["co"] and not co:
        raise ConfigError("co_enabled: tier %s requires the CO channel (methane + CO)" % tname)
    if co and not tier["co"]:
        raise ConfigError("co_enabled: tier low is methane only; use tier mid or high for CO")
    out["co_enabled"] = co
    out["co_no_alarm_ppm"] = prof["co_no_alarm_ppm"]
    d, lo, hi = prof["hush_co_max_ppm"]
    out["hush_co_max_ppm"] = need_int(config, "hush_co_max_ppm", lo, hi, d)
    out["co_targets"] = prof["co_targets"]
    out["co_windows"] = prof["co_windows"]

    # --- outputs / interlock -------------------------------------------------------
    out["relay"] = need_choice(config, "relay", RELAY_SOURCES, "any")
    ioc = need_bool(config, "interlock_on_co", co)
    if ioc and not co:
        raise ConfigError("interlock_on_co: true needs the CO channel (tier mid or high)")
    out["interlock_on_co"] = ioc
    ida = need_bool(config, "identifier_active", tier["identifier"])
    if tier["identifier"] and not ida:
        raise ConfigError("identifier_active: tier %s requires an active identifier" % tname)
    out["identifier_active"] = ida
    out["interlock_required"] = tier["interlock"]

    defaults = {"ch4": "mq4", "co": "ec_co"}
    for k in ("ch4", "co"):
        v = config.get(k, {})
        if not isinstance(v, dict):
            raise ConfigError("%s: expected a dict {sensor, channel}, got %r" % (k, v))
        for kk in v:
            if kk not in ("sensor", "channel"):
                raise ConfigError("%s: unknown key %r (sensor, channel)" % (k, kk))
        sensor = v.get("sensor", {})
        channel = v.get("channel", {})
        if not isinstance(sensor, dict) or not isinstance(channel, dict):
            raise ConfigError("%s: sensor and channel must be dicts" % k)
        if "model" not in sensor:  # one leaf set with CFG (e.g. ch4.sensor.r0_ohm): the default model
            sensor = dict(sensor)
            sensor["model"] = defaults[k]
        if k == "ch4" and "lel_vol_pct" not in sensor:
            sensor = dict(sensor)
            sensor["lel_vol_pct"] = lel
        elif k == "ch4" and sensor["lel_vol_pct"] != lel:
            raise ConfigError("ch4.sensor.lel_vol_pct: %r differs from lel_pct_vol %r"
                              % (sensor["lel_vol_pct"], lel))
        out[k] = {"sensor": sensor, "channel": channel}
    v = config.get("supply", {})
    if not isinstance(v, dict):
        raise ConfigError("supply: expected a dict of supply-monitor settings, got %r" % (v,))
    out["supply"] = v
    if not co and config.get("co"):
        raise ConfigError("co: CO sensing settings given but tier %s has no CO channel" % tname)
    return out


def assemble(board, config, store, channels=None, supply=None):
    """What the CFG check runs: the config check, then the sensing inputs Detector() would
    build on the board and the checks between them (gasguard.sensors.inputs): (cfg,
    channels, supply). ConfigError before anything is kept."""
    cfg = load(config)
    rec = None
    if store is not None and channels is None:
        from gasguard.calibration import load as cal_load

        rec = cal_load(store)
    from gasguard.sensors import inputs

    return (cfg,) + inputs(board, cfg, rec, channels, supply)


def build_detector(det, parts, board, cfg, emit, channels, supply):
    """Detector.__init__: the parts wired around the checked config (load()) and its inputs
    (gasguard.sensors.inputs, built while this module was out of the heap). parts:
    gasguard.detector's (Gas, Faults, Hush), handed in by the detector (this module does not
    import it: no cycle). Only plain data and objects of resident modules are kept (this
    module is released)."""
    Gas, Faults, Hush = parts
    from gasguard.button import Button
    from gasguard.methane_alarm import MethaneAlarm
    from gasguard.outputs import Outputs

    det.cfg = cfg
    clock = det.clock = board.clock
    det.emit = emit
    det.period_ms = cfg["sample_period_ms"]
    det.channels = channels
    det.supply = supply
    src = cfg["relay"]
    lvl = cfg["interlock_ch4_level"]
    det.ch4 = channels["ch4"]
    # a gas path: name, channel, alarm, the level that closes the interlocks (with its
    # cause), the level that drives the relay (0: never), the over-range floor
    det.gases = [Gas("ch4", det.ch4, MethaneAlarm(cfg), lvl, "ch4_high" if lvl == 2 else "ch4_low",
                     1 if src in ("ch4_low", "any") else 2 if src == "ch4_high" else 0,
                     cfg["ch4_high_x10"])]
    det.co = det.co_alarm = det._co = None
    if cfg["co_enabled"]:
        from gasguard.co_alarm import COAlarm  # (a methane-only detector never loads it)

        det.co = channels["co"]
        det.co_alarm = COAlarm(cfg)
        det._co = Gas("co", det.co, det.co_alarm, 1 if cfg["interlock_on_co"] else 0, "co",
                      1 if src in ("co", "any") else 0, 0)
        det.gases.append(det._co)
    det.outputs = Outputs(board, clock)
    det.interlocks = []
    det.sink_errors = 0
    det.last_sink_error = None
    det._last = det._next = clock.ticks_ms()  # first step at the first poll
    det._first = True
    det._flt = Faults(det)
    det.refused_faults = ()  # what the app refused at boot (e.g. config_invalid)
    det.ready = False
    det._warm = False
    det.relay_latched = False
    det.interlock_cause = None  # last alarm cause sent to the sinks (latched at the valve)
    det.interlock_count = 0
    det.hushed = False
    det._hush = Hush(det)
    det._st = None  # the running self-test (gasguard.selftest), else None
    det._chirp = cfg["fault_chirp_s"] * 1000 - 100
    b = getattr(board, "button", None)
    # short press: hush or self-test; hold: reset latches (a button held at boot: nothing)
    det.button = None if b is None else Button(b, clock, det.button_pressed, det._hold)
    _release()


def _release():
    """Forget this module once a detector is built: the parts built after it at boot (link,
    reporter) do not find it in the heap; a CFG check loads it again. No collection here:
    the next one frees it (lazy.after_boot() collects before the loop)."""
    import sys

    sys.modules.pop(__name__, None)
    try:
        delattr(sys.modules["gasguard"], "profiles")
    except (AttributeError, KeyError):
        pass
