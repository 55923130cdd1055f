"""Methane levels, CO dose, profiles and outputs as units (both interpreters)."""

from ptest import raises

from gasguard import profiles
from gasguard.co_alarm import COAlarm, DOSE_FULL, PPM_MAX
from gasguard.co_rates import (SHIFTS, TABLE_LEN, alarm_time_s, build_rates, exp2_q, log2_q,
                               table)
from gasguard.methane_alarm import MethaneAlarm, MethaneLevel
from gasguard.outputs import BLINK_1HZ, CHIRP, OFF, ON, PatternPin
from gasguard.validate import ConfigError
from simboard import SimClock, SimPin


def _run_until_on(level, x10, step_ms=1000, limit_ms=120000):
    t = 0
    while t <= limit_ms:
        if level.update(x10, step_ms):
            return t
        t += step_ms
    return None


def test_methane_confirmation_delay_counts_from_first_sample_above():
    lv = MethaneLevel(1, 50000, 35000, 15000, 10000)
    # first sample above at t=0; on after 15 s more
    assert _run_until_on(lv, 80000) == 15000
    assert lv.active


def test_methane_brief_plume_decays_instead_of_adding_up():
    lv = MethaneLevel(1, 50000, 35000, 15000, 10000)
    for _ in range(50):  # 10 s above, 10 s below, repeatedly
        for _ in range(10):
            lv.update(60000, 1000)
        for _ in range(10):
            lv.update(0, 1000)
    assert not lv.active


def test_methane_hysteresis_and_clear_delay():
    lv = MethaneLevel(1, 50000, 35000, 0, 10000)
    assert lv.update(50000, 1000)  # delay 0: on at once
    for _ in range(100):
        assert not lv.update(35000, 1000)  # at the release point: stays on
    assert lv.active
    n = 0
    while not lv.update(34999, 1000):
        n += 1
        assert n < 100
    assert n == 10  # 10 s continuously below (first below sample starts the clock)
    assert not lv.active


def test_methane_levels_and_warmup_gross_only():
    cfg = profiles.load({"profile": "cn", "tier": "low"})
    m = MethaneAlarm(cfg)
    # warming up: 12 %LEL (above low, below high) never alarms
    for _ in range(100):
        assert m.update(60000, 1000, True) == 0
    # a gross leak alarms both levels during warm-up
    changed = 0
    for _ in range(20):
        changed |= m.update(130000, 1000, True)
    assert changed == 3 and m.level() == 2


def test_co_rates_bit_exact_anchor_points():
    assert log2_q(1) == 0
    assert log2_q(1024) == 10 << 24
    assert exp2_q(3 << 24) == 8 << 24
    cn = profiles.PROFILES["cn"]
    r = build_rates(cn["co_targets"], cn["co_no_alarm_ppm"])
    assert len(r) == TABLE_LEN
    # anchors hit their targets within the integer rounding (< 0.1 %)
    for ppm, ts in cn["co_targets"]:
        t = alarm_time_s(r, ppm)
        assert abs(t - ts) * 1000 <= ts, (ppm, t, ts)
    assert alarm_time_s(r, 30) is None and alarm_time_s(r, 40) is None
    # time to alarm falls strictly with concentration above the no-alarm level
    prev = None
    for ppm in range(41, PPM_MAX + 1):
        t = alarm_time_s(r, ppm)
        assert prev is None or t <= prev
        prev = t


def test_co_windows_of_every_profile_hold_for_the_table():
    for name in ("cn", "ul", "en"):
        p = profiles.PROFILES[name]
        r = build_rates(p["co_targets"], p["co_no_alarm_ppm"])
        for ppm, lo, hi in p["co_windows"]:
            t = alarm_time_s(r, ppm)
            if hi is None:
                assert t is None or t >= lo, (name, ppm, t)
            else:
                assert t is not None and lo <= t <= hi, (name, ppm, t)


def test_coarse_co_tables_alarm_never_later_and_keep_every_window():
    """The tables COAlarm falls back to when the heap has no block for the full one
    (co_rates.table: 1/2, 1/4 of the entries): at every ppm the alarm comes no later than
    with the full table, and every profile's windows hold, also for readings 7 % off."""
    for name in ("cn", "ul", "en"):
        p = profiles.PROFILES[name]
        full = build_rates(p["co_targets"], p["co_no_alarm_ppm"])
        for shift in [s for s in SHIFTS if s]:
            r = build_rates(p["co_targets"], p["co_no_alarm_ppm"], shift)
            assert len(r) == ((TABLE_LEN - 1) >> shift) + 1 and len(r) * 4 < 1000, (shift, len(r))
            for ppm in range(p["co_no_alarm_ppm"] + 1, PPM_MAX + 1, 3):
                tf = alarm_time_s(full, ppm)
                tc = alarm_time_s(r, ppm, shift)
                assert tc is not None and tc <= tf, (name, shift, ppm, tc, tf)
            for ppm, lo, hi in p["co_windows"]:
                for pct in range(-7, 8):
                    x = ppm * (100 + pct) // 100
                    if x <= p["co_no_alarm_ppm"]:
                        continue  # COAlarm never reads the table at or below the level
                    t = alarm_time_s(r, x, shift)
                    if hi is None:
                        assert t >= lo, (name, shift, ppm, pct, t)
                    else:
                        assert lo <= t <= hi, (name, shift, ppm, pct, t)


