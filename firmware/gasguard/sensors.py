"""Building the sensing objects from their config: sensor models, channels, filters, supply.

Boot/CFG-time code (gasguard.lazy.BOOT_ONLY): the detector builds its channels with it at
boot and a CFG write checks a config with it; `main.py` releases it before the loop. What
the functions here return are objects of gasguard.sensing, the resident sample path, with
every value checked and every config-time float already an integer (docs/heap-budget.md).
A bad value raises ConfigError naming it, and nothing is built.

Sensor models, chosen by name in the board config (`from_config`):

    mq4, mos_ch4   MethaneMOS     semiconductor (SnO2) methane sensor in a load-resistor
                                  divider; Rs/R0 power law  ppm = a·(Rs/R0)^b
    ec_co          ElectrochemCO  electrochemical CO cell after a transimpedance stage;
                                  linear µV per ppm around a zero offset

Filters (`Pipeline`), built from data, one single-key dict per stage, e.g.
    [{"delta": {"max": 200000, "hold": 2}}, {"median": 3}, {"ema": 128}]

    ch = Channel(adc, clock, model, cal, cfg)     cal: a gasguard.calibration.ChannelCal or None
    sup = SupplyMonitor(adc, clock, cfg)

Channel fault rules (defaults in brackets, all configurable, see docs/calibration.md):
  sensor_short  raw µV above the model's high rail for fault_count [3] samples in a row
  sensor_open   raw µV below the low rail for fault_count samples (not during warm-up:
                a cold MOS element reads high resistance)
  out_of_range  a physically implausible reading (model UNDER: CO far below zero, MOS
                Rs far above clean air) for fault_count samples (not during warm-up).
                A reading ABOVE the measuring range is not a fault: it is reported at
                full scale with over_range set, so a big leak always alarms.
  sensor_stuck  raw µV varied by no more than stuck_band_uv [0 = bit-identical] for
                stuck_s [MOS 3600 s, CO off]; not during warm-up
  cal_missing   no valid calibration for this channel (missing/corrupt record, or a
                record the model refuses): the channel still runs on the nominal
                model so a gross leak can alarm
  end_of_life   age_days >= service_life_days [1826 = 5 years, CJJ/T 146]
Faults are set after fault_count bad samples in a row and cleared after clear_count
[3] good samples in a row. ppm_x10 is forced to 0 only by short/open/out_of_range/
stuck, the faults that make the reading meaningless; the fault code is always set then.

Supply: the fault comes on after `count` samples in a row below low_mv and goes off after
`count` samples at or above low_mv + hyst_mv. Defaults (a 5 V rail through a 2:1 divider,
fault below 4.50 V, clear at 4.70 V) are [derived] engineering values: docs/calibration.md.
"""

from gasguard import sensing
from gasguard.sensing import (  # noqa: F401  (re-exported)
    CalibrationError, exp2_q12, log2_q12,
)
from gasguard.validate import ConfigError, need_choice, need_int, need_num, reject_unknown

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


def pct_lel_x10(ppm_x10, lel_ppm_value=50000):
    """%LEL × 10 (integer, rounded down): 5000 ppm at LEL 50 000 ppm -> 100 (10.0 %LEL).
    Boot-time and tools only, so it lives here and not in the resident gasguard.sensing."""
    if ppm_x10 <= 0:
        return 0
    if ppm_x10 > 10000000:
        ppm_x10 = 10000000
    return ppm_x10 * 100 // lel_ppm_value


_ONE = const(4096)
_LIMIT = const(1 << 24)

# a model's .status after ppm_x10() (gasguard.sensing uses the same values as private consts)
OK = 0
OVER = 1  # above the measuring range: reported at full scale (never hidden)
UNDER = 2  # physically implausible low reading (e.g. far below the zero)

MOS_KEYS = (
    "model", "vc_mv", "rl_ohm", "adc_div", "a", "b", "air_ratio", "r0_ohm",
    "rs_air_min_ohm", "rs_air_max_ohm", "range_ppm", "span_min_ppm",
    "span_gain_min", "span_gain_max", "high_rs_factor", "warmup_s", "stuck_s",
    "temp_comp", "rh_comp", "lel_vol_pct",
)
CO_KEYS = (
    "model", "zero_uv", "uv_per_ppm", "zero_tol_uv", "tc_pct_per_c", "zero_tc_uv_per_c",
    "range_ppm", "neg_limit_ppm", "span_min_ppm", "span_gain_min", "span_gain_max",
    "rail_low_uv", "rail_high_uv", "warmup_s", "stuck_s",
)
CHANNEL_KEYS = (
    "oversample", "trim", "filters", "rail_low_uv", "rail_high_uv", "fault_count",
    "clear_count", "warmup_s", "stuck_s", "stuck_band_uv", "service_life_days",
)
SUPPLY_KEYS = ("divider", "low_mv", "hyst_mv", "count", "oversample")
DEFAULT_FILTERS = ({"median": 3},)


