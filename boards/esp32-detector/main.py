"""The detector controller: assemble the device and run the alarm loop forever.

Same assembly as the simulator (gasguard.devices); only the board objects differ.
Maintenance mode (entered with the service command MAINT, used by `gasguard flash`)
skips the app once so the REPL is free for mpremote.

Config: the one written with the service command CFG (store record config.rec) wins;
otherwise config.json in the flash root (installed by `gasguard flash --config`).
"""

import micropython
import socket

from esp32_hal import Board
from pins import PINS

from gasguard import VERSION, devices, lazy
from gasguard.app import DetectorApp, boot_mode
from gasguard.flash_config import flash_config
from gasguard.store import FileStore

store = FileStore("/data")

if boot_mode(store) == "maintenance":
    print("gasguard %s: maintenance mode, application not started (REPL free)" % VERSION)
else:
    # A stray Ctrl-C on the shared USB line must never stop an installed detector.
    micropython.kbd_intr(-1)
    board = Board(PINS)
    boot_cfg = flash_config()  # config.json in the flash root (cwd at boot)
    # Never raises for what the flash holds: a stored config it cannot use is refused
    # (fault config_invalid) and the detector runs on the boot config or its defaults.
    app = DetectorApp(board, store, boot_cfg, board_name="esp32-detector")
    cfg = app.config

    def link():
        from esp32_radio import Radio

        devices.attach_interlock(app, Radio(cfg["link"].get("channel", 1)), store, cfg)

    def platform():
        from esp32_net import WiFi

        app.pollers.append(WiFi(cfg["net"].get("ssid"), cfg["net"].get("password"), "gasguard-det"))
        try:
            ident = app.identity.identity_info(VERSION) if app.identity is not None else None
        except ValueError:  # IdentityError: not provisioned; the detector still alarms
            ident = None
        if ident is not None:
            rep = devices.attach_reporter(app, board.clock, store, ident, cfg, socket,
                                          app.identity.device_key())
            devices.attach_active_id(app, rep, app.identity, cfg)

    # an optional part that fails (keys, identity, radio, RS-485) is refused; the alarm
    # loop runs
    if cfg.get("link") is not None:
        app.attach("link", link)
    if cfg.get("net") and cfg.get("report"):
        app.attach("platform", platform)
    if cfg.get("modbus") and "rs485" in PINS:
        app.attach("modbus", lambda: devices.attach_modbus(app, board.rs485, board.clock, cfg))
    lazy.after_boot()  # boot-only code out of the heap before the loop (docs/heap-budget.md)
    app.run_forever(10, watchdog=board.watchdog(8000))
