"""`gasguard replay --device valve` end to end, on CPython, the pip MicroPython and the
ESP32-like one (at the ESP32's heap, from .mpy)."""

import json
import subprocess
import sys

import pytest

from conftest import ESP32_HEAP, ROOT, need_esp32

SCENARIO = ROOT / "docs" / "scenarios" / "valve_trips.csv"


def _replay(*args):
    env = {"PYTHONPATH": str(ROOT / "tools"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "gasguard_tools.cli", "replay", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300)


@pytest.fixture(scope="module")
def outputs():
    return {rt: _replay(SCENARIO, "--device", "valve", "--runtime", rt) for rt in ("cpython", "micropython")}


def test_every_cause_is_classified_identically_on_the_esp32_like_interpreter(outputs):
    r = _replay(SCENARIO, "--device", "valve", "--micropython", need_esp32(), "--heap", ESP32_HEAP)
    assert r.returncode == 0, r.stderr
    assert r.stdout == outputs["cpython"].stdout


def test_every_cause_is_classified_identically_on_both_interpreters(outputs):
    a, b = outputs["cpython"], outputs["micropython"]
    assert a.returncode == 0, a.stderr
    assert b.returncode == 0, b.stderr
    assert a.stdout == b.stdout
    evs = [json.loads(line) for line in a.stdout.splitlines()]
    closed = [(e["t"], e["cause"]) for e in evs if e["event"] == "valve" and e["state"] == "closed"]
    assert [c for _t, c in closed] == ["under_pressure", "over_flow", "over_pressure", "manual", "manual"]
    # each mechanical close is reported within the 3 s closing time of the trigger
    for (t, _c), trigger in zip(closed[:3], (120, 400, 600)):
        assert trigger < t <= trigger + 3
    opens = [e for e in evs if e["event"] == "valve" and e["state"] == "open"]
    assert len(opens) == 5 and all(e["cause"] == "manual_reset" for e in opens)
    assert evs[-1]["event"] == "end" and evs[-1]["valve"] == "open"


def test_a_bad_valve_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"over_pressure_pa": 100}))
    r = _replay(SCENARIO, "--device", "valve", "--config", cfg)
    assert r.returncode == 1
    assert "over_pressure_pa" in (r.stdout + r.stderr)


def test_runner_rejects_time_going_back():
    p = subprocess.run(
        [sys.executable, str(ROOT / "boards" / "sim" / "replay_valve.py")],
        input='{"device": "valve", "config": {}}\n{"t_ms": 1000}\n{"t_ms": 500}\n{"end_ms": 2000}\n',
        capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": "%s:%s" % (ROOT / "firmware", ROOT / "boards" / "sim")},
    )
    assert p.returncode == 2 and '"event": "error"' in p.stdout