# ---- config-time math --------------------------------------------------------------------
def log2_real_q12(v):
    """log2 of a positive real number in Q12, via the integer tables."""
    v = float(v)
    shift = 0
    while v < 65536.0:
        v *= 2.0
        shift += 1
    while v >= 1073741823.0:
        v /= 2.0
        shift -= 1
    return log2_q12(int(v + 0.5)) - shift * _ONE


def lel_ppm(vol_pct):
    """Lower explosive limit in ppm from %vol (CN 5.0 default; IEC 60079-20-1 says 4.4)."""
    v = need_num({"lel_vol_pct": vol_pct}, "lel_vol_pct", 4.0, 5.0)
    return int(v * 10000 + 0.5)


def comp_table(cfg, key, lo, hi):
    """[[x, factor], ...] sorted by x -> one flat tuple x0×10, log2(f0) Q12, x1×10, ... of
    ints (sensing.interp reads it; a tuple of pairs would be one more object per point)."""
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
        out.append(x10)
        out.append(log2_real_q12(f))
    return tuple(out)


# ---- sensor models -----------------------------------------------------------------------
def MethaneMOS(cfg=None):
    """A sensing.MethaneMOS from its config (MOS_KEYS; defaults: an MQ-4 on a 20 kΩ load)."""
    cfg = {} if cfg is None else cfg
    reject_unknown(cfg, MOS_KEYS, "sensor")
    m = sensing.MethaneMOS()
    m.name = need_choice(cfg, "model", ("mq4", "mos_ch4"), "mq4")
    m.vc_uv = need_int(cfg, "vc_mv", 1000, 12000, 5000) * 1000
    m.rl_ohm = need_int(cfg, "rl_ohm", 100, 1000000, 20000)
    div = need_num(cfg, "adc_div", 1.0, 20.0, 2.0)
    m.vtop_uv = int(m.vc_uv / div + 0.5)
    if m.vtop_uv > 3300000:
        raise ConfigError("adc_div: Vc/adc_div = %d µV exceeds the ADC input range" % m.vtop_uv)
    need = m.name == "mos_ch4"
    a = need_num(cfg, "a", 0.01, 1000000.0, None if need else 1012.7)
    b = need_num(cfg, "b", -4.0, -0.2, None if need else -2.786)
    air = need_num(cfg, "air_ratio", 1.1, 50.0, None if need else 4.4)
    r0 = need_int(cfg, "r0_ohm", 100, 1000000, 10000)
    m.rs_air_min = need_int(cfg, "rs_air_min_ohm", 100, 10000000, 5000)
    m.rs_air_max = need_int(cfg, "rs_air_max_ohm", 100, 10000000, 200000)
    if m.rs_air_min >= m.rs_air_max:
        raise ConfigError("rs_air_min_ohm: must be below rs_air_max_ohm")
    m.range_ppm = need_int(cfg, "range_ppm", 100, 100000, 10000)
    m.span_min_ppm = need_int(cfg, "span_min_ppm", 10, m.range_ppm, min(300, m.range_ppm))
    m.gain_min = need_num(cfg, "span_gain_min", 0.05, 1.0, 0.25)
    m.gain_max = need_num(cfg, "span_gain_max", 1.0, 20.0, 4.0)
    hf = need_num(cfg, "high_rs_factor", 1.5, 100.0, 3.0)
    m.warmup_s = need_int(cfg, "warmup_s", 0, 7200, 300)
    m.stuck_s = need_int(cfg, "stuck_s", 0, 86400, 3600)
    m.temp_comp = comp_table(cfg, "temp_comp", -40, 85)
    m.rh_comp = comp_table(cfg, "rh_comp", 0, 100)
    m.lel_ppm = lel_ppm(cfg.get("lel_vol_pct", 5.0))

    m.b_q12 = int(b * _ONE - 0.5)  # b < 0: round half away from zero
    m.c_q12 = log2_real_q12(a * 10.0)  # fit constant for ppm×10
    m.air_q12 = log2_real_q12(air)
    m.high_q12 = m.air_q12 + log2_real_q12(hf)
    m.range_ppm_x10 = m.range_ppm * 10
    m.k_nominal = log2_q12(m.rl_ohm) - log2_q12(r0)
    # the plausible span gains, log2 Q12 (gasguard.calibration checks a span against them)
    m.gain_lo_q12 = log2_real_q12(m.gain_min)
    m.gain_hi_q12 = log2_real_q12(m.gain_max)
    # rails: V_RL below 1 % of Vc = open (Rs > 99·RL); above 98 % = short (Rs < RL/49)
    m.rail_low_uv = m.vtop_uv // 100
    m.rail_high_uv = m.vtop_uv * 98 // 100
    m.comp_q12 = 0
    m.status = OK
    m.nominal = (m.k_nominal, 0, None)
    m.set_cal(m.k_nominal, 0, None)
    return m


