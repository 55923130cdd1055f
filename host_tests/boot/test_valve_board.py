"""boards/esp32-valve/main.py assembles the valve device as the simulator does.

Runs the real main.py on the MicroPython unix port with test doubles of the ESP32 board
modules (host_tests/board_fakes: esp32_hal, esp32_radio, esp32_net, pins) and /data
redirected to a temp folder; the fake watchdog ends the loop after a few hundred turns.
"""

import json

from fixtures import board_main
from fixtures.board_main import last_json
from conftest import ROOT
from gasguard import identifier, record
from gasguard.identity import IdentityStore
from gasguard.store import FileStore

# the valve fits 112 KB with its link and the console, with Wi-Fi and a refused report
# config, and with reporting and the active identifier running (since main.py collects
# every 8 KB allocated from its first line: docs/heap-budget.md)
interp = board_main.interp_fixture()
MAIN = ROOT / "boards" / "esp32-valve" / "main.py"


def test_main_collects_every_8k_from_its_first_line_as_the_bench_does():
    board_main.assert_collects_every_8k_first(MAIN)


def run_main(tmp_path, turns=300):
    return board_main.run_main(MAIN, tmp_path, turns)


def _provision(tmp_path):
    """/data with a provisioned, locked valve identity."""
    (tmp_path / "data").mkdir()
    ids = IdentityStore(FileStore(str(tmp_path / "data")))
    dev_id = identifier.make("88.118.8", "GV", "M", "261129", 7)
    ids.provision({"id": dev_id, "model": "GG-V1", "hw_rev": "1.0"}, bytes(range(1, 33)))
    ids.lock(dev_id)


def _write_config(tmp_path, cfg):
    """cfg as /data/config.rec, sealed as CFG writes it."""
    (tmp_path / "data" / "config.rec").write_bytes(record.seal(json.dumps(cfg).encode()))


def test_main_runs_the_valve_app_with_its_radio_and_counts_boots(tmp_path):
    (tmp_path / "data").mkdir()
    out = run_main(tmp_path)
    assert "stopped: watchdog test limit" in out
    st = last_json(out)
    assert st["kind"] == "valve" and st["board"] == "esp32-valve" and st["valve"] == "open"
    assert st["radio"] is True and st["link"] == "unpaired" and st["boot_count"] == 1
    assert st["pollers"] == []  # no net/report configured: no Wi-Fi, no reporter
    st = last_json(run_main(tmp_path))
    assert st["boot_count"] == 2
    assert (tmp_path / "data" / "events.log").stat().st_size > 0


def test_maintenance_flag_skips_the_app_once(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "maint.flag").write_bytes(b"1")
    out = run_main(tmp_path)
    assert "maintenance mode, application not started" in out
    assert not any(ln.startswith("{") for ln in out.splitlines())
    assert not (tmp_path / "data" / "maint.flag").exists()
    assert last_json(run_main(tmp_path))["kind"] == "valve"


def test_low_tier_without_link_has_no_radio_and_net_report_attach_the_platform(tmp_path):
    (tmp_path / "data").mkdir()
    cfg = {"valve": {"tier": "L"}, "net": {"ssid": "x", "password": "y"},
           "report": {"mqtt": {"host": "127.0.0.1", "port": 1}}}
    _write_config(tmp_path, cfg)
    st = last_json(run_main(tmp_path, 50))
    assert st["radio"] is False and st["link"] == "none"
    # not provisioned: Wi-Fi comes up but no reporter (the valve still protects)
    assert st["pollers"] == ["WiFi"]


def test_provisioned_valve_with_net_and_report_gets_reporter_and_active_id(tmp_path):
    _provision(tmp_path)
    cfg = {"net": {"ssid": "x", "password": "y"},
           "report": {"mqtt": {"host": "127.0.0.1", "port": 1}}}
    _write_config(tmp_path, cfg)
    st = last_json(run_main(tmp_path, 50))
    assert st["pollers"] == ["WiFi", "Reporter", "TelemetryFeeder", "ParkedActiveId"], st
    assert "reporter" in st["parts"]


def test_a_refused_report_config_is_counted_and_the_valve_still_runs(tmp_path):
    """Optional parts attach after the safety path: a report section the reporter refuses
    (or a MemoryError while attaching) shows in STATUS? last_errors, the loop still runs."""
    _provision(tmp_path)
    cfg = {"net": {"ssid": "x", "password": "y"},
           "report": {"mqtt": {"host": "127.0.0.1", "port": "not a port"}}}
    _write_config(tmp_path, cfg)
    st = last_json(run_main(tmp_path, 50))
    assert st["kind"] == "valve" and st["boot_count"] == 1
    assert st["pollers"] == ["WiFi"], st  # no reporter, no identifier; the valve protects
    assert any(e.startswith("platform: ConfigError") for e in st["errors"]), st


def test_config_json_from_gasguard_flash_is_the_default_and_cfg_wins(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"valve": {"tier": "L"}}))
    st = last_json(run_main(tmp_path, 50))
    assert st["tier"] == "L" and st["radio"] is False
    cfg = {"valve": {"tier": "H"}}
    _write_config(tmp_path, cfg)
    st = last_json(run_main(tmp_path, 50))
    assert st["tier"] == "H" and st["radio"] is True
