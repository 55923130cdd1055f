"""CO conformance: every time-to-alarm table point of every profile, both bounds, replayed
through the real detector (sensor model inverse, calibration, filters, seeded noise) on
BOTH interpreters. Simulated time: the whole suite replays ~40 simulated hours."""

import pytest

from fixtures.alarms import RUNTIMES, first, replay
from gasguard import profiles

T0 = 300  # gas applied once the detector is ready (MQ-4 warm-up 300 s)
NEVER_RUN_S = 4 * 3600  # "never" points: 4 h replayed, plus the peak-reading argument

CASES = []
for _pname in ("cn", "ul", "en"):
    for _ppm, _lo, _hi in profiles.PROFILES[_pname]["co_windows"]:
        CASES.append((_pname, _ppm, _lo, _hi))


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("pname,ppm,lo,hi", CASES, ids=["%s-%dppm" % c[:2] for c in CASES])
def test_co_table_point(runtime, pname, ppm, lo, hi):
    seed = ppm * 7 + len(pname)
    header = {"device": "detector", "config": {"profile": pname, "tier": "mid"}, "seed": seed,
              "stop_after_alarm": "co"}
    rows = [{"t_ms": 0, "co_ppm_milli": 0}, {"t_ms": T0 * 1000, "co_ppm_milli": ppm * 1000}]
    if hi is not None:
        end = T0 + hi + 120
        ev = replay(runtime, header, rows, end * 1000)
        on = first(ev, event="alarm", gas="co", state="on")
        assert on is not None, "%s %d ppm: no alarm within %d s" % (pname, ppm, hi)
        t = on["t"] - T0
        assert lo <= t <= hi, "%s %d ppm: alarm after %d s, window %d..%d s" % (pname, ppm, t, lo, hi)
        # the interlock closes on the CO alarm (tier mid default)
        assert first(ev, event="interlock", cause="co", t=on["t"]) is not None
    else:
        span = lo if lo <= NEVER_RUN_S else NEVER_RUN_S
        ev = replay(runtime, header, rows, (T0 + span) * 1000)
        assert first(ev, event="alarm", gas="co", state="on") is None
        end = ev[-1]
        assert end["event"] == "end"
        if lo > NEVER_RUN_S:
            # "never" (30 days): every reading stayed at or below the no-alarm level, where
            # the dose only washes out (test_alarms_properties proves it cannot alarm then)
            assert end["peak_co_ppm_x10"] <= profiles.PROFILES[pname]["co_no_alarm_ppm"] * 10
            assert end["co_dose_pct"] == 0
