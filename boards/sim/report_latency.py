"""Alarm latency with the network up, down or stalling: the device loop in miniature.

One loop turn = detector.poll() then reporter.poll(), every 10 ms of simulated time; the
detector's events go to reporter.event() (the persistent outbox). The methane step is
applied at a fixed time and we measure, in simulated milliseconds, when the relay output
switched on and when the alarm event was emitted — with the reporter's network
  up      : a well-behaved broker (the strict fake network of the tests)
  down    : every connect fails (EHOSTUNREACH)
  stall   : TCP accepted, the broker never answers
  flaky   : the broker drops the connection every 2 s
The numbers must be the same in every mode: the reporter's poll() never waits.

    micropython boards/sim/report_latency.py     -> one JSON line per mode
"""

import json
import sys

from gasguard.detector import Detector
from gasguard.reporter import Reporter
from gasguard.store import FileStore
from simboard import SimClock, SimPin

DEV = "88.118.8/GDH.240915.00123F"


class _Ch:
    def __init__(self, gas):
        self.gas = gas
        self.ppm_x10 = 0
        self.raw_uv = 0
        self.fault = None
        self.warming_up = False
        self.over_range = False

    def sample(self):
        pass


class _Supply:
    fault = None
    millivolts = 5000

    def sample(self):
        pass


class _Board:
    pass


class _Sink:
    fault = None
    state = "idle"

    def close(self, cause):
        self.state = "confirmed"

    def poll(self):
        pass


def measure(mode, root, net_factory, broker_factory, step_ppm_x10=200000):
    """Return {"mode", "relay_ms", "alarm_ms", "interlock_ms", "events", "published"}."""
    b = _Board()
    b.clock = clock = SimClock()
    for n in ("led_green", "led_yellow", "led_red", "buzzer", "relay"):
        p = SimPin(n, SimPin.OUT)
        p.clock = clock
        setattr(b, n, p)
    b.button = SimPin("button", SimPin.IN, 0)
    ch = {"ch4": _Ch("ch4"), "co": _Ch("co")}
    net = net_factory(mode)
    broker = broker_factory(net) if mode != "down" else None
    rep = Reporter(clock, FileStore(root), {"device_id": DEV, "fw": "0.1.0", "tier": "M",
                                            "kind": "detector"},
                   {"commands": False, "mqtt": {"host": "10.0.0.9", "connect_timeout_ms": 3000,
                                                "backoff_min_ms": 500, "backoff_max_ms": 4000}},
                   net, rand=lambda n: n // 2)
    seen = {"alarm": None, "interlock": None}

    def emit(ev):
        k = ev.get("event")
        if k in seen and seen[k] is None:
            seen[k] = clock.elapsed_ms
        rep.event(ev)

    det = Detector(b, {"profile": "cn", "tier": "mid"}, None, emit, channels=ch, supply=_Supply())
    det.interlocks.append(_Sink())
    step_at = 20000
    for i in range(9000):  # 90 s of loop turns at 10 ms
        t = clock.elapsed_ms
        if t == step_at:
            ch["ch4"].ppm_x10 = step_ppm_x10
        if mode == "flaky" and t % 2000 == 0 and net.last is not None:
            net.last.peer_closed = True
        det.poll()
        rep.poll()
        if broker is not None and mode != "stall":
            broker.service()
        clock.advance(10)
    relay_on = [t for t, lv in b.relay.history if lv == 1]
    return {"mode": mode,
            "relay_ms": relay_on[0] - step_at if relay_on else None,
            "alarm_ms": seen["alarm"] - step_at if seen["alarm"] is not None else None,
            "interlock_ms": seen["interlock"] - step_at if seen["interlock"] is not None else None,
            "outbox_left": len(rep.outbox),
            "published": len(broker.published) if broker is not None else 0}


def main():
    from reporting_fakes import AutoBroker, FakeNet
    from ptest import tmpdir

    base = tmpdir("latency")
    for mode in ("up", "down", "stall", "flaky"):
        root = base + "/" + mode
        r = measure(mode, root, lambda m: FakeNet({"down": "unreachable"}.get(m, "ok")), AutoBroker)
        sys.stdout.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
