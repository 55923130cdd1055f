"""Scripted channels, board and sink for the detector portable tests (not a test module)."""

from gasguard.detector import Detector
from simboard import SimClock, SimPin


class FakeCh:
    def __init__(self, gas):
        self.gas = gas
        self.ppm_x10 = 0
        self.raw_uv = 0
        self.fault = None
        self.warming_up = False
        self.over_range = False
        self.samples = 0

    def sample(self):
        self.samples += 1


class FakeSupply:
    def __init__(self):
        self.fault = None
        self.millivolts = 5000

    def sample(self):
        pass


class Sink:
    def __init__(self):
        self.fault = None
        self.state = "idle"
        self.causes = []
        self.polls = 0

    def close(self, cause):
        self.causes.append(cause)
        self.state = "confirmed"

    def poll(self):
        self.polls += 1


class Board:
    pass


def make(cfg=None, start=None, sink=True):
    b = Board()
    b.clock = SimClock(start)
    for n in ("led_green", "led_yellow", "led_red", "buzzer", "relay"):
        p = SimPin(n, SimPin.OUT)
        p.clock = b.clock
        setattr(b, n, p)
    b.button = SimPin("button", SimPin.IN, 0)
    cfg = {"profile": "cn", "tier": "mid"} if cfg is None else cfg
    chans = {"ch4": FakeCh("ch4")}
    if cfg.get("tier", "mid") != "low":
        chans["co"] = FakeCh("co")
    evs = []
    sup = FakeSupply()
    d = Detector(b, cfg, None, lambda e: evs.append((b.clock.elapsed_ms // 1000, e)),
                 channels=chans, supply=sup)
    s = None
    if sink:
        s = Sink()
        d.interlocks.append(s)
    return b, d, chans, evs, s, sup


def run(b, d, seconds):
    for _ in range(seconds):
        d.poll()
        b.clock.advance(1000)


def kinds(evs, kind):
    return [(t, e) for t, e in evs if e["event"] == kind]