def test_co_table_falls_back_to_a_coarse_one_only_without_heap():
    cn = profiles.PROFILES["cn"]
    r, shift = table(cn["co_targets"], cn["co_no_alarm_ppm"])
    assert shift == 0 and len(r) == TABLE_LEN
    # a COAlarm on a coarse table (what co_rates.table gives without a 1.8 KB block)
    cfg = profiles.load({"profile": "cn"})
    coarse = build_rates(cn["co_targets"], cn["co_no_alarm_ppm"], 2)
    a = COAlarm(cfg)
    b = COAlarm(cfg, coarse)
    b.shift = 2
    ta = tb = 0
    while not a.update(4000, 1000):
        ta += 1
    while not b.update(4000, 1000):
        tb += 1
    assert tb <= ta and 4 * 60 <= tb <= 15 * 60, (ta, tb)  # 400 ppm: 4..15 min


def _co(profile="cn", **kw):
    d = {"profile": profile}
    d.update(kw)
    return COAlarm(profiles.load(d))


def test_co_dose_alarm_time_matches_table_at_1s_and_uneven_steps():
    a = _co()
    t = 0
    while not a.update(700, 1000):
        t += 1000
    t1 = t
    b = _co()
    t = 0
    steps = (300, 1700, 1000, 999, 1)
    i = 0
    while not b.update(700, steps[i % 5]):
        t += steps[i % 5]
        i += 1
    assert abs(t - t1) <= 2000
    assert 60 * 60000 <= t1 <= 240 * 60000


def test_co_washout_and_self_reset():
    a = _co()
    for _ in range(30 * 60):
        a.update(1500, 1000)  # 150 ppm for 30 min: alarm (target 24 min)
    assert a.active
    d0 = a.dose
    for _ in range(59):
        assert not a.update(0, 1000)
    assert a.active and a.dose < d0  # washing out, still alarming within co_clear_s
    assert a.update(0, 1000)  # 60 s clean: self-reset
    assert not a.active and a.dose <= DOSE_FULL // 2
    # a dip does not restart the count: dose left over shortens the next alarm
    t = 0
    while not a.update(1500, 1000):
        t += 1000
    assert t < 24 * 60000 // 2 + 60000


def test_co_never_alarms_at_or_below_no_alarm_level():
    a = _co("en")
    for _ in range(20000):
        assert not a.update(350, 60000)  # 35 ppm for ~2 weeks in 60 s steps
    assert a.dose == 0


def test_profiles_refuse_out_of_bounds_with_clear_messages():
    e = raises(ConfigError, profiles.load, {"profile": "cn", "ch4_delay_s": 10})
    assert "ch4_delay_s" in str(e) and "15" in str(e)
    e = raises(ConfigError, profiles.load, {"profile": "cn", "ch4_delay_s": 61})
    assert "ch4_delay_s" in str(e)
    e = raises(ConfigError, profiles.load, {"profile": "cn", "ch4_low_pct_lel": 30})
    assert "ch4_low_pct_lel" in str(e)
    e = raises(ConfigError, profiles.load, {"profile": "xx"})
    assert "profile" in str(e)
    e = raises(ConfigError, profiles.load, {"tier": "mid", "co_enabled": False})
    assert "tier mid requires" in str(e)
    e = raises(ConfigError, profiles.load, {"tier": "low", "co_enabled": True})
    assert "methane only" in str(e)
    e = raises(ConfigError, profiles.load, {"tier": "high", "identifier_active": False})
    assert "identifier" in str(e)
    e = raises(ConfigError, profiles.load, {"hush_s": 600})
    assert "hush_s" in str(e)
    e = raises(ConfigError, profiles.load, {"ch4_low_pct_lel": 20, "ch4_high_pct_lel": 22})
    assert "ch4_high_pct_lel" in str(e)
    e = raises(ConfigError, profiles.load, {"typo_key": 1})
    assert "typo_key" in str(e)
    # en allows a 5 s delay, cn does not
    assert profiles.load({"profile": "en", "ch4_delay_s": 5})["ch4_delay_s"] == 5


def test_profile_defaults_convert_pct_lel_to_ppm_x10():
    cn = profiles.load({"profile": "cn"})
    assert cn["ch4_low_x10"] == 50000 and cn["ch4_high_x10"] == 125000
    en = profiles.load({"profile": "en"})
    assert en["ch4_low_x10"] == 44000  # 10 %LEL of 4.4 %vol
    assert cn["tier"] == "mid" and cn["co_enabled"] and cn["interlock_on_co"]
    low = profiles.load({"tier": "low"})
    assert not low["co_enabled"] and not low["interlock_on_co"]


def test_pattern_pin_blinks_across_the_ticks_wrap():
    clock = SimClock((1 << 30) - 1700)
    pin = SimPin("led", SimPin.OUT)
    pp = PatternPin(pin, clock)
    pp.set(BLINK_1HZ)
    seen = []
    for _ in range(40):
        clock.advance(100)
        pp.poll(clock.ticks_ms())
        seen.append(pin.value())
    # 500 ms on / 500 ms off -> runs of 5
    assert seen[:10] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 1]
    assert sum(seen) == 20
    pp.set(ON)
    assert pin.value() == 1
    pp.set(OFF)
    assert pin.value() == 0
    pp.set(CHIRP, 900)  # 100 ms chirp every second
    n = 0
    for _ in range(50):
        clock.advance(100)
        pp.poll(clock.ticks_ms())
        n += pin.value()
    assert n == 5


def test_every_window_tolerates_a_7_percent_reading_error():
    # GB 15322.2 tests at (70 +- 5) ppm: each point must hold for readings 7 % off either way
    for name in ("cn", "ul", "en"):
        p = profiles.PROFILES[name]
        r = build_rates(p["co_targets"], p["co_no_alarm_ppm"])
        for ppm, lo, hi in p["co_windows"]:
            for pct in range(-7, 8):
                t = alarm_time_s(r, ppm * (100 + pct) // 100)
                if hi is None:
                    assert t is None or t >= lo, (name, ppm, pct, t)
                else:
                    assert t is not None and lo <= t <= hi, (name, ppm, pct, t)
