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
import time

from conftest import ROOT
from fixtures.dut import Dut, _wait_ready, make_virtual_device  # noqa: F401


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
    assert r.returncode == 1 and "refused the factory key" in r.stderr
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


def _old_firmware_on_the_board(state, version):
    """The board's flash holds an older gasguard (as `gasguard flash` of that release left it)."""
    lib = state / "lib" / "gasguard"
    lib.mkdir(parents=True, exist_ok=True)
    for src in (ROOT / "firmware" / "gasguard").glob("*.py"):
        text = src.read_text()
        if src.name == "__init__.py":
            text = text.replace('VERSION = "%s"' % _version(), 'VERSION = "%s"' % version)
        (lib / src.name).write_text(text)


def _version():
    from gasguard_tools import VERSION

    return VERSION


def test_upgrade_over_a_repl_that_imported_the_old_version(make_virtual_device, tmp_path):
    """Issue 14: on a board main.py imports gasguard before its maintenance check, so the
    REPL the deploy talks to holds the old modules. The check must read what is on the flash."""
    _old_firmware_on_the_board(tmp_path / "board0", "0.0.9")  # make_virtual_device's first board
    dev = make_virtual_device()  # boots the old release from its flash
    from gasguard_tools.cmd_sim import SIM_FACTORY_KEY
    from gasguard_tools.serialdev import ServiceClient

    _wait_ready(Dut(dev.port, device=dev)).close()
    with ServiceClient.open(dev.port, timeout=2.0) as sc:
        assert sc.hello()["fw"] == "0.0.9"
        sc.enter_factory(bytes.fromhex(SIM_FACTORY_KEY))
        sc.cmd("MAINT")  # the app reboots into the REPL
    deadline = time.monotonic() + 10
    while dev.mode != "repl" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dev.mode == "repl"
    # like main.py on the board: the old gasguard is imported in the REPL's interpreter
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", dev.port, "resume", "exec",
                        "import gasguard; print(gasguard.VERSION)"], capture_output=True, text=True,
                       timeout=60)
    assert "0.0.9" in r.stdout, r.stdout + r.stderr
    r = gasguard("flash", "--port", dev.port, "--board", "sim", "--build", str(tmp_path / "b"),
                 "--json", "--lang", "en")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "deployed gasguard %s" % _version() in r.stderr  # the steps; stdout is the result
    result = json.loads(r.stdout)
    assert result["deployed"] == _version() and result["files"] == len(
        list((ROOT / "firmware" / "gasguard").glob("*.py")))
    # issue 10 item 7: the free heap with the app running after the reset, for the operator
    assert isinstance(result["free_heap"], int) and result["free_heap"] > 0
    assert "free heap after deploy and reset: %d bytes" % result["free_heap"] in r.stderr
    # progress per file with its size, as mpremote copies
    assert "[1/%d] __init__.mpy" % result["files"] in r.stderr
    d = _wait_ready(Dut(dev.port, device=dev))
    assert d.cmd("HELLO")["fw"] == _version()
    d.close()


