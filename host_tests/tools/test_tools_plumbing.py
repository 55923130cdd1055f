"""The gasguard command itself and the generated packaging."""

import subprocess
import sys

from conftest import ROOT


def gasguard(*args):
    return subprocess.run(
        [sys.executable, "-m", "gasguard_tools.cli", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={"PYTHONPATH": str(ROOT / "tools"), "PATH": str(ROOT / ".venv" / "bin") + ":/usr/bin:/bin"},
    )


def test_version_matches_firmware():
    from gasguard_tools import VERSION

    r = gasguard("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == "gasguard " + VERSION
    assert ('VERSION = "%s"' % VERSION) in (ROOT / "firmware/gasguard/__init__.py").read_text()


def test_packaging_is_up_to_date():
    r = gasguard("package", "--check")
    assert r.returncode == 0, r.stderr


def test_each_device_manifest_keeps_the_port_and_carries_only_its_deploy_set():
    from gasguard_tools.cmd_package import DEVICES, deploy_set, firmware_files, render_manifest

    files = firmware_files()
    for device, tier in DEVICES:
        text = render_manifest(device, tier)
        assert 'include("$(PORT_DIR)/boards/manifest.py")' in text  # _boot.py, espnow stay
        assert 'module("pins.py", base_path="../boards/esp32-%s"' % device in text
        wanted = deploy_set(device, tier)
        assert "gasguard/__init__.py" in wanted and set(wanted) <= set(files)
        for f in files:
            assert ('"%s",' % f.split("/", 1)[1] in text) == (f in wanted), (device, tier, f)
    valve = deploy_set("valve", "M")
    # the valve never carries detector code; a low-tier detector no active identifier
    for m in ("detector", "channel", "app", "sensors", "calibration", "profiles"):
        assert "gasguard/%s.py" % m not in valve
    assert "gasguard/valve.py" not in deploy_set("detector", "mid")
    assert "gasguard/active_id.py" not in deploy_set("detector", "low")
    assert "gasguard/active_id.py" in deploy_set("detector", "mid")


def test_no_command_prints_help_and_fails():
    r = gasguard()
    assert r.returncode == 2
    assert "replay" in r.stdout
