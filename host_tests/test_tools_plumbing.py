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


def test_manifest_lists_every_firmware_file():
    from gasguard_tools.cmd_package import firmware_files, render_manifest

    text = render_manifest()
    files = firmware_files()
    assert "gasguard/__init__.py" in files
    for f in files:
        assert 'module("%s"' % f in text


def test_no_command_prints_help_and_fails():
    r = gasguard()
    assert r.returncode == 2
    assert "replay" in r.stdout
