"""Detector behaviour with scripted channels: alarms, interlock, faults (both interpreters)."""

from ptest import raises

from gasguard.detector import Detector
from gasguard.validate import ConfigError
from simboard import SimClock
from detector_fakes import FakeCh, Board, Sink, kinds, make, run


def test_ready_then_methane_alarm_timing_and_self_reset():
    b, d, ch, evs, s, _ = make()
    run(b, d, 10)
    assert evs[0] == (0, {"event": "ready"})
    ch["ch4"].ppm_x10 = 80000  # 16 %LEL: 1.6 x the 10 %LEL set point
    run(b, d, 30)
    al = kinds(evs, "alarm")
    assert al == [(25, {"event": "alarm", "gas": "ch4", "level": 1, "state": "on"})]
    assert 15 <= al[0][0] - 10 <= 30  # 2026 GB 15322: >= 15 s; commissioning: <= 30 s
    assert s.causes == []  # default interlock on the high level only
    assert b.relay.value() == 1 and b.led_red.value() in (0, 1)
    ch["ch4"].ppm_x10 = 0
    run(b, d, 60)
    off = [t for t, e in kinds(evs, "alarm") if e["state"] == "off"]
    assert off and off[0] - 40 <= 60  # back to normal within 60 s
    assert b.relay.value() == 0 and b.led_green.value() == 1 and b.led_red.value() == 0


def test_high_methane_closes_interlock_and_cannot_be_hushed():
    b, d, ch, evs, s, _ = make()
    run(b, d, 2)
    ch["ch4"].ppm_x10 = 200000
    run(b, d, 20)
    assert d.alarm_level("ch4") == 2
    assert s.causes == ["ch4_high"]
    r = d.hush()
    assert r["hushed"] is False and r["reason"] == "ch4_high"
    assert not d.hushed
    # buzzer still sounding (pattern BEEP_L2 running)
    on = 0
    for _ in range(10):
        b.clock.advance(100)
        d.poll()
        on += b.buzzer.value()
    assert on >= 3
    # interlock stays requested after the gas is gone (valve latches; no open call)
    ch["ch4"].ppm_x10 = 0
    run(b, d, 60)
    assert d.alarm_level("ch4") == 0
    assert d.interlock_cause == "ch4_high" and s.state == "confirmed"


def test_faults_are_explicit_events_and_hold_the_alarm_state():
    b, d, ch, evs, s, sup = make()
    run(b, d, 2)
    ch["ch4"].ppm_x10 = 80000
    run(b, d, 20)
    assert d.alarm_level("ch4") == 1
    ch["ch4"].fault = "sensor_open"
    ch["ch4"].ppm_x10 = 0
    run(b, d, 100)
    # a broken sensor never gives an all-clear
    assert d.alarm_level("ch4") == 1
    fl = kinds(evs, "fault")
    assert fl[-1][1] == {"event": "fault", "code": "sensor_open", "gas": "ch4", "state": "on"}
    assert b.led_yellow.value() == 1
    assert "ch4:sensor_open" in d.faults()
    sup.fault = "supply_low"
    run(b, d, 1)
    assert kinds(evs, "fault")[-1][1] == {"event": "fault", "code": "supply_low", "state": "on"}
    ch["ch4"].fault = None
    sup.fault = None
    run(b, d, 15)
    assert d.alarm_level("ch4") == 0
    assert d.faults() == []
    assert b.led_yellow.value() == 0


def test_interlock_missing_and_sink_faults_reported():
    b, d, ch, evs, s, _ = make(sink=False)
    run(b, d, 1)
    assert ("interlock_missing" in d.faults())
    sink = Sink()
    d.interlocks.append(sink)
    run(b, d, 1)
    assert "interlock_missing" not in d.faults()
    sink.fault = "link_lost"
    run(b, d, 1)
    assert kinds(evs, "fault")[-1][1] == {"event": "fault", "code": "link_lost",
                                           "state": "on", "sink": 0}
    assert sink.polls == 2  # polled on every poll() since it was attached


def test_over_range_counts_as_at_least_the_high_set_point():
    b, d, ch, evs, s, _ = make()
    run(b, d, 2)
    ch["ch4"].ppm_x10 = 100000  # sensor full scale (20 %LEL), below the 25 %LEL high level
    ch["ch4"].over_range = True
    run(b, d, 20)
    assert d.alarm_level("ch4") == 2 and s.causes == ["ch4_high"]


