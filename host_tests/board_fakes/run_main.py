"""micropython run_main.py STORE_DIR TURNS MAIN: a board's main.py with /data at STORE_DIR.

Also runs on CPython (python3 run_main.py ...): the few MicroPython names main.py uses
(micropython.kbd_intr/const, time.ticks_*/sleep_ms, gc.threshold) are supplied, nothing else
changes."""

import json
import os
import sys
import time

try:
    import micropython  # noqa: F401
except ImportError:  # CPython
    import types

    _mp = types.ModuleType("micropython")
    _mp.const = lambda x: x
    _mp.kbd_intr = lambda c: None
    sys.modules["micropython"] = _mp
    _P = 1 << 30
    time.ticks_ms = lambda: int(time.monotonic() * 1000) % _P
    time.ticks_add = lambda t, d: (t + d) % _P
    time.ticks_diff = lambda a, b: ((a - b + _P // 2) % _P) - _P // 2
    time.sleep_ms = lambda ms: time.sleep(ms / 1000)
    import gc

    gc.threshold = lambda n=None: None  # MicroPython's collection threshold: nothing here

import esp32_hal
import gasguard.store

root = sys.argv[1]
esp32_hal.LIMIT[0] = int(sys.argv[2]) if len(sys.argv) > 2 else 300
_FileStore = gasguard.store.FileStore
gasguard.store.FileStore = lambda path: _FileStore(root + path)
with open(sys.argv[3]) as f:
    src = f.read()
os.chdir(root)  # the flash root, as on the board at boot
g = {"__name__": "__main__"}
try:
    exec(src, g)
except SystemExit as e:
    print("stopped: %s" % e)
app = g.get("app")
if app is not None:
    st = app.status()
    print(json.dumps({"kind": st["kind"], "board": app.board_name, "valve": st.get("valve"),
                      "boot_count": st["boot_count"], "errors": st.get("last_errors"), "parts": sorted(st.get("parts", {}).keys()),
                      "pollers": [type(p).__name__ for p in app.pollers],
                      "radio": getattr(app.board, "radio", None) is not None,
                      "link": st.get("link"), "tier": st["tier"],
                      "interlocks": [i["type"] for i in st.get("interlocks", [])],
                      "profile": st.get("profile"), "feeds": esp32_hal.FEEDS[0],
                      "faults": (st.get("detector") or st).get("faults"),
                      "refused": st.get("refused"),
                      "fault_events": [e["code"] for e in app.log.recent(32)
                                       if e.get("event") == "fault" and e.get("state") == "on"],
                      "readings": st.get("readings")}))
