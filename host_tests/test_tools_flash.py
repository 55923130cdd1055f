"""gasguard flash: the command plan (--dry-run) and a real deploy to the virtual board.

The deploy test is the whole field procedure against the unix port on a pty: the running
application is put into maintenance mode over the service protocol, mpremote (with
`resume`) copies the xtensawin .mpy build, the board leaves maintenance mode and the
virtual board then runs the deployed .mpy files.
"""

import json
import os
import subprocess
import sys

from conftest import ROOT
from dut_fixtures import Dut, _wait_ready, make_virtual_device  # noqa: F401


def gasguard(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tools"))
    env.pop("GASGUARD_FACTORY_KEY", None)
    return subprocess.run([sys.executable, "-m", "gasguard_tools.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(ROOT))


def test_dry_run_prints_every_command_and_touches_nothing(tmp_path):
    cfg = tmp_path / "device.json"
    cfg.write_text(json.dumps({"detector": {"profile": "cn", "tier": "mid"}}))
    build = tmp_path / "build"
    r = gasguard("flash", "--port", "/dev/ttyUSB7", "--board", "esp32-detector", "--firmware",
                 "mp.bin", "--config", str(cfg), "--build", str(build), "--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "erase-flash" in out and "write-flash -z 0x1000 mp.bin" in out
    from gasguard_tools.cmd_package import deploy_set

    n_src = len(deploy_set("detector", "mid"))  # the tier of --config: its deploy set only
    assert n_src < len(list((ROOT / "firmware" / "gasguard").glob("*.py")))
    assert out.count("-march=xtensawin -O3") == n_src
    assert "valve_app.py" not in out
    assert "mpremote connect /dev/ttyUSB7 resume fs cp" in out and ":lib/gasguard/" in out
    assert "boards/esp32-detector/pins.py" in out and "esp32_hal.py" in out
    assert ":config.json" in out and "resume reset" in out
    assert not build.exists()


def test_unknown_board_and_bad_config_are_refused(tmp_path):
    r = gasguard("flash", "--port", "/dev/null", "--board", "esp8266", "--dry-run")
    assert r.returncode == 2 and "unknown board" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    r = gasguard("flash", "--port", "/dev/null", "--board", "sim", "--config", str(bad), "--dry-run")
    assert r.returncode == 2 and "not a readable JSON" in r.stderr


def test_wrong_key_keeps_the_application_running(make_virtual_device, tmp_path):
    dev = make_virtual_device()
    r = gasguard("flash", "--port", dev.port, "--board", "sim", "--build", str(tmp_path / "b"),
                 "--factory-key", "11" * 32)
    assert r.returncode == 2 and "refused the factory key" in r.stderr
    assert not (dev.state / "lib").exists()
    d = _wait_ready(Dut(dev.port, device=dev))
    assert d.cmd("STATUS?")["boot_count"] == 1 and dev.mode == "app"
    d.close()


def test_deploy_to_the_virtual_board_through_maintenance_mode(make_virtual_device, tmp_path):
    dev = make_virtual_device()
    cfg = tmp_path / "device.json"
    cfg.write_text(json.dumps({"detector": {"profile": "en", "tier": "high"}}))
    r = gasguard("flash", "--port", dev.port, "--board", "sim", "--config", str(cfg),
                 "--build", str(tmp_path / "b"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "entering maintenance mode" in r.stdout and "application running" in r.stdout
    lib = dev.state / "lib" / "gasguard"
    for src in (ROOT / "firmware" / "gasguard").glob("*.py"):
        assert (lib / (src.stem + ".mpy")).is_file(), src.name
    assert not list(lib.glob("*.py"))
    assert json.loads((dev.state / "config.json").read_text())["detector"]["profile"] == "en"
    d = _wait_ready(Dut(dev.port, device=dev))
    st = d.cmd("STATUS?")
    # boot 1: before the deploy; the MAINT reboot goes straight to the REPL (no app boot);
    # boot 2: after the deploy, from the deployed .mpy files with the new config
    assert st["boot_count"] == 2 and st["reset_cause"] == "soft_reset"
    assert st["detector"]["profile"] == "en" and st["detector"]["tier"] == "high"
    kinds = [e["event"] for e in d.cmd("LOG? 50")["events"]]
    assert kinds.count("boot") == 2 and "reboot" in kinds
    d.close()
