"""The tool a user installs: a wheel built from the checkout, installed into a fresh venv,
run from another folder (no checkout, no PYTHONPATH). It must find its firmware, boards,
schemas and scenarios inside the package (setup.py copies them in at build time).

This is slow (a wheel build and a pip install into a fresh venv, ~30 s), but it is the only
test that sees what `pip install gasguard` gives a technician.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT
from fixtures.dut import sim_serial_port

PIP_ENV = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
for _k in ("PYTHONPATH", "MICROPYPATH", "VIRTUAL_ENV"):
    PIP_ENV.pop(_k, None)


def _checkout_copy(dst):
    """The files a clean checkout has (tracked plus new, not ignored): build/, .venv and
    caches of this worktree must not leak into the wheel."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for n in filter(None, names):
        src = ROOT / n.decode()
        if src.is_file():
            out = dst / n.decode()
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the checkout's files")
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    _checkout_copy(src)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                        str(base / "dist"), str(src)], capture_output=True, text=True, env=PIP_ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (base / "dist").glob("gasguard-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c",
                        str(ROOT / "constraints.txt"), str(wheel)],
                       capture_output=True, text=True, env=PIP_ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return {"wheel": wheel, "bin": venv / "bin", "cwd": elsewhere, "src": src, "base": base}


def run(inst, *args, timeout=120):
    env = dict(PIP_ENV, PATH=str(inst["bin"]) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run([str(inst["bin"] / "gasguard"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=inst["cwd"], env=env)


def test_the_wheel_carries_the_device_side(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    data = "gasguard_tools/data/"
    for want in ("firmware/gasguard/__init__.py", "firmware/gasguard/app.py",
                 "boards/sim/virtual_device.py", "boards/esp32-detector/main.py",
                 "docs/schemas/event.schema.json", "docs/scenarios/kitchen_leak.csv"):
        assert data + want in names, want
    assert not [n for n in names if "__pycache__" in n or n.endswith(".mpy")]
    # docs-only libraries are not a runtime dependency (they are the `docs` extra)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(installed["wheel"]).read(meta).decode()
    runtime = [ln for ln in text.splitlines() if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert runtime and not [ln for ln in runtime if "matplotlib" in ln or "numpy" in ln]
    assert not [ln for ln in runtime if "==" in ln], runtime


def test_the_sdist_carries_what_the_wheel_needs(installed):
    """pip install of the sdist builds the same package data (MANIFEST.in + setup.py)."""
    import importlib.util

    # the checkout's build/ folder (build output) imports as a namespace package "build"
    if importlib.util.find_spec("build.__main__") is None:
        pytest.skip("the build package (pypa/build) is not installed")
    out = installed["base"] / "sdist"
    # not from the checkout: its build/ folder (build output) would shadow the build package
    r = subprocess.run([sys.executable, "-m", "build", "--sdist", "-o", str(out), str(installed["src"])],
                       capture_output=True, text=True, env=PIP_ENV, cwd=str(installed["base"]))
    assert r.returncode == 0, r.stderr[-2000:]
    (sdist,) = out.glob("gasguard-*.tar.gz")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                        str(sdist)], capture_output=True, text=True, env=PIP_ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    (from_sdist,) = out.glob("gasguard-*.whl")

    def data(whl):
        return sorted(n for n in zipfile.ZipFile(whl).namelist() if "/data/" in n)

    assert data(from_sdist) == data(installed["wheel"]) and len(data(from_sdist)) > 100


def test_version_from_another_folder(installed):
    from gasguard_tools import VERSION

    r = run(installed, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "gasguard " + VERSION


def test_replay_of_a_shipped_scenario_by_name(installed):
    r = run(installed, "replay", "kitchen_leak", "--stop-after-alarm", "ch4")
    assert r.returncode == 0, r.stderr
    events = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert any(e.get("event") == "alarm" or e.get("kind") == "alarm" or "alarm" in json.dumps(e)
               for e in events), r.stdout[-1500:]


def test_virtual_device_and_diag_in_chinese(installed):
    env = dict(PIP_ENV, PATH=str(installed["bin"]) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.Popen([str(installed["bin"] / "gasguard"), "sim", "--serial", "pty"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=installed["cwd"], env=env)
    try:
        port = sim_serial_port(p, 30)
        assert port, p.stderr.read() if p.poll() is not None else "no serial: line"
        r = run(installed, "diag", "--port", port, "status", "--lang", "zh")
        assert r.returncode == 0, r.stderr
        assert "探测器" in r.stdout or "状态" in r.stdout, r.stdout
        r = run(installed, "diag", "--port", port, "status", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["board"] == "sim-detector"
    finally:
        p.terminate()
        p.wait(15)
