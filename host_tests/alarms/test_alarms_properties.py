"""Property tests (hypothesis) for the alarm invariants."""

import struct

from hypothesis import assume, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gasguard import profiles
from gasguard.co_alarm import COAlarm, DOSE_CAP, DOSE_FULL
from gasguard.methane_alarm import MethaneAlarm, MethaneLevel
from gasguard.validate import ConfigError

from detector_fakes import make as make_detector

PERIOD = 1 << 30
dts = st.integers(0, 5000)
PROFILE_NAMES = st.sampled_from(["cn", "en", "ul"])


@st.composite
def levels(draw):
    on = draw(st.integers(1000, 500000))
    off = draw(st.integers(1, on - 1))
    delay = draw(st.integers(0, 60000))
    clear = draw(st.integers(0, 30000))
    return on, off, delay, clear


@settings(max_examples=200, deadline=None)
@given(levels(), st.booleans(), st.lists(st.tuples(st.floats(0, 0.9999), dts), max_size=200))
def test_hysteresis_never_chatters_inside_the_band(spec, start_on, seq):
    on, off, delay, clear = spec
    lv = MethaneLevel(1, on, off, delay, clear)
    if start_on:
        while not lv.active:
            lv.update(on, 1000)
    state = lv.active
    for frac, dt in seq:
        x = off + int(frac * (on - off))  # inside [off, on)
        assert off <= x < on
        assert not lv.update(x, dt)
        assert lv.active == state


@settings(max_examples=100, deadline=None)
@given(PROFILE_NAMES, st.lists(st.tuples(st.floats(0, 0.99999), dts), max_size=300),
       st.lists(st.booleans(), max_size=300))
def test_no_methane_alarm_below_the_low_set_point(pname, seq, warm):
    cfg = profiles.load({"profile": pname, "tier": "low"})
    m = MethaneAlarm(cfg)
    for i, (frac, dt) in enumerate(seq):
        x = int(frac * cfg["ch4_low_x10"])
        assert x < cfg["ch4_low_x10"]
        assert m.update(x, dt, warm[i] if i < len(warm) else False) == 0
        assert m.level() == 0


@settings(max_examples=100, deadline=None)
@given(PROFILE_NAMES, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 600000)),
                               max_size=300))
def test_no_co_alarm_at_or_below_the_no_alarm_level(pname, seq):
    cfg = profiles.load({"profile": pname})
    a = COAlarm(cfg)
    lim = cfg["co_no_alarm_ppm"] * 10
    for x, dt in seq:
        x = x % (lim + 1)
        assert not a.update(x, dt)
        assert not a.active and a.dose == 0


@settings(max_examples=100, deadline=None)
@given(PROFILE_NAMES, st.integers(0, 20000), st.integers(0, DOSE_FULL), st.lists(dts, max_size=200))
def test_co_dose_is_monotonic_under_constant_exposure(pname, x10, d0, steps):
    cfg = profiles.load({"profile": pname})
    a = COAlarm(cfg)
    a.dose = d0
    above = x10 > cfg["co_no_alarm_ppm"] * 10
    prev = a.dose
    for dt in steps:
        a.update(x10, dt)
        if above:
            assert a.dose >= prev
        elif not a.active:
            assert a.dose <= prev
        assert 0 <= a.dose <= DOSE_CAP < (1 << 30)
        prev = a.dose


@settings(max_examples=50, deadline=None)
@given(PROFILE_NAMES, st.integers(41, 1000), st.integers(1, 50))
def test_co_higher_concentration_never_alarms_later(pname, ppm, extra):
    cfg = profiles.load({"profile": pname})
    assume(ppm > cfg["co_no_alarm_ppm"])

    def t_alarm(x10):
        a = COAlarm(cfg)
        t = 0
        while not a.update(x10, 10000):
            t += 10000
            assert t < 10**8
        return t

    assert t_alarm((ppm + extra) * 10) <= t_alarm(ppm * 10)


def _f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


@settings(max_examples=200, deadline=None)
@given(PROFILE_NAMES, st.integers(40, 50), st.integers(6, 50), st.integers(2, 10),
       st.integers(2, 10))
def test_float32_config_gives_the_same_integer_thresholds(pname, lel10, low2, gap, hyst2):
    """Config floats become integers once; ESP32 single precision must give the same ones
    (every timer and the CO dose are integers after that, so alarm times are identical)."""
    lel = lel10 / 10.0
    low = low2 / 2.0
    high = low + gap * 2.5
    hyst = hyst2 / 2.0
    d = {"profile": pname, "lel_pct_vol": lel, "ch4_low_pct_lel": low,
         "ch4_high_pct_lel": high, "ch4_hyst_pct_lel": hyst}
    f = {k: (_f32(v) if isinstance(v, float) else v) for k, v in d.items()}
    try:
        a = profiles.load(d)
    except ConfigError:
        assume(False)
    b = profiles.load(f)
    for k in ("ch4_low_x10", "ch4_high_x10", "ch4_hyst_x10", "ch4_pct_lel_x10"):
        assert a[k] == b[k], (k, a[k], b[k])


# ---------------------------------------------------------------- ticks wrap


@settings(max_examples=30, deadline=None)
@given(st.integers(PERIOD - 200000, PERIOD - 1), st.integers(0, 3),
       st.lists(st.tuples(st.integers(0, 200000), st.integers(0, 2000), st.integers(1, 120)),
                min_size=1, max_size=8))
def test_ticks_wrap_does_not_change_any_timer(start, _pad, script):
    """The same scenario from a clock near the 2**30 wrap and from 0 gives the same events."""

    def run(start_ms):
        b, d, ch, evs, s, _ = make_detector({"profile": "cn", "hush_s": 60}, start=start_ms)
        for ch4, co, secs in script:
            ch["ch4"].ppm_x10 = ch4
            ch["co"].ppm_x10 = co
            for i in range(secs):
                d.poll()
                if i == 3:
                    d.hush()
                b.clock.advance(1000)
        return evs

    assert run(start) == run(0)


