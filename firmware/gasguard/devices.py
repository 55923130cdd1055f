"""Assembling whole devices from their parts: the one place the areas meet.

The board's main.py, the simulator and the integration tests all build devices here,
so what runs in `make sim` is what runs on the ESP32:

    app = DetectorApp(board, store, config)               # alarm path, console, log
    attach_interlock(app, radio, store, config)           # wireless interlock sink
    attach_reporter(app, clock, store, ident, config, socket_module, key)
    valve = ValveApp(board, store, config)                # gasguard.valve_app (re-exported here)
    attach_reporter(valve, ...)
    attach_active_id(app, reporter, IdentityStore(store), config)   # mid/high tiers

Everything attached is a poller/sink of the app: nothing here blocks, and an error in a
reporter or link is counted by the app and never stops the alarm path.
"""

from gasguard import VERSION


def attach_interlock(app, radio, store, config, rand=None):
    """Add the ESP-NOW interlock (detector side) as an interlock sink of the detector."""
    from gasguard.detector_link import DetectorLink, PairButton

    link = DetectorLink(radio, app.clock, store, config.get("link"), app.emit, rand)
    app.detector.interlocks.append(link)
    app.sinks.append(PairButton(link, getattr(app, "service", None)))
    return link


class CommandHandler:
    """What downlink commands may do to a detector or valve. There is no open."""

    def __init__(self, app):
        self.app = app

    def hush(self):
        h = getattr(self.app, "hush", None)
        if h is None:
            raise ValueError("this device has no buzzer to hush")
        return h()

    def self_test(self):
        st = getattr(self.app, "self_test", None)
        if st is None:
            raise ValueError("this device has no self-test")
        return st()

    def close_valve(self):
        cv = getattr(self.app, "close_valve", None)
        if cv is not None:
            return cv("remote")
        sinks = getattr(self.app.detector, "interlocks", None) or []
        if not sinks:
            raise ValueError("no interlock is configured on this detector")
        for s in sinks:
            s.close("remote")
        return {"closing": len(sinks)}


class TelemetryFeeder:
    """Hands the app's readings to the reporter whenever the reporter says it is due."""

    name = None

    def __init__(self, app, reporter):
        self.app = app
        self.reporter = reporter

    def poll(self):
        if self.reporter.telemetry_due():
            fn = getattr(self.app, "telemetry", None)
            self.reporter.telemetry(fn() if fn is not None else detector_telemetry(self.app))


def attach_reporter(app, clock, store, ident, config, socket_module, key=None, rand=None):
    """Connect an app to the platform: every stamped event goes to the outbox (QoS 1),
    readings to the telemetry ring (QoS 0), downlink commands to CommandHandler."""
    from gasguard.reporter import Reporter

    rep = Reporter(clock, store, ident, config.get("report"), socket_module,
                   handler=CommandHandler(app), key=key, rand=rand)
    app.sinks.append(rep)
    app.pollers.append(rep)
    app.pollers.append(TelemetryFeeder(app, rep))
    return rep


def _urandom(n):
    import os

    return os.urandom(n)


def attach_active_id(app, rep, ids, config, status_fn=None, rng=None):
    """Mid/high tiers: the active identifier (registration, heartbeat, remote read/update)
    through the reporter. A missing, unlocked or low-tier identity gives None: the device
    still alarms and closes valves, it only does not register.

    The identifier is parked (gasguard.lazy): its code and the identity store's are in the
    heap only while a registration, a heartbeat or a downlink is handled."""
    from gasguard.lazy import parked_active_id

    try:
        act = parked_active_id((app.clock, ids, config.get("identity", {}), rep.identity_send,
                                VERSION, rng or _urandom, status_fn))
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
    regs = Regs(app, CommandHandler(app), vendor, product, rec.get("id"), rec.get("model"))
    uart, de = open_line(cfg)
    slave = RtuSlave(uart, de, clock, cfg, regs)
    app.pollers.append(slave)
    if hasattr(regs, "event"):
        app.sinks.append(regs)
    return slave


def detector_telemetry(app):
    """The telemetry body of a detector: integer readings and states."""
    st = app.detector.status()
    d = {"ready": st.get("ready"), "relay": st.get("relay"), "hushed": st.get("hushed")}
    for gas in ("ch4", "co"):
        ch = st.get(gas)
        if ch is not None:
            d[gas + "_ppm_x10"] = ch.get("ppm_x10")
            d[gas + "_alarm"] = ch.get("alarm")
            d[gas + "_fault"] = ch.get("fault")
    d["faults"] = st.get("faults")
    return d


def __getattr__(name):
    """`from gasguard.devices import ValveApp` keeps working; the valve device lives in
    gasguard.valve_app and is loaded only when asked for (a detector never pays its heap)."""
    if name == "ValveApp":
        from gasguard.valve_app import ValveApp

        return ValveApp
    raise AttributeError(name)
