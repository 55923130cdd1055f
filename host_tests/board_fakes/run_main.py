"""micropython run_main.py STORE_DIR TURNS MAIN: a board's main.py with /data at STORE_DIR."""

import json
import os
import sys

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
                      "boot_count": st["boot_count"], "parts": sorted(st.get("parts", {}).keys()),
                      "pollers": [type(p).__name__ for p in app.pollers],
                      "radio": getattr(app.board, "radio", None) is not None,
                      "link": st.get("link"), "tier": st["tier"],
                      "interlocks": [i["type"] for i in st.get("interlocks", [])],
                      "profile": st.get("profile")}))
