"""boards/esp32-detector/main.py assembles the detector as the simulator does.

The real main.py on the MicroPython unix port with test doubles of the ESP32 board modules
(host_tests/board_fakes) and /data in a temp folder; the fake watchdog ends the loop.
"""

import json

from fixtures import board_main
from fixtures.board_main import last_json
from conftest import ROOT

# At 112 KB on the ESP32-like interpreter the detector's main.py boots and runs its loop
# (default config, a high-tier config.json with the ESP-NOW link attached, maintenance mode).
interp = board_main.interp_fixture()
MAIN = ROOT / "boards" / "esp32-detector" / "main.py"


def run_main(tmp_path, turns=300):
    return board_main.run_main(MAIN, tmp_path, turns)


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


def test_main_collects_every_8k_from_its_first_line_as_the_bench_does():
    board_main.assert_collects_every_8k_first(MAIN)