def ElectrochemCO(cfg=None):
    """A sensing.ElectrochemCO from its config (CO_KEYS; defaults: 3.2 mV/ppm at 0.4 V)."""
    cfg = {} if cfg is None else cfg
    reject_unknown(cfg, CO_KEYS, "sensor")
    m = sensing.ElectrochemCO()
    m.name = need_choice(cfg, "model", ("ec_co",), "ec_co")
    m.zero_nominal = need_int(cfg, "zero_uv", 0, 3000000, 400000)
    sens = need_num(cfg, "uv_per_ppm", 10.0, 16000.0, 3200.0)
    m.s_nominal = int(sens * 6.4 + 0.5)
    m.zero_tol = need_int(cfg, "zero_tol_uv", 0, 1000000, 100000)
    tc = need_num(cfg, "tc_pct_per_c", -2.0, 2.0, 0.0)
    m.tc_q = int(tc * 100 + (0.5 if tc >= 0 else -0.5))  # 1e-4 per °C
    m.zero_tc = need_int(cfg, "zero_tc_uv_per_c", -10000, 10000, 0)
    m.range_ppm = need_int(cfg, "range_ppm", 10, 10000, 500)
    m.range_ppm_x10 = m.range_ppm * 10
    m.neg_limit_x10 = need_int(cfg, "neg_limit_ppm", 1, 1000, 20) * 10
    m.span_min_ppm = need_int(cfg, "span_min_ppm", 1, m.range_ppm, min(50, m.range_ppm))
    m.gain_min = need_num(cfg, "span_gain_min", 0.05, 1.0, 0.5)
    m.gain_max = need_num(cfg, "span_gain_max", 1.0, 20.0, 2.0)
    m.rail_low_uv = need_int(cfg, "rail_low_uv", 0, 3300000, 20000)
    m.rail_high_uv = need_int(cfg, "rail_high_uv", 0, 3300000, 2900000)
    if m.rail_low_uv >= m.rail_high_uv:
        raise ConfigError("rail_low_uv: must be below rail_high_uv")
    m.warmup_s = need_int(cfg, "warmup_s", 0, 7200, 60)
    m.stuck_s = need_int(cfg, "stuck_s", 0, 86400, 3600)
    m._dt_x10 = 0
    m.status = OK
    m.nominal = (m.zero_nominal, m.s_nominal)
    m.set_cal(m.zero_nominal, m.s_nominal)
    return m


MODELS = {"mq4": MethaneMOS, "mos_ch4": MethaneMOS, "ec_co": ElectrochemCO}


def from_config(cfg):
    """Build the model named by cfg["model"] (ConfigError for an unknown name)."""
    if not isinstance(cfg, dict):
        raise ConfigError("sensor: expected a dict, got %r" % (cfg,))
    name = cfg.get("model")
    make_model = MODELS.get(name) if isinstance(name, str) else None
    if make_model is None:
        raise ConfigError("model: %r is not one of %s" % (name, ", ".join(sorted(MODELS))))
    return make_model(cfg)


# ---- filters (sensing.Filter, by kind) ----------------------------------------------------
def _filter(kind):
    f = sensing.Filter()
    f.kind = kind
    return f


def Median(window=3):
    """Median of the last `window` inputs (odd window, 1..15)."""
    w = need_int({"window": window}, "window", 1, 15)
    if w % 2 == 0:
        raise ConfigError("median window: %d must be odd" % window)
    f = _filter(1)  # sensing._MEDIAN
    f.window = w
    f._ring = [0] * w
    f._scratch = [0] * w
    f.reset()
    return f


def Ema(alpha_256=128):
    """Exponential moving average, alpha = alpha_256/256 (1..256)."""
    f = _filter(2)  # _EMA
    f.alpha = need_int({"alpha_256": alpha_256}, "alpha_256", 1, 256)
    f.reset()
    return f


