"""gasguard.lazy.prime() and the generated gasguard/names.mpy (gasguard_tools.prime,
docs/heap-budget.md "Interned names"): the module holds every name of the modules a device
loads at boot, the list of those modules is what a day on the ESP32-like interpreter
really loads, and priming never stops a boot."""

import ast
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import need_esp32
from fixtures.detector import DetectorBoard
from gasguard import lazy
from gasguard_tools import bench_heap, prime

MPY = re.compile(r"(?:^|/)gasguard/(\w+)\.mpy$")


@pytest.fixture(scope="module")
def tree():
    need_esp32()
    tmp = tempfile.mkdtemp(prefix="gasguard-heap-mpy-")
    yield bench_heap.compile_tree(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


def _deploy(tree, kind, tier):
    return Path(bench_heap.device_path(tree, kind, tier)[0]) / "gasguard"


def test_only_the_detectors_are_primed(tree):
    assert sorted(prime.PRIME) == sorted(d for d in bench_heap.DEVICES if d[0] == "detector")
    assert not (_deploy(tree, "valve", "M") / "names.mpy").exists()


@pytest.mark.parametrize("kind,tier", sorted(prime.PRIME))
def test_names_module_holds_every_name_of_the_boot_modules(tree, kind, tier):
    d = _deploy(tree, kind, tier)
    want = set(prime.names(d, kind, tier))
    held = set(prime.mpy_names(d / "names.mpy"))
    # the names that are not identifiers are interned by its module code, from its strings
    tree_ = ast.parse(prime.source(sorted(want)))
    strings = {n.value for n in ast.walk(tree_) if isinstance(n, ast.For)
               for n in ast.walk(n.iter) if isinstance(n, ast.Constant)}
    assert want <= held | strings
    assert held - want <= {"gasguard.names", "self"}  # nothing else of its own
    # and a name of the console's modules is not primed unless a boot module has it too
    console = set()
    for m in prime.CONSOLE[kind]:
        console |= set(prime.mpy_names(d / (m + ".mpy")))
    assert not (console - want) & held


@pytest.mark.parametrize("kind,tier", sorted(prime.PRIME))
def test_prime_list_is_what_the_day_loads(tree, kind, tier):
    """PRIME is the modules a boot loads, CONSOLE those the console session adds: exactly
    the modules whose __file__ a day on the ESP32-like interpreter interned (stale in either
    direction fails)."""
    exe = need_esp32()
    path = bench_heap.device_path(tree, kind, tier)
    store = tempfile.mkdtemp(prefix="gasguard-names-")
    try:
        full = [str(Path(path[1]).parent / "firmware")] + path[1:]
        r = bench_heap._run(exe, full, 2 * 1024 * 1024, "provision", kind, tier, store)
        assert r.returncode == 0, r.stdout + r.stderr
        r = bench_heap._run(exe, path, 2 * 1024 * 1024, "names", kind, tier, store)
        assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    finally:
        shutil.rmtree(store, ignore_errors=True)
    loaded = set()
    for line in r.stdout.splitlines():
        m = MPY.search(line[2:-1]) if line.startswith("Q(") else None
        if m:
            loaded.add(m.group(1))
    want = (set(prime.PRIME[kind, tier]) - {"flash_config"}) | set(prime.CONSOLE[kind])
    got = loaded - {"names"} - set(bench_heap.HARNESS_MODULES)
    assert got == want, ("loaded, not listed: %s; listed, not loaded: %s"
                         % (sorted(got - want), sorted(want - got)))
    assert "names" in loaded  # the day primed


@pytest.mark.parametrize("kind,tier", sorted(prime.PRIME))
def test_prime_opens_the_name_pools_before_the_app_is_built(tree, kind, tier):
    """With the names primed, no name pool opens while the device is assembled: the pools
    at the end of the day are the pools right after prime() (the harness's checkpoints
    carry the interpreter's qstr figures)."""
    exe = need_esp32()
    points, end, err = bench_heap.run_day(exe, bench_heap.device_path(tree, kind, tier), kind,
                                          tier, 2 * 1024 * 1024)
    assert end is not None, err
    pools = {p["at"]: p["qstr"]["n_pool"] for p in points}
    assert pools["boot_app"] == pools["quiet"], pools


def test_prime_without_names_module_does_nothing():
    sys.modules.pop("gasguard.names", None)
    lazy.prime()  # firmware/ from source: there is no gasguard/names.py
    assert "gasguard.names" not in sys.modules
    assert lazy._PRIMED == []


def test_prime_that_runs_out_of_memory_is_counted_and_boot_goes_on(tmp_path, monkeypatch):
    import gasguard
    from gasguard.app import DetectorApp
    from simboard import MemStore

    (tmp_path / "names.py").write_text("raise MemoryError('memory allocation failed')\n")
    monkeypatch.setattr(gasguard, "__path__", list(gasguard.__path__) + [str(tmp_path)])
    lazy.prime()  # does not raise
    assert "gasguard.names" not in sys.modules
    assert len(lazy._PRIMED) == 1 and isinstance(lazy._PRIMED[0], MemoryError)
    board = DetectorBoard()
    app = DetectorApp(board, MemStore(), {}, button_at_boot=False)
    assert app.error_count == 1
    assert any(e.startswith("prime: MemoryError") for e in app.errors), app.errors
    assert lazy._PRIMED == []  # counted once
    for _ in range(5):  # and the device runs
        app.poll()
        board.clock.advance(1000)
    assert json.dumps(app.status())


def test_which_installs_are_primed():
    """Measured choices (gasguard_tools.prime): the detectors, except a low tier without
    Wi-Fi; never the valve. heap_day.py (low/local) and `gasguard flash` follow primed()."""
    assert prime.primed("detector", "low") and prime.primed("detector", "mid")
    assert prime.primed("detector", "mid", net=False) and prime.primed("detector", "high", False)
    assert not prime.primed("detector", "low", net=False)
    assert not prime.primed("valve", "M") and not prime.primed("valve", "M", False)
    src = (Path(__file__).resolve().parents[2] / "boards" / "sim" / "heap_day.py").read_text()
    assert 'if not (self.local and tier == "low"):\n            lazy.prime()' in src
