"""Run a board's real main.py on the MicroPython unix port with the ESP32 board doubles in
host_tests/board_fakes and /data in a temp folder; the fake watchdog ends the loop."""

import json

from conftest import ROOT, run_micropython

FAKES = ROOT / "host_tests" / "board_fakes"


def run_main(main, tmp_path, turns=300):
    r = run_micropython([FAKES / "run_main.py", str(tmp_path), str(turns), str(main)],
                        extra_path=[FAKES], timeout=60)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    return out


def last_json(out):
    """The status line run_main.py prints after the loop."""
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
