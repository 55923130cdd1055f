"""The hardware boundary and the MicroPython dialect, checked statically.

Logic in firmware/ may not import hardware modules (they belong in boards/), nor the
CPython-only modules that do not exist on the device. The runtime test on the real
interpreter catches the rest; this one names the file and line.
"""

import ast

import pytest

from conftest import ROOT

HARDWARE = {"machine", "network", "espnow", "esp32", "esp", "bluetooth", "neopixel", "aioespnow"}
CPYTHON_ONLY = {
    "dataclasses", "enum", "typing", "abc", "functools", "itertools", "logging", "datetime",
    "hmac", "base64", "pathlib", "subprocess", "threading", "zlib", "secrets", "contextlib",
}

FILES = sorted((ROOT / "firmware").rglob("*.py"))
SIM_FILES = sorted((ROOT / "boards" / "sim").rglob("*.py"))


def imports(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_logic_imports_no_hardware_or_cpython_only_module(path):
    bad = [(ln, m) for ln, m in imports(path) if m in HARDWARE | CPYTHON_ONLY]
    assert not bad, "%s imports %s" % (path.relative_to(ROOT), bad)


@pytest.mark.parametrize("path", SIM_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_simulated_board_is_micropython_compatible(path):
    bad = [(ln, m) for ln, m in imports(path) if m in CPYTHON_ONLY]
    assert not bad, "%s imports %s" % (path.relative_to(ROOT), bad)


def test_scan_catches_a_dataclass(tmp_path):
    """The scan itself must be able to fail."""
    p = tmp_path / "bad.py"
    p.write_text("from dataclasses import dataclass\nimport machine\n")
    assert {m for _, m in imports(p)} == {"dataclasses", "machine"}
