"""Detector hush, relay latch, self-test, button and status with scripted channels (both interpreters)."""

from detector_fakes import Sink, kinds, make, run


def test_hush_low_alarm_is_bounded_and_ends_on_escalation():
    b, d, ch, evs, s, _ = make({"profile": "cn", "hush_s": 120})
    run(b, d, 2)
    ch["ch4"].ppm_x10 = 60000
    run(b, d, 20)
    assert d.alarm_level("ch4") == 1
    assert d.hush()["hushed"]
    run(b, d, 5)
    assert b.buzzer.value() == 0
    assert sum(v for _, v in b.buzzer.history[-3:]) >= 0
    run(b, d, 120)
    hs = kinds(evs, "hush")
    assert hs[-1][1]["state"] == "off" and hs[-1][1]["reason"] == "timeout"
    # hush again, then the leak grows to the high level: hush ends at once
    assert d.hush()["hushed"]
    ch["ch4"].ppm_x10 = 200000
    run(b, d, 20)
    hs = kinds(evs, "hush")
    assert hs[-1][1]["state"] == "off" and hs[-1][1]["reason"] in ("new_alarm", "ch4_high")
    assert not d.hushed


def test_hush_never_hides_a_rising_co_dose():
    b, d, ch, evs, s, _ = make({"profile": "cn", "hush_s": 360})
    run(b, d, 2)
    ch["co"].ppm_x10 = 4000  # 400 ppm: alarm in ~8 min
    t = 0
    while d.alarm_level("co") == 0:
        run(b, d, 1)
        t += 1
    assert 4 * 60 <= t <= 15 * 60
    assert s.causes == ["co"]
    assert d.hush()["hushed"]
    # dose keeps rising at 400 ppm: hush ends once half an alarm dose has been added
    # (~4 min), before its 6-minute timeout
    n = 0
    while d.hushed:
        run(b, d, 1)
        n += 1
    assert n < 300
    assert kinds(evs, "hush")[-1][1]["reason"] == "co_rising"


def test_hush_at_constant_low_co_times_out_and_co_self_resets():
    b, d, ch, evs, s, _ = make({"profile": "cn", "hush_s": 300})
    run(b, d, 2)
    ch["co"].ppm_x10 = 700
    while d.alarm_level("co") == 0:
        run(b, d, 10)
    assert d.hush()["hushed"]
    run(b, d, 301)
    assert kinds(evs, "hush")[-1][1]["reason"] == "timeout"
    ch["co"].ppm_x10 = 0
    run(b, d, 61)
    assert d.alarm_level("co") == 0
    assert d.status()["co"]["dose_pct"] <= 50


def test_relay_latch_needs_reset_after_the_cause_is_gone():
    b, d, ch, evs, s, _ = make({"profile": "cn", "relay": "ch4_low", "relay_latch": True})
    run(b, d, 2)
    ch["ch4"].ppm_x10 = 80000
    run(b, d, 20)
    assert b.relay.value() == 1
    r = d.reset_latches()  # cause still present: refused
    assert r["relay_released"] is False and b.relay.value() == 1
    ch["ch4"].ppm_x10 = 0
    run(b, d, 100)
    assert d.alarm_level("ch4") == 0 and b.relay.value() == 1
    d.button_pressed(long=True)
    assert b.relay.value() == 0
    assert kinds(evs, "relay")[-1][1]["state"] == "off"


def test_self_test_drives_every_output_and_reports():
    b, d, ch, evs, s, _ = make({"profile": "cn", "self_test_relay": True})
    run(b, d, 3)
    r = d.button_pressed(False)  # nothing sounding: short press = self-test
    assert r["started"] and r["faults"] == []
    run(b, d, 6)
    st = kinds(evs, "self_test")
    assert st[0][1]["state"] == "start" and st[-1][1]["result"] == "pass"
    for p in (b.led_red, b.led_yellow, b.led_green, b.buzzer, b.relay):
        assert any(level == 1 for _, level in p.history), p.name
    assert b.relay.value() == 0 and s.causes == []  # never actuates the interlock
    ch["co"].fault = "cal_missing"
    run(b, d, 1)
    d.self_test()
    run(b, d, 6)
    st = kinds(evs, "self_test")
    assert st[-1][1]["result"] == "fail" and "co:cal_missing" in st[-1][1]["faults"]


