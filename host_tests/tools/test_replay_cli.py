"""`gasguard replay` end to end: CSV validation errors (exit 2, line named), both runtimes,
time order, speed-independent behaviour of a 4-hour scenario."""

import json
import subprocess
import sys

import pytest

from conftest import ESP32_HEAP, ROOT, esp32_exe, need_esp32
from gasguard_tools import cmd_replay
from gasguard_tools.runtime import ToolError

SCEN = ROOT / "docs" / "scenarios"


def gasguard(*args):
    env = {"PYTHONPATH": str(ROOT / "tools")}
    import os

    env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-m", "gasguard_tools.cli", "replay"] + [str(a) for a in args],
                          capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=300)


def events(out):
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("text,needle", [
    ("ch4_ppm\n0\n", "line 1: header has no t_s"),
    ("t_s,ch4_ppm\n0,0\n5,abc\n", "line 3: column ch4_ppm: 'abc' is not a number"),
    ("t_s,ch4_ppm\n0,0\n5,1\n5,2\n", "line 4: t_s 5 is not after"),
    ("t_s,ch4_ppm\n0,0\n5,1\n3,2\n", "line 4: t_s 3 is not after"),
    ("t_s,ch4_ppm,smoke\n0,0,1\n", "line 1: unknown column 'smoke'"),
    ("t_s,ch4_sensor\n0,broken\n", "line 2: column ch4_sensor: 'broken' is not one of ok, open, short, stuck"),
    ("t_s,co_ppm\n0,1\n7,nan\n", "line 3: column co_ppm: 'nan' is not a finite number"),
    ("# comment\n\nt_s,co_ppm\n0,1\n7\n", "line 5: 1 values for 2 columns"),
    ("t_s,co_ppm\n", "line 1: the scenario has a header but no rows"),
    ("t_s,co_ppm\n-1,0\n", "line 2: t_s -1 is outside"),
    ("t_s,t_s\n0,0\n", "line 1: column 't_s' appears twice"),
])
def test_bad_scenarios_name_the_line_and_exit_2(tmp_path, text, needle):
    p = tmp_path / "s.csv"
    p.write_text(text)
    r = gasguard(p)
    assert r.returncode == 2
    assert needle in r.stderr, r.stderr
    assert r.stdout == ""


def test_missing_file_is_a_clean_error(tmp_path):
    r = gasguard(tmp_path / "nope.csv")
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_bad_extra_config_is_refused_with_the_key(tmp_path):
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"ch4_delay_s": 3}))
    r = gasguard(SCEN / "co_150ppm.csv", "--config", c)
    assert r.returncode == 1 and "ch4_delay_s" in r.stderr


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_kitchen_scenario_events_in_time_order(runtime):
    r = gasguard(SCEN / "kitchen_leak.csv", "--runtime", runtime, "--seed", "3")
    assert r.returncode == 0, r.stderr
    ev = events(r.stdout)
    ts = [e["t"] for e in ev]
    assert ts == sorted(ts)
    assert all("t" in e and "event" in e for e in ev)
    kinds = [(e["event"], e.get("gas"), e.get("level"), e.get("state")) for e in ev]
    assert ("ready", None, None, None) in kinds
    assert ("alarm", "ch4", 1, "on") in kinds and ("alarm", "ch4", 2, "on") in kinds
    assert ("alarm", "co", 1, "on") in kinds and ("relay", None, None, "on") in kinds
    assert ev[-1]["event"] == "end" and ev[-1]["t"] == 2700


def esp32_args():
    """`gasguard replay` options for the ESP32-like interpreter, from .mpy, at the ESP32's
    112 KB."""
    return ("--micropython", need_esp32(), "--heap", ESP32_HEAP)


def test_both_runtimes_print_the_same_bytes():
    a = gasguard(SCEN / "sensor_faults.csv", "--runtime", "cpython", "--seed", "9")
    b = gasguard(SCEN / "sensor_faults.csv", "--runtime", "micropython", "--seed", "9")
    assert a.returncode == 0 and b.returncode == 0
    assert a.stdout == b.stdout
    if esp32_exe() is not None:
        c = gasguard(SCEN / "sensor_faults.csv", "--seed", "9", *esp32_args())
        assert c.returncode == 0, c.stderr
        assert c.stdout == a.stdout
    codes = {(e["code"], e["state"]) for e in events(a.stdout) if e["event"] == "fault"}
    assert {("sensor_open", "on"), ("sensor_short", "on"), ("supply_low", "on"),
            ("sensor_stuck", "on")} <= codes


