"""Wired interlock (relay / pulse output with line supervision) on both interpreters."""

from ptest import raises

from gasguard.validate import ConfigError
from gasguard.wired_interlock import WiredInterlock
from simboard import SimClock, SimPin


def _make(cfg=None, sense=True):
    clock = SimClock()
    out = SimPin("ilk_out", SimPin.OUT)
    out.clock = clock
    s = SimPin("ilk_sense", SimPin.IN, 1) if sense else None
    events = []
    return clock, out, s, WiredInterlock(out, s, clock, cfg, events.append), events


def _run(clock, sink, ms, step=10):
    for _ in range(ms // step):
        clock.advance(step)
        sink.poll()


def test_pulse_mode_pulses_once_for_the_configured_time():
    clock, out, s, w, ev = _make({"mode": "pulse", "pulse_ms": 500})
    assert w.state == "idle" and out.value() == 0 and w.fault is None
    w.close("ch4_high")
    assert out.value() == 1 and w.state == "closing"
    w.close("ch4_high")  # idempotent
    _run(clock, w, 1000)
    assert out.value() == 0 and w.state == "confirmed"
    assert [lvl for _t, lvl in out.history] == [1, 0]
    assert out.history[1][0] - out.history[0][0] == 500
    assert ev[0] == {"event": "interlock", "state": "closing", "via": "wired", "cause": "ch4_high"}
    w.close("co")  # within repeat_ms: nothing
    assert len(out.history) == 2 and w.closes == 1


def test_pulse_repeats_after_repeat_ms():
    clock, out, s, w, ev = _make({"mode": "pulse", "pulse_ms": 200, "repeat_ms": 5000})
    w.close("ch4_high")
    _run(clock, w, 6000)
    w.close("ch4_high")
    assert w.closes == 2 and out.value() == 1


def test_level_mode_latches_and_never_releases():
    clock, out, s, w, ev = _make({"mode": "level"})
    w.close("co")
    _run(clock, w, 60000, step=100)
    assert out.value() == 1 and w.state == "confirmed"
    w.close("co")
    assert w.closes == 1
    for name in ("open", "release", "reset", "reopen"):
        assert not hasattr(w, name)


def test_fail_safe_level_wiring_de_energises_to_close():
    clock, out, s, w, ev = _make({"mode": "level", "active_level": 0})
    assert out.value() == 1  # held open while all is well
    w.close("ch4_high")
    assert out.value() == 0


def test_open_circuit_is_detected_after_debounce_and_clears():
    clock, out, s, w, ev = _make({"sense_debounce_ms": 1000})
    _run(clock, w, 500)
    s.set_input(0)  # wire cut: no supervision current
    _run(clock, w, 500)
    assert w.fault is None
    _run(clock, w, 600)
    assert w.fault == "interlock_open_circuit"
    assert {"event": "fault", "code": "interlock_open_circuit", "state": "on"} in ev
    w.close("ch4_high")  # still driven: the fault may be in the sense wiring only
    assert out.value() == 1
    _run(clock, w, 1000)
    assert w.state == "failed"
    s.set_input(1)
    _run(clock, w, 100)
    assert w.fault is None
    assert {"event": "fault", "code": "interlock_open_circuit", "state": "off"} in ev


def test_short_glitch_is_not_a_fault_and_no_sense_means_no_supervision():
    clock, out, s, w, ev = _make()
    s.set_input(0)
    _run(clock, w, 300)
    s.set_input(1)
    _run(clock, w, 2000)
    assert w.fault is None
    clock, out, s, w, ev = _make(sense=False)
    _run(clock, w, 5000)
    assert w.fault is None


def test_config_validation():
    for bad in ({"mode": "toggle"}, {"pulse_ms": 5}, {"active_level": 2}, {"pulse": 100}):
        raises(ConfigError, _make, bad)


def test_analog_sense_input():
    from simboard import SimAnalogIn

    clock = SimClock()
    out = SimPin("ilk_out", SimPin.OUT)
    adc = SimAnalogIn(900000)
    w = WiredInterlock(out, adc, clock, {"sense_ok_min_uv": 300000, "sense_debounce_ms": 500})
    _run(clock, w, 1000)
    assert w.fault is None
    adc.source = 20000  # open circuit: no supervision current
    _run(clock, w, 600)
    assert w.fault == "interlock_open_circuit"


def test_pulse_repeat_survives_the_ticks_wrap():
    # six days after the last pulse ticks_diff turns negative: a new alarm must still pulse
    clock, out, s, w, ev = _make({"mode": "pulse", "pulse_ms": 200, "repeat_ms": 5000})
    w.close("ch4_high")
    _run(clock, w, 6000)
    for _ in range(7 * 24):  # a week, polled every hour
        clock.advance(3600 * 1000)
        w.poll()
    w.close("ch4_high")
    assert w.closes == 2 and out.value() == 1


def test_a_close_event_without_room_is_a_lost_event_not_a_failed_close():
    # The output is driven first; the event after it may find a full heap. That is a lost
    # event (counted, taken into the detector's events_lost), never an exception out of
    # close(), which the detector would count as a failed sink.
    clock = SimClock()
    out = SimPin("ilk_out", SimPin.OUT)
    out.clock = clock

    def full(ev):
        raise MemoryError("no room for the event")

    w = WiredInterlock(out, None, clock, {"mode": "level"}, full)
    w.close("ch4_high")  # must not raise
    assert out.value() == 1 and w.state == "confirmed" and w.closes == 1
    assert w.events_lost == 1