def Clamp(lo, hi):
    """Limit to lo..hi."""
    f = _filter(3)  # _CLAMP
    f.lo = need_int({"lo": lo}, "lo", 1 - _LIMIT, _LIMIT - 1)
    f.hi = need_int({"hi": hi}, "hi", 1 - _LIMIT, _LIMIT - 1)
    if f.lo > f.hi:
        raise ConfigError("clamp: lo %d is above hi %d" % (lo, hi))
    return f


def DeltaReject(max_delta, hold=2):
    """Spike rejection: a jump above max_delta is held back for up to `hold` samples."""
    f = _filter(4)  # _DELTA
    f.max = need_int({"max": max_delta}, "max", 1, _LIMIT)
    f.hold = need_int({"hold": hold}, "hold", 0, 10)
    f.reset()
    return f


def MovingAverage(window=4):
    """Mean of the last `window` inputs (1..32)."""
    f = _filter(5)  # _AVERAGE
    f.window = need_int({"window": window}, "window", 1, 32)
    f._ring = [0] * f.window
    f.reset()
    return f


def Offset(offset):
    f = _filter(6)  # _OFFSET
    f.offset = need_int({"offset": offset}, "offset", 1 - _LIMIT, _LIMIT - 1)
    return f


_KINDS = ("median", "ema", "clamp", "delta", "average", "offset")


