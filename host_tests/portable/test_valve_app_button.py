"""The button step machine (gasguard.button): debounce, short press, 3 s hold, ticks wrap."""

from ptest import raises

from gasguard.button import Button
from gasguard.validate import ConfigError
from simboard import SimClock, SimPin


class Rig:
    def __init__(self, held=False, cfg=None, start_ms=None):
        self.clock = SimClock() if start_ms is None else SimClock(start_ms)
        self.pin = SimPin("button", SimPin.IN)
        self.pin.set_input(1 if held else 0)
        self.calls = []
        self.b = Button(self.pin, self.clock, lambda: self.calls.append("short"),
                        lambda: self.calls.append("hold"), cfg)

    def run(self, ms, step=10):
        for _ in range(ms // step):
            self.clock.advance(step)
            self.b.poll()

    def press(self, ms):
        self.pin.set_input(1)
        self.run(ms)
        self.pin.set_input(0)
        self.run(200)


def test_short_press_fires_once_on_release():
    r = Rig()
    r.pin.set_input(1)
    r.run(500)
    assert r.calls == []  # nothing while still held
    r.pin.set_input(0)
    r.run(200)
    assert r.calls == ["short"] and r.b.shorts == 1


def test_hold_fires_at_3_s_and_release_adds_nothing():
    r = Rig()
    r.pin.set_input(1)
    r.run(2900)
    assert r.calls == []
    r.run(200)
    assert r.calls == ["hold"]
    r.run(5000)
    r.pin.set_input(0)
    r.run(200)
    assert r.calls == ["hold"] and r.b.holds == 1 and r.b.shorts == 0


def test_bounces_shorter_than_debounce_are_ignored():
    r = Rig()
    for _ in range(20):  # 20 ms spikes, debounce 50 ms
        r.pin.set_input(1)
        r.run(20)
        r.pin.set_input(0)
        r.run(20)
    r.run(200)
    assert r.calls == []


def test_bouncy_press_counts_once():
    r = Rig()
    for _ in range(3):
        r.pin.set_input(1)
        r.run(10)
        r.pin.set_input(0)
        r.run(10)
    r.pin.set_input(1)
    r.run(300)
    for _ in range(3):
        r.pin.set_input(0)
        r.run(10)
        r.pin.set_input(1)
        r.run(10)
    r.pin.set_input(0)
    r.run(300)
    assert r.calls == ["short"]


def test_held_at_boot_fires_nothing_until_released():
    r = Rig(held=True)
    r.run(10000)
    r.pin.set_input(0)
    r.run(200)
    assert r.calls == []
    r.press(300)
    assert r.calls == ["short"]


def test_hold_across_the_ticks_wrap():
    # start 1 s before the 2**30 wrap: the hold is timed with ticks_diff, not subtraction
    r = Rig(start_ms=(1 << 30) - 1000)
    r.pin.set_input(1)
    r.run(2900)
    assert r.calls == []
    r.run(200)
    assert r.calls == ["hold"]
    assert r.clock.ticks_ms() < 5000  # really wrapped


def test_short_press_across_the_wrap():
    r = Rig(start_ms=(1 << 30) - 100)
    r.press(400)
    assert r.calls == ["short"]


def test_config_is_validated():
    pin = SimPin("b", SimPin.IN)
    assert raises(ConfigError, Button, pin, SimClock(), None, None, {"hold_ms": 50})
    assert raises(ConfigError, Button, pin, SimClock(), None, None, {"debounce": 50})
    r = Rig(cfg={"hold_ms": 1000, "debounce_ms": 20})
    r.pin.set_input(1)
    r.run(1050)
    assert r.calls == ["hold"]