def test_button_pin_short_and_long_press():
    b, d, ch, evs, s, _ = make()
    run(b, d, 2)
    b.button.set_input(1)
    for _ in range(3):
        b.clock.advance(100)
        d.poll()
    b.button.set_input(0)
    d.poll()
    assert not kinds(evs, "button")  # gasguard.button: a release counts once it is stable
    b.clock.advance(100)
    d.poll()
    assert kinds(evs, "button")[-1][1]["press"] == "short"
    assert kinds(evs, "self_test")
    run(b, d, 6)
    b.button.set_input(1)
    for _ in range(35):
        b.clock.advance(100)
        d.poll()
    assert kinds(evs, "button")[-1][1]["press"] == "long"  # fired at 3 s, while held
    b.button.set_input(0)
    b.clock.advance(100)
    d.poll()
    assert kinds(evs, "button")[-1][1]["press"] == "long"  # and nothing on the release
    assert kinds(evs, "reset")


def test_status_has_readings_alarms_faults_peak():
    b, d, ch, evs, s, _ = make()
    ch["ch4"].ppm_x10 = 30000
    ch["co"].ppm_x10 = 1000  # 100 ppm: ~56 min to alarm on the CN curve
    run(b, d, 120)
    st = d.status()
    assert st["ready"] and st["ch4"]["peak_ppm_x10"] == 30000
    assert st["ch4"]["pct_lel_x10"] == 60  # 3000 ppm = 6.0 %LEL
    assert st["co"]["dose_pct"] > 0 and st["co"]["alarm"] == 0
    assert st["faults"] == [] and st["relay"] is False


def test_hush_ends_when_the_co_concentration_rises():
    b, d, ch, evs, s, _ = make({"profile": "cn", "hush_s": 360})
    ch["co"].ppm_x10 = 1000  # 100 ppm: alarm after ~56 min
    while d.alarm_level("co") == 0:
        run(b, d, 10)
    assert d.hush()["hushed"]
    assert 350 <= d.status()["hush_left_s"] <= 360
    ch["co"].ppm_x10 = 1150  # +15 %: noise-level change, hush holds
    run(b, d, 5)
    assert d.hushed
    ch["co"].ppm_x10 = 1400  # +40 %: rising CO ends the hush at the next sample
    run(b, d, 2)
    assert not d.hushed
    assert kinds(evs, "hush")[-1][1]["reason"] == "co_rising"


def test_self_test_code_is_in_the_heap_only_while_a_test_runs():
    import sys

    b, d, ch, evs, s, _ = make()
    run(b, d, 3)
    assert "gasguard.profiles" not in sys.modules  # config code gone once the detector is built
    assert d.self_test()["started"] and d.status()["self_test"]
    assert "gasguard.selftest" in sys.modules
    assert d.self_test() == {"started": False, "reason": "running"}
    run(b, d, 6)
    assert kinds(evs, "self_test")[-1][1]["result"] == "pass"
    assert "gasguard.selftest" not in sys.modules and not d.status()["self_test"]


def test_a_self_test_that_cannot_start_leaves_the_alarm_path_running():
    b, d, ch, evs, s, _ = make()
    run(b, d, 3)

    def no_memory():
        raise MemoryError("memory allocation failed")

    ch["ch4"].sample = no_memory  # the self-test's fresh sample fails as a load would
    assert d.self_test() == {"started": False, "reason": "unavailable"}
    del ch["ch4"].sample
    assert not kinds(evs, "self_test")
    ch["ch4"].ppm_x10 = 200000
    run(b, d, 20)
    assert d.alarm_level("ch4") == 2 and s.causes == ["ch4_high"] and b.relay.value() == 1