def make(spec):
    """One filter from a single-key dict, e.g. {"median": 5} or {"clamp": [0, 3000000]}."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError("filter: expected a single-key dict like {\"median\": 3}, got %r" % (spec,))
    for kind in spec:
        arg = spec[kind]
    if kind == "median":
        return Median(arg)
    if kind == "ema":
        if isinstance(arg, dict):
            _only(arg, ("alpha_256",), "ema")
            arg = arg.get("alpha_256", 128)
        return Ema(arg)
    if kind == "clamp":
        if not isinstance(arg, (list, tuple)) or len(arg) != 2:
            raise ConfigError("clamp: expected [lo, hi], got %r" % (arg,))
        return Clamp(arg[0], arg[1])
    if kind == "delta":
        if isinstance(arg, dict):
            _only(arg, ("max", "hold"), "delta")
            return DeltaReject(arg.get("max"), arg.get("hold", 2))
        return DeltaReject(arg)
    if kind == "average":
        return MovingAverage(arg)
    if kind == "offset":
        return Offset(arg)
    raise ConfigError("filter: unknown kind %r (known: %s)" % (kind, ", ".join(_KINDS)))


def _only(d, keys, where):
    for k in d:
        if k not in keys:
            raise ConfigError("%s: unknown key %r" % (where, k))


def Pipeline(specs=()):
    """Filters applied in order. Built completely before use: a bad stage raises and
    nothing is half-built."""
    if not isinstance(specs, (list, tuple)):
        raise ConfigError("filters: expected a list, got %r" % (specs,))
    if len(specs) > 8:
        raise ConfigError("filters: %d stages, at most 8" % len(specs))
    p = _filter(0)  # _CHAIN
    p.stages = [make(s) for s in specs]
    return p


# ---- a channel, the supply monitor ------------------------------------------------------
def Channel(adc, clock, model, cal, cfg=None):
    """A sensing.Channel: adc.read_uv(), clock (ticks_ms/ticks_diff), a model from
    from_config, its ChannelCal (or None: cal_missing) and the channel config."""
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        raise ConfigError("channel: expected a dict, got %r" % (cfg,))
    reject_unknown(cfg, CHANNEL_KEYS, "channel")
    n = need_int(cfg, "oversample", 1, 16, 8)
    trim = need_int(cfg, "trim", 0, (n - 1) // 2, 1 if n >= 4 else 0)
    pipeline = Pipeline(cfg.get("filters", DEFAULT_FILTERS))
    low = need_int(cfg, "rail_low_uv", 0, 3300000, model.rail_low_uv)
    high = need_int(cfg, "rail_high_uv", 0, 3300000, model.rail_high_uv)
    if low >= high:
        raise ConfigError("rail_low_uv: %d must be below rail_high_uv %d" % (low, high))
    fc = need_int(cfg, "fault_count", 1, 60, 3)
    cc = need_int(cfg, "clear_count", 1, 60, 3)
    warm = need_int(cfg, "warmup_s", 0, 7200, model.warmup_s)
    stuck = need_int(cfg, "stuck_s", 0, 86400, model.stuck_s)
    band = need_int(cfg, "stuck_band_uv", 0, 100000, 0)
    life = need_int(cfg, "service_life_days", 30, 7300, 1826)

    # everything validated: now build
    ch = sensing.Channel()
    ch.adc = adc
    ch.clock = clock
    ch.model = model
    ch.gas = model.gas
    ch.oversample = n
    ch.trim = trim
    ch.pipeline = pipeline
    ch.rail_low_uv = low
    ch.rail_high_uv = high
    ch.fault_count = fc
    ch.clear_count = cc
    ch.warmup_ms = warm * 1000
    ch.stuck_ms = stuck * 1000
    ch.stuck_band_uv = band
    ch.service_life_days = life
    ch._buf = [0] * n
    ch.age_days = 0
    ch.fault_bits = 0
    ch._apply_cal(cal)
    # power-on state: warming up, filters and fault debouncers clear
    ch.ppm_x10 = 0
    ch.raw_uv = 0
    ch.filtered_uv = 0
    ch.over_range = False
    ch.samples = 0
    ch._refill = False
    ch._last_t = clock.ticks_ms()
    ch._warm_elapsed = 0
    ch.warming_up = ch.warmup_ms > 0
    ch._bad = [0, 0, 0]  # consecutive bad samples: short, open, range
    ch._good = [0, 0, 0]
    ch._stuck_lo = 0
    ch._stuck_hi = 0
    ch._stuck_elapsed = 0
    ch._stuck_warm_edge = False
    ch._set_bits(sensing.F_CAL if ch.cal_problem is not None else 0)
    return ch


def SupplyMonitor(adc, clock, cfg=None):
    """A sensing.SupplyMonitor: a divider onto an ADC pin (SUPPLY_KEYS)."""
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        raise ConfigError("supply: expected a dict, got %r" % (cfg,))
    reject_unknown(cfg, SUPPLY_KEYS, "supply")
    div = need_num(cfg, "divider", 1.0, 20.0, 2.0)
    s = sensing.SupplyMonitor()
    s.low_mv = need_int(cfg, "low_mv", 1000, 30000, 4500)
    s.hyst_mv = need_int(cfg, "hyst_mv", 0, 5000, 200)
    s.count = need_int(cfg, "count", 1, 60, 3)
    s.oversample = need_int(cfg, "oversample", 1, 16, 4)
    # mV = µV · div / 1000 = µV · div_q10 / 1024000 (sensing.SupplyMonitor.sample)
    s.div_q10 = int(div * 1024 + 0.5)
    s.adc = adc
    s.clock = clock
    s.millivolts = 0
    s.fault = None
    s._bad = 0
    s._good = 0
    return s


def inputs(board, cfg, rec, channels=None, supply=None):
    """A detector's sensing inputs for a config checked by gasguard.profiles.load():
    (channels, supply), built from the board unless given (channels: gas -> Channel, rec:
    the stored gasguard.calibration record applied, or None; supply: the supply monitor on
    adc_supply), and the checks between them and the config (ConfigError). Detector() runs
    it while profiles is out of the heap; the CFG check through profiles.assemble()."""
    clock = board.clock
    if channels is None:
        channels = _channels(board, cfg, rec, clock)
    if "ch4" not in channels:
        raise ConfigError("channels: a methane channel is required")
    if cfg["co_enabled"] and "co" not in channels:
        raise ConfigError("channels: tier %s requires a CO channel" % cfg["tier"])
    if supply is None:
        adc = getattr(board, "adc_supply", None)
        if adc is not None:
            supply = SupplyMonitor(adc, clock, cfg["supply"])
    rng = getattr(getattr(channels["ch4"], "model", None), "range_ppm_x10", None)
    if rng is not None and rng < cfg["ch4_low_x10"]:
        raise ConfigError("ch4_low_pct_lel: %r %%LEL (%d ppm) is above the sensor range (%d ppm)"
                          % (cfg["ch4_low_pct_lel"], cfg["ch4_low_x10"] // 10, rng // 10))
    return channels, supply


def _channels(board, cfg, rec, clock):
    """The sensing channels from the board and the checked sub-configs cfg["ch4"] /
    cfg["co"] = {"sensor": {model config}, "channel": {channel config}}."""
    gases = ["ch4"]
    if cfg["co_enabled"]:
        gases.append("co")
    chans = {}
    for gas in gases:
        adc = getattr(board, "adc_" + gas, None)
        if adc is None:
            raise ConfigError("%s: tier %s needs a %s channel but the board has no adc_%s"
                              % (gas, cfg["tier"], gas, gas))
        sub = cfg[gas]
        model = from_config(sub["sensor"])
        if model.gas != gas:
            raise ConfigError("%s.sensor: model %s measures %s" % (gas, model.name, model.gas))
        cal = rec.get(gas) if rec is not None else None
        chans[gas] = Channel(adc, clock, model, cal, sub["channel"])
    return chans
