"""Building whole devices: the one place the parts meet, boot-only (released before the
loop, gasguard.lazy.BOOT_ONLY). The boards' main.py, the simulator and the tests build
devices here, so what runs in `make sim` is what runs on the ESP32:

    app = board_main("detector", "esp32-detector", esp32_hal, PINS)   # a board's main.py
    app = build("detector", board, store, config, "sim", radio, wifi, socket, rs485)
    app = build("valve", board, store, config, ...)

build() makes the device app (gasguard.app.DetectorApp or gasguard.valve_app.ValveApp:
the device base around the device's core) on the first config that works, then the
optional parts the config asks for: the ESP-NOW interlock (detector; the valve's link is
its controller's), Wi-Fi + platform reporting + active identifier, the RS-485 Modbus
slave. A part that fails is refused (a fault in status, an event); the device runs on
without it. The attach_* functions are the parts one by one (tests, the simulator).

Everything attached is a poller/sink of the app: nothing blocks, and an error in a
reporter or link is counted by the app and never stops the alarm path.
"""

from gasguard import VERSION


def build(kind, board, store, config, board_name="unknown", radio=None, wifi=None,
          socket_module=None, rs485=None, rand=None, **kw):
    """kind "detector" or "valve"; radio(channel) -> the ESP-NOW radio; wifi(ssid,
    password) -> the Wi-Fi poller; socket_module: the transport (none: no reporting);
    rs485(cfg) -> (uart, de) for the Modbus slave; rand: the link's randomness (the
    simulator's seeded one; None: os.urandom); kw: the app's own arguments."""
    if kind == "valve":
        from gasguard.valve_app import ValveApp

        app = ValveApp(board, store, config, rand, board_name=board_name, radio=radio, **kw)
    else:
        from gasguard.app import DetectorApp

        app = DetectorApp(board, store, config, board_name=board_name, **kw)
    cfg = app.config
    if kind != "valve" and radio is not None and cfg.get("link") is not None:
        app.attach("link", lambda: attach_interlock(
            app, radio(cfg["link"].get("channel", 1)), store, cfg, rand))
    if socket_module is not None and cfg.get("net") and cfg.get("report"):
        app.attach("platform", lambda: _platform(app, wifi, socket_module, cfg))
    if rs485 is not None and cfg.get("modbus"):
        app.attach("modbus", lambda: attach_modbus(app, rs485, board.clock, cfg))
    return app


def _platform(app, wifi, socket_module, cfg):
    if wifi is not None:
        app.pollers.append(wifi(cfg["net"].get("ssid"), cfg["net"].get("password")))
    ids = app.identity
    try:
        ident = ids.identity_info(VERSION) if ids is not None else None
    except ValueError:  # IdentityError: not provisioned; the device still protects
        ident = None
    if ident is not None:
        rep = attach_reporter(app, app.clock, app.store, ident, cfg, socket_module,
                              ids.device_key())
        attach_active_id(app, rep, ids, cfg)


def board_main(kind, board_name, hal, pins):
    """What a board's main.py does before its loop; None in maintenance mode (service
    command MAINT, used by `gasguard flash`: the app is skipped once, the REPL is free).
    hal: the board module (Board(pins), radio(channel), wifi(ssid, password, hostname)).
    Config: the one written with CFG (config.rec) wins, else config.json in the flash
    root (`gasguard flash --config`), else the defaults: a config the firmware cannot
    use is refused (fault config_invalid) and never stops the device."""
    from gasguard.boot import boot_mode
    from gasguard.flash_config import flash_config
    from gasguard.store import FileStore

    store = FileStore("/data")
    if boot_mode(store) == "maintenance":
        print("gasguard %s: maintenance mode, application not started (REPL free)" % VERSION)
        return None
    import micropython
    import socket

    micropython.kbd_intr(-1)  # a stray Ctrl-C on the shared USB line must never stop it
    board = hal.Board(pins)
    host = "gasguard-det" if kind == "detector" else "gasguard-valve"
    return build(kind, board, store, flash_config(), board_name, hal.radio,
                 lambda s, p: hal.wifi(s, p, host), socket,
                 board.rs485 if "rs485" in pins else None)


