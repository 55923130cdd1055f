"""Helpers for the replay-based alarm tests: run boards/sim/replay_detector.py on either
interpreter with a header and rows, parse the JSON events. "esp32" is the ESP32-like
interpreter (from .mpy; skips where there is none), at NOT_FIT_HEAP: the detector's
modules plus the replay harness fit 112 KB only for some code layouts (fragmentation
decides) until the detector fits (issue 10, heapfit)."""

import json

from conftest import NOT_FIT_HEAP, ROOT, run_cpython, run_esp32, run_micropython

RUNNER = ROOT / "boards" / "sim" / "replay_detector.py"
RUNTIMES = ("cpython", "micropython", "esp32")


def replay_bytes(runtime, header, rows, end_ms):
    lines = [json.dumps(header)] + [json.dumps(r) for r in rows] + [json.dumps({"end_ms": end_ms})]
    stdin = ("\n".join(lines) + "\n").encode()
    if runtime == "esp32":
        r = run_esp32([RUNNER], stdin=stdin, timeout=300, heap=NOT_FIT_HEAP)
    else:
        run = run_cpython if runtime == "cpython" else run_micropython
        r = run([RUNNER], stdin=stdin, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()[-2000:]
    return r.stdout


def replay(runtime, header, rows, end_ms):
    return [json.loads(x) for x in replay_bytes(runtime, header, rows, end_ms).decode().splitlines()]


def first(events, **match):
    for e in events:
        if all(e.get(k) == v for k, v in match.items()):
            return e
    return None
