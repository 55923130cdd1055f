"""boards/esp32-detector/main.py assembles the detector as the simulator does.

The real main.py on the MicroPython unix port with test doubles of the ESP32 board modules
(host_tests/board_fakes) and /data in a temp folder; the fake watchdog ends the loop.
"""

import json

from conftest import ROOT, run_micropython

FAKES = ROOT / "host_tests" / "board_fakes"
MAIN = ROOT / "boards" / "esp32-detector" / "main.py"


def run_main(tmp_path, turns=300):
    r = run_micropython([FAKES / "run_main.py", str(tmp_path), str(turns), str(MAIN)],
                        extra_path=[FAKES], timeout=60)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    return out


def last_json(out):
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])


def test_main_runs_the_detector_app_and_counts_boots(tmp_path):
    (tmp_path / "data").mkdir()
    out = run_main(tmp_path)
    assert "stopped: watchdog test limit" in out
    st = last_json(out)
    assert st["kind"] == "detector" and st["board"] == "esp32-detector"
    assert st["boot_count"] == 1 and st["pollers"] == [] and st["interlocks"] == []
    assert last_json(run_main(tmp_path))["boot_count"] == 2


def test_config_json_from_flash_is_honoured_and_the_link_attached(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(
        {"detector": {"profile": "en", "tier": "high"}, "link": {"channel": 6}}))
    st = last_json(run_main(tmp_path))
    assert st["profile"] == "en" and st["tier"] == "high"
    assert st["interlocks"] == ["DetectorLink"]


def test_maintenance_flag_skips_the_app_once(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "maint.flag").write_bytes(b"1")
    out = run_main(tmp_path)
    assert "maintenance mode, application not started" in out
    assert last_json(run_main(tmp_path))["kind"] == "detector"
