"""The valve controller device: ValveController + button + event log + service console.

The valve's counterpart of DetectorApp (gasguard.app), built the same way so the same
host tools work on both (docs/service-protocol.md, "The valve facade"):

    app = ValveApp(board, store, config)       # boards/esp32-valve/main.py, virtual_valve.py
    app.run_forever(10, watchdog=wdt)

It owns: the boot count and reset cause, the persistent EventLog, the GGSP/1 Service on
board.console, the local button (short press = close, cause "manual", source "button";
hold 3 s = pairing window) and a pressure/flow history. Reporting and active
identification are attached from gasguard.devices exactly as for the detector.

It never opens the valve: the controller has no such path, and no facade method, button
gesture or service verb asks for anything but a close (ITEST = a local close, cause
"manual", source "service").
"""

from gasguard.button import Button
from gasguard.device_base import DeviceApp
from gasguard.valve import ValveController

# Top-level config sections of a valve; net/report/identity/modbus are read by
# gasguard.devices (the builder: platform, RS-485).
SECTIONS = ("valve", "service", "app", "board", "button", "net", "report", "identity", "modbus")
_TELEMETRY = ("valve", "cause", "link", "pressure_pa", "flow_m3h_x1000", "supply_mv", "faults")


class ValveApp(DeviceApp):
    KIND = "valve"
    SECTIONS = SECTIONS

    def __init__(self, board, store, config=None, rand=None, identity=None, rng=None,
                 reset_cause=None, button_at_boot=None, board_name="unknown", radio=None):
        DeviceApp.__init__(self, board, store, identity, reset_cause, button_at_boot,
                           board_name)
        self._last_close = _find_close(self.log.recent(32)) or _find_close(self.log.persisted())

        def build():
            if radio is not None:
                # main.py: a radio when the config (the one that validated) wants a link
                vcfg = self.config.get("valve") or {}
                link = vcfg.get("link") or {}
                board.radio = None
                if vcfg.get("tier", "M") != "L" or link:
                    board.radio = radio(link.get("channel", 1))
            self.controller = ValveController(board, self.config.get("valve"), store,
                                              self.emit, rand)
            btn = getattr(board, "button", None)
            self.button = None
            if btn is not None:
                self.button = Button(btn, self.clock, self._short_press, self._long_press,
                                     self.config.get("button"))

        # a stored config this firmware refuses (e.g. after an update) must not stop the
        # controller: the boot config, then the defaults
        self._boot(config, build, rng=rng)
        # lowest line pressure and highest flow per period
        self._hist_setup(("pressure_pa_min", "flow_m3h_x1000_max"), (0,))
        c = self.controller
        self._booted({"valve": c.state, "cause": c.cause} if c.cause is not None
                     else {"valve": c.state})  # closed since before this boot, and why
        # the controller's config check is done with (boot-only): out of the heap now, not
        # only at after_boot(), so it is not resident while reporting is attached, the boot's
        # highest point (boot_select and boot: DeviceApp._boot released them already; kept in
        # the call, as measured: docs/heap-budget.md, "Fragmentation: the valve collects
        # every 8 KB")
        from gasguard import lazy

        lazy.release("valve_cfg", "boot_select", "boot")

    def _on_event(self, ev):
        if ev.get("event") == "valve" and ev.get("state") == "closed":
            self._last_close = ev

    # ------------------------------------------------------------ the core
    def _core(self, now):
        c = self.controller
        c.poll()
        if self.button is not None:
            self.button.poll()
        self._sample(0, c.pressure_pa)
        self._sample(1, c.flow_m3h_x1000)

    def _short_press(self):
        self.controller.close("manual", "button")

    def _long_press(self):
        self.emit({"event": "button", "action": "pair"})
        # factory mode from the button (physical presence) may replace a working pairing
        self.controller.pair_button(self.service.factory_via == "button", self)

    def _tier(self):
        return self.controller.cfg["tier"], None

    # ------------------------------------------------------------ facade
    def close_valve(self, source="remote"):
        self.controller.close("manual", source)
        return {"closing": True}

    def telemetry(self):
        st = self.controller.status()
        d = {}
        for k in _TELEMETRY:
            if k in st:
                d[k] = st[k]
        return d

    def readings(self):
        c = self.controller
        return {"valve": c.status()["valve"], "pressure_pa": c.pressure_pa,
                "flow_m3h_x1000": c.flow_m3h_x1000, "supply_mv": c.supply_mv,
                "uptime_s": self._up_s}

    def last_close(self):
        """The newest close in the event log (found once at boot, then kept): why it closed."""
        return self._last_close

    def _status(self):
        # flat: the controller's status (valve, cause, link, pressure_pa, flow_m3h_x1000,
        # supply_mv, faults, counters[, link_detail]) plus the device's
        d = self.controller.status()
        d["last_close"] = self._last_close
        d["last_close_latency_ms"] = self.controller.last_close_latency_ms
        if self.button is not None:
            d["button"] = {"pressed": self.button.pressed, "shorts": self.button.shorts,
                           "holds": self.button.holds}
        d["faults"] = list(d.get("faults") or []) + self.faults_refused
        return d

    # actions ----------------------------------------------------------------
    def self_test(self):
        """SELFTEST, the downlink's and the bus's self-test: gasguard.valve_check, loaded
        for the call and released after it. Never energises the coil."""
        from gasguard import lazy, valve_check

        try:
            return valve_check.self_test(self)
        finally:
            valve_check = None
            lazy.release("valve_check")

    def interlock_test(self):
        """ITEST on a valve: close it locally (cause manual, source service)."""
        self.controller.close("manual", "service")
        return {"closing": True, "valve": self.controller.status()["valve"]}


def _find_close(evs):
    for ev in reversed(evs):
        if ev.get("event") == "valve" and ev.get("state") == "closed":
            return ev
    return None
