"""Run a board's real main.py on the MicroPython unix port with the ESP32 board doubles in
host_tests/board_fakes and /data in a temp folder; the fake watchdog ends the loop.

Each whole-device test runs on the pip MicroPython (from source) and on the ESP32-like one
(the app from .mpy at the ESP32's 112 KB heap, main.py from source as deployed): the
`interp` fixture of a test module, built with interp_fixture(), chooses."""

import json

import pytest

from conftest import NOT_FIT_YET, ROOT, run_micropython

FAKES = ROOT / "host_tests" / "board_fakes"
_INTERP = ["micropython"]


def interp_fixture(not_fitting=()):
    """An autouse fixture running each test of a module on both MicroPythons. The ESP32-like
    run of the tests named in not_fitting ("all": every test) is a strict xfail: that
    device does not fit 112 KB yet, and the mark must go the moment it does."""

    @pytest.fixture(autouse=True, params=["micropython", "esp32"], ids=["pip", "esp32-like"])
    def interp(request):
        name = request.node.originalname
        if request.param == "esp32" and (not_fitting == "all" or name in not_fitting):
            request.node.add_marker(pytest.mark.xfail(strict=True, reason=NOT_FIT_YET))
        _INTERP[0] = request.param
        yield request.param
        _INTERP[0] = "micropython"

    return interp


def run_main(main, tmp_path, turns=300):
    r = run_micropython([FAKES / "run_main.py", str(tmp_path), str(turns), str(main)],
                        extra_path=[FAKES], timeout=60, interp=_INTERP[0])
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    return out


def last_json(out):
    """The status line run_main.py prints after the loop."""
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