def attach_interlock(app, radio, store, config, rand=None):
    """Add the ESP-NOW interlock (detector side) as an interlock sink of the detector."""
    from gasguard.detector_link import DetectorLink

    link = DetectorLink(radio, app.clock, store, config.get("link"), app.emit, rand)
    app.detector.interlocks.append(link)
    link.service = getattr(app, "service", None)
    app.sinks.append(link)  # its event(): the long press opens the pairing window
    return link


def attach_reporter(app, clock, store, ident, config, socket_module, key=None, rand=None):
    """Connect an app to the platform: every stamped event goes to the outbox (QoS 1),
    readings to the telemetry ring (QoS 0), downlink commands to CommandHandler."""
    from gasguard.device_base import TelemetryFeeder
    from gasguard.reporter import Reporter

    rep = Reporter(clock, store, ident, config.get("report"), socket_module,
                   handler=app, key=key, rand=rand)
    app.sinks.append(rep)
    app.pollers.append(rep)
    app.pollers.append(TelemetryFeeder(app, rep))
    return rep


def attach_active_id(app, rep, ids, config, status_fn=None, rng=None):
    """Mid/high tiers: the active identifier (registration, heartbeat, remote read/update)
    through the reporter. A missing, unlocked or low-tier identity gives None: the device
    still alarms and closes valves, it only does not register.

    The config's identity section is checked by the check CFG runs
    (report_cfg.identity_config); one it refuses (written by another firmware version) is
    refused visibly (fault identity_invalid, the reason in status "refused", a fault event)
    and the identifier runs on its defaults: the device still registers.

    The identifier is parked (gasguard.lazy): its code and the identity store's are in the
    heap only while a registration, a heartbeat or a downlink is handled."""
    import os

    from gasguard.lazy import parked_active_id, release
    from gasguard.report_cfg import identity_config

    # (nothing of this module may be kept by what it builds: it is released after boot)
    try:
        section = identity_config(config.get("identity", {}))
    except ValueError as e:  # ConfigError: the section's timing only; never a silent stop
        app.refuse("identity_invalid", "config identity", e)
        section = identity_config({})
    # one part at a time (the boot's peak, docs/heap-budget.md): the checks out of the heap,
    # then the identity store's reads (parked: loaded and released), then the identifier's
    # code, built on what they gave
    identity_config = None
    release("report_cfg", "validate")
    try:
        read = (ids.active(), ids.platform())
        act = parked_active_id((app.clock, ids, section, rep.identity_send,
                                VERSION, rng or os.urandom, status_fn, read))
        read = None
    except ValueError:  # IdentityError: not provisioned, not locked, tier L
        return None
    except ImportError:  # a deploy set without it (tier L): docs/heap-budget.md
        return None
    rep.attach_identity(act.on_message)
    app.pollers.append(act)
    return act


def attach_modbus(app, open_line, clock, config, vendor="gasguard"):
    """The RS-485 Modbus RTU slave (docs/modbus.md) as a poller of the app, when the
    config has an enabled `modbus` section; else None and nothing is loaded.
    open_line(checked_cfg) -> (uart, de) opens the line (board.rs485 on the ESP32);
    clock gives ticks_us (the time module). Raises ConfigError on a bad section (the
    same check CFG runs before it stores one)."""
    section = config.get("modbus")
    if not section or section.get("enabled") is False:
        return None
    from gasguard.modbus_rtu import RtuSlave, modbus_config

    cfg = modbus_config(section)
    rec = None
    ids = getattr(app, "identity", None)
    if ids is not None:
        try:
            rec = ids.load()
        except ValueError:
            rec = None  # corrupt identity: the bus still works, without an identifier
    rec = rec or {}
    if app.KIND == "valve":
        from gasguard.modbus_valve import ValveRegisters as Regs

        product = "gasguard valve controller"
    else:
        from gasguard.modbus_det import DetectorRegisters as Regs

        product = "gasguard gas detector"
    regs = Regs(app, app, vendor, product, rec.get("id"), rec.get("model"))
    uart, de = open_line(cfg)
    slave = RtuSlave(uart, de, clock, cfg, regs)
    app.pollers.append(slave)
    if hasattr(regs, "event"):
        app.sinks.append(regs)
    return slave
