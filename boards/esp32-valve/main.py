"""The valve controller: assemble the device and run its loop forever.

Same assembly as the simulator (gasguard.valve_app / gasguard.devices); only the board
objects differ. Everything the device does (trip coil, position switch, why it closed,
the button: short press = local close, hold 3 s = pairing window; the service console,
event log, boot count) is firmware logic in ValveApp, so `gasguard diag` works on a
valve exactly as on a detector. Maintenance mode (service command MAINT, used by
`gasguard flash`) skips the app once so the REPL is free for mpremote.

Config: the one written with the service command CFG (store record config.rec) wins;
otherwise config.json in the flash root (installed by `gasguard flash --config`).
"""

import micropython
import socket

from esp32_hal import Board
from pins import PINS

from gasguard import VERSION, devices, lazy
from gasguard.store import FileStore
from gasguard.flash_config import flash_config
from gasguard.valve_app import ValveApp, boot_mode


def radio(channel):
    from esp32_radio import Radio

    return Radio(channel)


store = FileStore("/data")

if boot_mode(store) == "maintenance":
    print("gasguard %s: maintenance mode, application not started (REPL free)" % VERSION)
else:
    # A stray Ctrl-C on the shared USB line must never stop an installed valve controller.
    micropython.kbd_intr(-1)
    board = Board(PINS)
    boot_cfg = flash_config()  # config.json in the flash root (cwd at boot)
    # Never raises for what the flash holds: a stored config it cannot use is refused
    # (fault config_invalid) and the valve runs on the boot config or its defaults; the
    # radio comes up when the config it runs on wants a link.
    app = ValveApp(board, store, boot_cfg, board_name="esp32-valve", radio=radio)
    cfg = app.config

    def platform():
        from esp32_net import WiFi

        app.pollers.append(WiFi(cfg["net"].get("ssid"), cfg["net"].get("password"), "gasguard-valve"))
        try:
            ident = app.identity.identity_info(VERSION) if app.identity is not None else None
        except ValueError:  # IdentityError: not provisioned; the valve still protects
            ident = None
        if ident is not None:
            rep = devices.attach_reporter(app, board.clock, store, ident, cfg, socket,
                                          app.identity.device_key())
            devices.attach_active_id(app, rep, app.identity, cfg)

    # an optional part that fails (identity, RS-485) is refused; the valve loop runs
    if cfg.get("net") and cfg.get("report"):
        app.attach("platform", platform)
    if cfg.get("modbus") and "rs485" in PINS:
        app.attach("modbus", lambda: devices.attach_modbus(app, board.rs485, board.clock, cfg))
    lazy.after_boot()  # boot-only code out of the heap before the loop (docs/heap-budget.md)
    app.run_forever(10, watchdog=board.watchdog(8000))
