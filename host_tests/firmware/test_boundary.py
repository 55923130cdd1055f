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


# Modules whose code runs in every loop turn (the alarm path and what it hands events to):
# under a full heap every exception there arrives as a MemoryError, and an
# `except (A, B):` clause builds its tuple at run time, an allocation that fails, so the
# MemoryError leaves the handler (and the loop turn). Catch MemoryError alone first, or
# `except Exception`, there (docs/heap-budget.md, "The alarm path under a full heap").
LOOP_MODULES = ("detector", "methane_alarm", "co_alarm", "outputs", "button", "sensing",
                "device_base", "eventlog", "service", "service_proto", "detector_link",
                "link_core", "interlock_frame", "interlock_keys", "hmac256", "wired_interlock",
                "valve", "valve_link", "valve_app", "app", "reporter", "mqtt", "outbox",
                "record", "store", "lazy", "ticks")
# functions in them that run only at boot (a MemoryError there is the boot's fallback's)
BOOT_FUNCTIONS = {("device_base", "run_forever"), ("valve", "__init__"),
                  ("interlock_keys", "load_pairing"), ("interlock_keys", "counter_start")}


def tuple_excepts(path):
    tree = ast.parse(path.read_text(), str(path))
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Tuple):
                yield fn.name, node.lineno


@pytest.mark.parametrize("name", LOOP_MODULES)
def test_loop_code_catches_no_tuple_of_exceptions(name):
    path = ROOT / "firmware" / "gasguard" / (name + ".py")
    bad = sorted({(fn, ln) for fn, ln in tuple_excepts(path) if (name, fn) not in BOOT_FUNCTIONS})
    assert not bad, "gasguard/%s.py: except (A, B) at %s (fails under a full heap)" % (name, bad)


def test_the_tuple_scan_finds_one(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    try:\n        g()\n    except (OSError, MemoryError):\n        pass\n")
    assert list(tuple_excepts(p)) == [("f", 4)]