def test_timers_work_across_the_ticks_wrap():
    # power on 5 s before the 2**30 wrap: the confirmation delay and sample cadence span it
    b, d, ch, evs, s, _ = make(start=(1 << 30) - 5000)
    ch["ch4"].ppm_x10 = 80000
    run(b, d, 40)
    al = kinds(evs, "alarm")
    assert al[0][0] == 15
    assert ch["ch4"].samples == 40


def test_config_refused_before_anything_is_built():
    b = Board()
    b.clock = SimClock()
    e = raises(ConfigError, Detector, b, {"profile": "cn", "ch4_delay_s": 5}, None,
               lambda e: None, channels={"ch4": FakeCh("ch4")})
    assert "ch4_delay_s" in str(e)
    e = raises(ConfigError, Detector, b, {"tier": "mid"}, None, lambda e: None,
               channels={"ch4": FakeCh("ch4")})
    assert "CO channel" in str(e)


def test_a_failing_sink_never_stops_the_alarm_path():
    b, d, ch, evs, s, _ = make()

    class Broken(Sink):
        def close(self, cause):
            raise OSError(5)

        def poll(self):
            raise ValueError("bug")

    bad = Broken()
    d.interlocks.insert(0, bad)
    ch["ch4"].ppm_x10 = 200000
    run(b, d, 20)
    assert d.alarm_level("ch4") == 2
    assert s.causes == ["ch4_high"]  # the good sink still got its close request
    assert d.sink_errors >= 20 and d.status()["sink_errors"] == d.sink_errors


def test_a_wired_close_whose_event_finds_no_room_is_a_lost_event_not_a_sink_error():
    from gasguard.wired_interlock import WiredInterlock
    from simboard import SimPin

    b, d, ch, evs, s, _ = make()
    run(b, d, 2)
    out = SimPin("ilk_out", SimPin.OUT)
    out.clock = b.clock

    def full(ev):
        raise MemoryError("no room for the event")

    w = WiredInterlock(out, None, b.clock, {"mode": "level"}, full)
    d.interlocks.insert(0, w)
    lost = d.events_lost
    d.close("test")
    assert out.value() == 1 and w.state == "confirmed"  # driven
    assert d.sink_errors == 0 and d.events_lost == lost + 1 and w.events_lost == 0
    assert d.status()["events_lost"] == lost + 1 and s.causes == ["test"]


def test_valve_reopened_by_hand_during_the_alarm_is_closed_again():
    b, d, ch, evs, s, _ = make()
    run(b, d, 2)
    ch["ch4"].ppm_x10 = 200000
    run(b, d, 20)
    assert s.causes == ["ch4_high"]
    run(b, d, 10)
    assert s.causes == ["ch4_high"]  # confirmed: no repeated requests while it is shut
    s.state = "idle"  # the link saw the valve reopened by hand; the leak goes on
    run(b, d, 2)
    assert s.causes == ["ch4_high", "ch4_high"]
    s.state = "failed"  # a request that ran out of retries starts over during the alarm
    run(b, d, 2)
    assert len(s.causes) == 3
    ch["ch4"].ppm_x10 = 0
    run(b, d, 60)
    assert d.alarm_level("ch4") == 0
    s.state = "idle"  # reopened after the gas is gone: left open (reopening is the user's)
    run(b, d, 10)
    assert len(s.causes) == 3


def test_every_close_goes_through_one_guarded_path():
    b, d, ch, evs, s, _ = make()
    run(b, d, 2)

    class Broken(Sink):
        def close(self, cause):
            raise OSError(5)

    d.interlocks.insert(0, Broken())
    assert d.close("test") == 2  # ITEST, a remote command: the same path as an alarm
    assert s.causes == ["test"] and d.sink_errors == 1
    assert kinds(evs, "interlock")[-1][1] == {"event": "interlock", "state": "close",
                                               "cause": "test", "sinks": 2}
    assert d.interlock_cause is None and d.interlock_count == 0  # not an alarm's request
    ch["ch4"].ppm_x10 = 200000
    run(b, d, 20)
    assert s.causes == ["test", "ch4_high"] and d.interlock_cause == "ch4_high"
    assert d.interlock_count == 1 and d.sink_errors > 2  # the broken one is asked again


def test_hush_co_rise_is_a_share_of_the_co_alarm_dose():
    """The hush's CO rise is hush_co_rise_pct of one alarm dose (co_alarm.DOSE_FULL), the
    constant written out in the detector (a methane-only detector never loads co_alarm)."""
    from gasguard.co_alarm import DOSE_FULL

    for pct in (10, 50, 100):
        d = make({"profile": "cn", "tier": "mid", "hush_co_rise_pct": pct})[1]
        assert d._hush.rise == DOSE_FULL * pct // 100