def test_tier_low_has_no_co_and_profile_changes_timing(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("t_s,co_ppm\n0,0\n300,300\n900,300\n")
    en = events(gasguard(p, "--profile", "en").stdout)
    cn = events(gasguard(p, "--profile", "cn").stdout)
    low = events(gasguard(p, "--tier", "low").stdout)
    t_en = [e["t"] for e in en if e["event"] == "alarm" and e["gas"] == "co"][0]
    assert t_en - 300 < 180  # EN 50291: 300 ppm < 3 min
    assert not [e for e in cn if e["event"] == "alarm"]  # CN/UL: 300 ppm ~11 min
    assert not [e for e in low if e["event"] == "alarm"] and "alarm_co" not in low[-1]


def test_four_hour_scenario_replays_in_seconds(tmp_path):
    rows = ["t_s,ch4_ppm,co_ppm"] + ["%d,%d,%d" % (t, (t // 600) % 2 * 3000, 20) for t in range(0, 14401, 300)]
    p = tmp_path / "long.csv"
    p.write_text("\n".join(rows) + "\n")
    r = gasguard(p, "--runtime", "micropython")
    assert r.returncode == 0, r.stderr
    ev = events(r.stdout)
    assert ev[-1]["event"] == "end" and ev[-1]["t"] == 14400
    assert not [e for e in ev if e["event"] == "alarm"]


# The standards scenarios: CH4 timing, the CO windows of every profile, sensor faults.
STANDARDS = [("ch4_ramp.csv", "cn"), ("kitchen_leak.csv", "en")] + [
    ("co_150ppm.csv", p) for p in ("cn", "en", "ul")] + [("sensor_faults.csv", "ul")]


@pytest.mark.parametrize("scenario,profile", STANDARDS)
def test_standards_scenarios_replay_identically_on_the_esp32_like_interpreter(scenario, profile):
    """32-bit ints, single floats and the 112 KB heap change nothing the standards care about:
    the same events at the same times, byte for byte, as on CPython and the pip MicroPython."""
    args = (SCEN / scenario, "--profile", profile, "--seed", "5")
    c = gasguard(*args, *esp32_args())
    a = gasguard(*args, "--runtime", "cpython")
    b = gasguard(*args, "--runtime", "micropython")
    assert a.returncode == 0 and b.returncode == 0 and c.returncode == 0, a.stderr + c.stderr
    assert c.stdout == a.stdout == b.stdout
    assert events(c.stdout)[-1]["event"] == "end"


def test_four_hours_of_70_ppm_co_run_to_the_end_on_the_esp32_like_interpreter(tmp_path):
    """Long runs used to exhaust the heap (the simulated pins' unbounded histories)."""
    p = tmp_path / "co70.csv"
    p.write_text("t_s,co_ppm\n0,0\n60,70\n14400,70\n")
    c = gasguard(p, "--profile", "en", *esp32_args())
    assert c.returncode == 0, c.stderr
    a = gasguard(p, "--profile", "en", "--runtime", "cpython")
    assert c.stdout == a.stdout
    ev = events(c.stdout)
    assert ev[-1]["event"] == "end" and ev[-1]["t"] == 14400
    assert [e for e in ev if e["event"] == "alarm" and e["gas"] == "co"]  # EN 50291: 70 ppm alarms


def test_parse_scenario_carries_empty_cells_and_scales_to_milli():
    rows, end = cmd_replay.parse_scenario(["t_s,ch4_ppm,button,ch4_sensor", "0,1.5,,ok",
                                           "2.25,,press,", "3,0,,stuck"])
    assert end == 3000
    assert rows == [{"t_ms": 0, "ch4_ppm_milli": 1500, "ch4_sensor": "ok"},
                    {"t_ms": 2250, "button": "press"},
                    {"t_ms": 3000, "ch4_ppm_milli": 0, "ch4_sensor": "stuck"}]
    with pytest.raises(ToolError):
        cmd_replay.parse_scenario(["t_s,pressure_kpa", "0,1"], "detector")
    rows, _ = cmd_replay.parse_scenario(["t_s,pressure_kpa,valve_switch", "0,2.05,open"], "valve")
    assert rows == [{"t_ms": 0, "pressure_kpa_milli": 2050, "valve_switch": "open"}]


def test_device_valve_uses_its_own_columns(tmp_path):
    p = tmp_path / "v.csv"
    p.write_text("t_s,pressure_kpa,flow_m3h,valve_switch\n0,2.0,0.3,open\n30,9.5,0.3,\n60,2.0,0.3,\n")
    r = gasguard(p, "--device", "valve")
    runner = ROOT / "boards" / "sim" / "replay_valve.py"
    if not runner.exists():
        assert r.returncode == 2 and "valve replay runner" in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        ev = events(r.stdout)
        assert ev and all("t" in e and "event" in e for e in ev)
        assert [e["t"] for e in ev] == sorted(e["t"] for e in ev)
    bad = tmp_path / "b.csv"
    bad.write_text("t_s,ch4_ppm\n0,1\n")
    r = gasguard(bad, "--device", "valve")
    assert r.returncode == 2 and "line 1: unknown column 'ch4_ppm'" in r.stderr