def test_chip_table_sets_the_image_offset_and_the_architecture(tmp_path):
    from gasguard_tools.cmd_package import deploy_set
    from gasguard_tools.flashing import CHIPS

    n_src = len(deploy_set("detector", "mid"))
    for chip, want in CHIPS.items():
        r = gasguard("flash", "--port", "/dev/ttyUSB7", "--board", "esp32-detector", "--chip", chip,
                     "--firmware", "mp.bin", "--build", str(tmp_path / chip), "--dry-run")
        assert r.returncode == 0, r.stderr
        assert "--chip %s --port /dev/ttyUSB7 --baud 460800 write-flash -z %s mp.bin" % (
            chip, want["offset"]) in r.stdout
        assert r.stdout.count("-march=%s -O3" % want["arch"]) == n_src
    assert CHIPS["esp32s3"]["offset"] == "0x0" and CHIPS["esp32c3"]["arch"] == "rv32imc"
    r = gasguard("flash", "--port", "/dev/null", "--board", "sim", "--chip", "esp8266", "--dry-run")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_dry_run_keeps_the_records_around_the_erase(tmp_path):
    r = gasguard("flash", "--port", "/dev/ttyUSB7", "--board", "esp32-valve", "--firmware", "mp.bin",
                 "--build", str(tmp_path / "b"), "--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    backup = out.index("fs cp :data/")
    erase = out.index("erase-flash")
    restore = out.index("records-")
    assert backup < erase < out.index("write-flash") < out.index("mkdir_records.py")
    assert restore < erase  # the backup folder is named before the erase
    assert out.count("list_records.py") == 1  # listed once in a dry run (verification needs data)
    r = gasguard("flash", "--port", "/dev/ttyUSB7", "--board", "esp32-valve", "--firmware", "mp.bin",
                 "--discard-device-records", "--build", str(tmp_path / "b"), "--dry-run")
    assert r.returncode == 0 and "fs cp :data/" not in r.stdout
    assert "calibration" in r.stdout and "nothing is kept" in r.stdout


def test_firmware_refuses_to_erase_a_board_whose_records_cannot_be_saved(tmp_path):
    """No app answers and no REPL either: the records cannot be read, so esptool never runs."""
    import pty

    bindir = tmp_path / "bin"
    bindir.mkdir()
    marker = tmp_path / "esptool-ran"
    fake = bindir / "esptool"
    fake.write_text("#!/bin/sh\ntouch %s\n" % marker)
    fake.chmod(0o755)
    image = tmp_path / "mp.bin"
    image.write_bytes(b"\xe9" + bytes(63))
    m, s = pty.openpty()
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "tools"),
                   PATH=str(bindir) + os.pathsep + os.environ["PATH"])
        r = subprocess.run([sys.executable, "-m", "gasguard_tools.cli", "flash", "--port",
                            os.ttyname(s), "--board", "esp32-detector", "--firmware", str(image),
                            "--build", str(tmp_path / "b")], capture_output=True, text=True,
                           timeout=120, env=env, cwd=str(ROOT))
    finally:
        os.close(m)
        os.close(s)
    assert r.returncode != 0
    assert "Nothing was erased" in r.stderr and "--discard-device-records" in r.stderr
    assert "Traceback" not in r.stderr
    assert not marker.exists()


def test_records_survive_an_erase_through_backup_and_restore(make_virtual_device, tmp_path):
    """The backup/restore steps of --firmware against the virtual board's REPL over its pty.
    esptool cannot erase a pty, so the test wipes the board's flash folder in between."""
    import argparse
    import shutil

    from gasguard_tools import flashing
    from gasguard_tools.cmd_flash import Runner, enter_maintenance, mpremote

    dev = make_virtual_device()
    d = _wait_ready(Dut(dev.port, device=dev))
    d.close()
    (dev.state / "config.json").write_text(json.dumps({"detector": {"profile": "en"}}))
    log = []
    args = argparse.Namespace(port=dev.port, dry_run=False, factory_key=None)
    enter_maintenance(args, log.append)
    deadline = time.monotonic() + 10
    while dev.mode != "repl" and time.monotonic() < deadline:
        time.sleep(0.1)
    before = {p.relative_to(dev.state).as_posix(): p.read_bytes()
              for p in list((dev.state / "data").iterdir()) + [dev.state / "config.json"]}
    assert "data/factory.key" in before and "data/events.log" in before
    runner = Runner(False, log.append)

    def remote(*c):
        return mpremote(dev.port, *c)

    records = flashing.backup_records(runner, remote, tmp_path / "s", tmp_path / "keep", log.append)
    assert sorted(records) == sorted(before)
    shutil.rmtree(dev.state / "data")  # the erase
    (dev.state / "config.json").unlink()
    flashing.restore_records(runner, remote, tmp_path / "s", tmp_path / "keep", records, log.append)
    after = {k: (dev.state / k).read_bytes() for k in before}
    assert after == before
    assert "records restored and verified (%d files)" % len(before) in log
    # a corrupted backup is caught by the check, not written back silently
    (tmp_path / "keep" / "data" / "factory.key").write_bytes(b"x" * 32)
    import pytest

    from gasguard_tools.runtime import ToolError

    with pytest.raises(ToolError, match="data/factory.key"):
        flashing.restore_records(runner, remote, tmp_path / "s", tmp_path / "keep", records, log.append)
