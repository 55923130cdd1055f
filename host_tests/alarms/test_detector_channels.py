"""The detector with the real sensing channels (through the replay runner, both runtimes)."""

import pytest

from fixtures.alarms import RUNTIMES, first, replay
from gasguard import detector, sensing


def test_fault_code_table_matches_the_channel():
    # one table (gasguard.sensing) for the detector and every channel kind
    assert detector.FAULT_CODES is sensing.FAULT_CODES
    assert detector.FAULT_BITS is sensing.FAULT_BITS


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_missing_calibration_is_a_fault_but_a_gross_leak_still_alarms(runtime):
    hdr = {"device": "detector", "config": {"profile": "cn", "tier": "mid"}, "seed": 4,
           "calibrated": False}
    rows = [{"t_ms": 0}, {"t_ms": 400000, "ch4_ppm_milli": 20000 * 1000},
            {"t_ms": 500000, "ch4_ppm_milli": 0}]
    ev = replay(runtime, hdr, rows, 600000)
    assert first(ev, event="fault", code="cal_missing", gas="ch4", state="on")["t"] == 0
    assert first(ev, event="fault", code="cal_missing", gas="co", state="on")["t"] == 0
    on = first(ev, event="alarm", gas="ch4", level=2, state="on")
    assert on is not None and 400 < on["t"] <= 430
    assert first(ev, event="interlock", cause="ch4_high") is not None
    assert set(ev[-1]["faults"]) == {"ch4:cal_missing", "co:cal_missing"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_open_sensor_holds_the_alarm_until_repaired(runtime):
    hdr = {"device": "detector", "config": {"profile": "cn", "tier": "low"}, "seed": 8}
    rows = [{"t_ms": 0}, {"t_ms": 400000, "ch4_ppm_milli": 8000 * 1000},
            {"t_ms": 450000, "ch4_sensor": "open", "ch4_ppm_milli": 0},
            {"t_ms": 600000, "ch4_sensor": "ok"}]
    ev = replay(runtime, hdr, rows, 700000)
    on = first(ev, event="alarm", gas="ch4", level=1, state="on")
    fault = first(ev, event="fault", code="sensor_open", state="on")
    off = first(ev, event="alarm", gas="ch4", level=1, state="off")
    assert on["t"] < 450 <= fault["t"] <= 455
    # no all-clear from a broken sensor: the alarm ends only after the repair
    assert off["t"] > 600
