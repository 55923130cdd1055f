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


def test_a_long_benchmark_rewrites_only_its_own_section_of_benchmarks_md(tmp_path):
    """bench_soak --write and bench_heap --write refresh one section of docs/benchmarks.md
    without rerunning the others: that section is replaced, a missing one goes where
    bench.py's alphabetical order puts it, everything else is left byte for byte."""
    from gasguard_tools.benchkit import write_section

    doc = tmp_path / "benchmarks.md"
    head = "# gasguard benchmarks\n\n## Firmware size\n\nsizes\n\n"
    doc.write_text(head + "## devices\n\nd\n\n## heap\n\nold heap\n\n## soak\n\ns\n")
    write_section("heap", "new heap", 12.34, doc)
    assert doc.read_text() == (head + "## devices\n\nd\n\n## heap\n\nnew heap\n\n"
                               "_(ran in 12.3 s)_\n\n## soak\n\ns\n")
    write_section("modbus", "m", 1, doc)  # missing: between heap and soak
    text = doc.read_text()
    assert text.index("## heap") < text.index("## modbus\n\nm\n") < text.index("## soak")
    write_section("valve_app", "v", 1, doc)  # after the last one
    assert doc.read_text().startswith(text.rstrip("\n")) and doc.read_text().endswith("## valve_app\n\nv\n\n_(ran in 1.0 s)_\n")