# ---------------------------------------------------------------- latching (state machine)


class LatchMachine(RuleBasedStateMachine):
    """A latched relay never clears without its reset condition (long press while no
    driving alarm), whatever else happens; the interlock only ever gets close()."""

    @initialize(start=st.integers(PERIOD - 100000, PERIOD - 1), pname=PROFILE_NAMES)
    def setup(self, start, pname):
        cfg = {"profile": pname, "relay": "any", "relay_latch": True, "hush_s": 60}
        self.b, self.d, self.ch, self.evs, self.sink, self.sup = make_detector(cfg, start=start)
        self.latched_seen = False
        self.reset_ok = False

    @rule(x=st.integers(0, 300000))
    def set_ch4(self, x):
        self.ch["ch4"].ppm_x10 = x

    @rule(x=st.integers(0, 6000))
    def set_co(self, x):
        self.ch["co"].ppm_x10 = x

    @rule(f=st.sampled_from([None, "sensor_open", "sensor_stuck"]))
    def set_fault(self, f):
        self.ch["ch4"].fault = f

    @rule(secs=st.integers(1, 400))
    def advance(self, secs):
        for _ in range(secs):
            self.b.clock.advance(1000)
            self.d.poll()
            if self.b.relay.value():
                self.latched_seen = True
                self.reset_ok = False

    @rule(x=st.integers(60000, 300000), secs=st.integers(16, 120))
    def leak_episode(self, x, secs):
        self.ch["ch4"].ppm_x10 = x
        self.advance(secs)

    @rule()
    def gas_gone_then_long_press(self):
        self.ch["ch4"].ppm_x10 = 0
        self.ch["co"].ppm_x10 = 0
        self.ch["ch4"].fault = None
        self.advance(130)  # past ch4_clear_s and co_clear_s
        self.long_press()
        if self.reset_ok:
            assert self.b.relay.value() == 0  # the reset condition does release it

    @rule()
    def hush(self):
        self.d.hush()

    @rule()
    def short_press(self):
        self.d.button_pressed(False)

    @rule()
    def long_press(self):
        cause = self.d._relay_want()
        self.d.button_pressed(True)
        if not cause:
            self.reset_ok = True

    @invariant()
    def latched_relay_stays_until_reset(self):
        if not hasattr(self, "d"):
            return
        if self.latched_seen and not self.reset_ok:
            assert self.b.relay.value() == 1 and self.d.relay_latched

    @invariant()
    def high_methane_is_never_silenced(self):
        if hasattr(self, "d") and self.d.alarm_level("ch4") == 2:
            assert not self.d.hushed

    @invariant()
    def only_close_requests(self):
        if hasattr(self, "sink"):
            assert all(c in ("ch4_high", "co") for c in self.sink.causes)


LatchMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestLatching = LatchMachine.TestCase


def test_float32_config_replays_to_identical_alarm_times():
    """The whole chain on the ESP32's single-precision config floats: same events, same times."""
    from fixtures.alarms import replay_bytes

    base = {"profile": "en", "tier": "mid", "lel_pct_vol": 4.4, "ch4_low_pct_lel": 12.3,
            "ch4_high_pct_lel": 27.7, "ch4_hyst_pct_lel": 2.2}
    f32 = {k: (_f32(v) if isinstance(v, float) else v) for k, v in base.items()}
    assert f32 != base  # the rounding really changes the floats
    rows = [{"t_ms": 0}]
    t = 300
    for ch4, co in ((4000, 0), (6000, 0), (0, 0), (13000, 120), (5500, 300), (0, 0), (0, 60)):
        rows.append({"t_ms": t * 1000, "ch4_ppm_milli": ch4 * 1000, "co_ppm_milli": co * 1000})
        t += 900
    a = replay_bytes("cpython", {"device": "detector", "config": base, "seed": 2}, rows, t * 1000)
    b = replay_bytes("cpython", {"device": "detector", "config": f32, "seed": 2}, rows, t * 1000)
    assert a == b
    assert a.count(b'"event": "alarm"') >= 4
    # and on the ESP32-like interpreter, whose floats really are single precision
    from conftest import esp32_exe

    if esp32_exe() is not None:
        assert replay_bytes("esp32", {"device": "detector", "config": base, "seed": 2}, rows,
                            t * 1000) == a


@settings(max_examples=6, deadline=None)
@given(PROFILE_NAMES, st.integers(0, 2**30),
       st.lists(st.tuples(st.integers(0, 70), st.integers(0, 30), st.integers(1, 1800)),
                min_size=1, max_size=10))
def test_whole_detector_never_alarms_below_the_no_alarm_levels(pname, seed, script):
    """Real channels, calibration, noise and sensor lag: methane up to 70 % of the low set
    point (outside the +-3 %LEL tolerance) and CO up to 30 ppm never raise an alarm."""
    from fixtures.alarms import replay

    low_ppm = profiles.load({"profile": pname})["ch4_low_x10"] // 10
    rows = []
    t = 0
    for pct, co, secs in script:
        rows.append({"t_ms": t * 1000, "ch4_ppm_milli": low_ppm * pct // 100 * 1000,
                     "co_ppm_milli": co * 1000})
        t += secs
    ev = replay("cpython", {"device": "detector", "config": {"profile": pname}, "seed": seed},
                rows, t * 1000)
    assert [e for e in ev if e["event"] in ("alarm", "relay", "interlock")] == []
    assert ev[-1]["event"] == "end" and ev[-1]["co_dose_pct"] == 0
