"""The detector's alarm latency is the same with the network up, down, stalling or flaky.

The device loop in miniature (boards/sim/report_latency.py): detector.poll() then
reporter.poll() every 10 ms of simulated time, events into the persistent outbox. The
latency from the methane step to the relay, the alarm event and the interlock request is
compared across network conditions; any wait in the reporter would change it. Runs on
CPython in-process and on the MicroPython unix port (default heap: the detector and the
reporter together do not compile from source in the 112k test heap; on the ESP32 the
package is frozen bytecode).
"""

import json

from conftest import ROOT, run_micropython
from report_latency import measure
from reporting_fakes import AutoBroker, FakeNet

MODES = ("up", "down", "stall", "flaky")


def _net(mode):
    return FakeNet("unreachable" if mode == "down" else "ok")


def _check(res):
    up = res["up"]
    assert up["relay_ms"] is not None and up["alarm_ms"] is not None
    assert up["interlock_ms"] is not None
    for mode in MODES[1:]:
        r = res[mode]
        assert (r["relay_ms"], r["alarm_ms"], r["interlock_ms"]) == (
            up["relay_ms"], up["alarm_ms"], up["interlock_ms"]), (mode, r, up)
    # and reporting did what each condition allows
    assert up["outbox_left"] == 0 and up["published"] > 0
    assert res["flaky"]["published"] > 0
    assert res["down"]["outbox_left"] > 0 and res["down"]["published"] == 0
    assert res["stall"]["outbox_left"] > 0 and res["stall"]["published"] == 0


def test_alarm_latency_does_not_depend_on_the_network_cpython(tmp_path):
    _check({m: measure(m, str(tmp_path / m), _net, AutoBroker) for m in MODES})


def test_alarm_latency_does_not_depend_on_the_network_micropython():
    r = run_micropython([ROOT / "boards" / "sim" / "report_latency.py"], timeout=120)
    assert r.returncode == 0, r.stderr.decode() + r.stdout.decode()
    res = {}
    for line in r.stdout.decode().splitlines():
        d = json.loads(line)
        res[d["mode"]] = d
    assert set(res) == set(MODES)
    _check(res)
