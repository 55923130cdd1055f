"""Both boards' main.py attach the Modbus slave when the config enables RS-485, and a
`modbus` section the firmware refuses does not stop the device (board test doubles in
host_tests/board_fakes; the fake HAL's rs485() gives a simulated UART)."""

import json

import pytest

from fixtures import board_main
from fixtures.board_main import last_json
from conftest import ROOT

MAINS = {"detector": ROOT / "boards" / "esp32-detector" / "main.py",
         "valve": ROOT / "boards" / "esp32-valve" / "main.py"}
BASE = {"detector": {"detector": {"profile": "cn", "tier": "mid"}},
        "valve": {"valve": {"tier": "L"}}}


def boot(tmp_path, kind, modbus):
    (tmp_path / "data").mkdir(parents=True)
    cfg = dict(BASE[kind])
    if modbus is not None:
        cfg["modbus"] = modbus
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return last_json(board_main.run_main(MAINS[kind], tmp_path, 50))


@pytest.mark.parametrize("kind", sorted(MAINS))
def test_main_attaches_the_slave_only_when_the_config_enables_it(tmp_path, kind):
    st = boot(tmp_path / "on", kind, {"address": 5, "baud": 19200})
    assert "RtuSlave" in st["pollers"] and "modbus" in st["parts"], st
    st = boot(tmp_path / "off", kind, {"enabled": False})
    assert "RtuSlave" not in st["pollers"], st
    st = boot(tmp_path / "none", kind, None)
    assert "RtuSlave" not in st["pollers"], st


@pytest.mark.parametrize("kind", sorted(MAINS))
def test_a_refused_modbus_section_leaves_the_device_running(tmp_path, kind):
    st = boot(tmp_path, kind, {"address": 0})
    assert st["kind"] == kind and st["boot_count"] == 1, st
    assert "RtuSlave" not in st["pollers"]
