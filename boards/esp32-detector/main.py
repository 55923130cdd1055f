"""The detector controller: assemble the device and run the alarm loop forever.

Same assembly as the simulator (gasguard.devices); only the board objects differ.
Maintenance mode (entered with the service command MAINT, used by `gasguard flash`)
skips the app once so the REPL is free for mpremote.
"""

import micropython
import socket

from esp32_hal import Board
from pins import PINS

from gasguard import VERSION, devices
from gasguard.app import DetectorApp, boot_mode
from gasguard.store import FileStore

store = FileStore("/data")

if boot_mode(store) == "maintenance":
    print("gasguard %s: maintenance mode, application not started (REPL free)" % VERSION)
else:
    # A stray Ctrl-C on the shared USB line must never stop an installed detector.
    micropython.kbd_intr(-1)
    board = Board(PINS)
    app = DetectorApp(board, store, None, board_name="esp32-detector")
    cfg = app.config
    if cfg.get("link") is not None:
        from esp32_radio import Radio

        devices.attach_interlock(app, Radio(cfg["link"].get("channel", 1)), store, cfg)
    net = cfg.get("net")
    if net and cfg.get("report"):
        from esp32_net import WiFi

        wifi = WiFi(net.get("ssid"), net.get("password"), "gasguard-det")
        app.pollers.append(wifi)
        rec = app.identity.load() if app.identity is not None else None
        if rec is not None:
            ident = {"device_id": rec["id"], "fw": VERSION, "tier": rec.get("tier"),
                     "kind": "detector"}
            devices.attach_reporter(app, board.clock, store, ident, cfg, socket,
                                    app.identity.device_key())
    app.run_forever(10, watchdog=board.watchdog(8000))
