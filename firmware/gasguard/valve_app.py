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

import json

from gasguard import VERSION, record
from gasguard.button import Button, button_config
from gasguard.boot import (  # noqa: F401  (main.py imports these from here)
    BOOT_NAME, CONFIG_NAME, KEY_NAME, MAINT_NAME, NullConsole, boot_mode, bump_boot_count,
    copy, load_config,
)
from gasguard.device_base import DeviceApp
from gasguard.eventlog import EventLog
from gasguard.service import PROTOCOL, Service
from gasguard.valve import ValveController

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_HIST_POINTS = const(120)
_NONE = const(-1)
# Top-level config sections of a valve; net/report/identity are read by main.py and
# gasguard.devices (attach_reporter, attach_active_id).
SECTIONS = ("valve", "service", "app", "board", "button", "net", "report", "identity", "modbus")

class ValveApp(DeviceApp):
    KIND = "valve"
    SECTIONS = SECTIONS

    def __init__(self, board, store, config=None, rand=None, identity=None, rng=None,
                 reset_cause=None, button_at_boot=None, board_name="unknown", radio=None):
        self.board = board
        self.clock = board.clock
        self.store = store
        self.board_name = board_name
        self.boot_count = bump_boot_count(store)
        if reset_cause is None:
            rc = getattr(board, "reset_cause", None)
            reset_cause = rc() if rc is not None else "unknown"
        self.reset_cause = reset_cause
        self._last = self.clock.ticks_ms()
        self._up_s = 0
        self._up_ms = 0
        self.sinks = []
        self.pollers = []
        self.errors = []
        self.error_count = 0
        self.log = EventLog(store, boot=self.boot_count)
        self._last_close = _find_close(self.log.recent(32)) or _find_close(self.log.persisted())
        self.refused = []  # what boot could not use (reasons), and its fault codes:
        self.faults_refused = []
        if identity is None:
            from gasguard.lazy import ParkedIdentity  # loaded per use: docs/heap-budget.md

            identity = ParkedIdentity(store)
        self.identity = identity
        btn = getattr(board, "button", None)
        if button_at_boot is None:
            button_at_boot = bool(btn.value()) if btn is not None else False
        self.button_at_boot = button_at_boot
        self._pending = None
        self.on_reboot = getattr(board, "reboot", None)

        def build():
            # A stored config this firmware refuses (e.g. after an update) must not stop
            # the controller: DeviceApp._boot falls back to the boot config, then defaults.
            self._build(board, store, rand, btn, radio)
            console = getattr(board, "console", None) or NullConsole()
            self.service = Service(console, self, self.clock, self.config.get("service"),
                                   rng=rng, button_at_boot=button_at_boot)

        self._boot(config, build)
        from array import array

        self._p_min = array("i", [_NONE] * _HIST_POINTS)
        self._f_max = array("i", [_NONE] * _HIST_POINTS)
        self._p_cur = _NONE
        self._f_cur = _NONE
        self._hist_n = 0
        self._hist_t = self.clock.ticks_ms()
        ev = {"event": "boot", "reset_cause": self.reset_cause, "fw": VERSION,
              "factory": bool(button_at_boot), "valve": self.controller.state}
        if self.controller.cause is not None:
            ev["cause"] = self.controller.cause  # closed since before this boot, and why
        self.emit(ev)

    def _build(self, board, store, rand, btn, radio):
        if radio is not None:
            # main.py: a radio when the config (the one that validated) wants a link
            vcfg = self.config.get("valve") or {}
            link = vcfg.get("link") or {}
            board.radio = None
            if vcfg.get("tier", "M") != "L" or link:
                board.radio = radio(link.get("channel", 1))
        self.controller = ValveController(board, self.config.get("valve"), store, self.emit, rand)
        self.button = None
        if btn is not None:
            self.button = Button(btn, self.clock, self._short_press, self._long_press,
                                 self.config.get("button"))

    # ------------------------------------------------------------ event path

    def _on_event(self, ev):
        if ev.get("event") == "valve" and ev.get("state") == "closed":
            self._last_close = ev

    # ------------------------------------------------------------ main loop
    def poll_core(self):
        now = self.clock.ticks_ms()
        d = self.clock.ticks_diff(now, self._last)
        self._last = now
        if d > 0:
            self._up_ms += d
            if self._up_ms >= 1000:
                self._up_s += self._up_ms // 1000
                self._up_ms %= 1000
        self.controller.poll()
        if self.button is not None:
            self.button.poll()
        self._history(now)
        for p in self.pollers:
            try:
                p.poll()
            except Exception as e:
                self._note_error("poller", e)

    def _short_press(self):
        self.controller.close("manual", "button")

    def _long_press(self):
        self.emit({"event": "button", "action": "pair"})
        # factory mode from the button (physical presence) may replace a working pairing
        self.controller.pair_button(self.service.factory_via == "button")

    def _history(self, now):
        c = self.controller
        p = c.pressure_pa
        if p is not None and (self._p_cur == _NONE or p < self._p_cur):
            self._p_cur = p
        f = c.flow_m3h_x1000
        if f is not None and f > self._f_cur:
            self._f_cur = f
        if self.clock.ticks_diff(now, self._hist_t) >= self._hist_period_ms:
            self._hist_t = self.clock.ticks_add(self._hist_t, self._hist_period_ms)
            if self.clock.ticks_diff(now, self._hist_t) >= self._hist_period_ms:
                self._hist_t = now  # fell behind (long stall): resynchronise
            i = self._hist_n % _HIST_POINTS
            self._p_min[i] = self._p_cur
            self._f_max[i] = self._f_cur
            self._p_cur = _NONE
            self._f_cur = _NONE
            self._hist_n += 1

    # ------------------------------------------------------------ platform (devices.py)
    def close_valve(self, source="remote"):
        self.controller.close("manual", source)
        return {"closing": True}

    def telemetry(self):
        st = self.controller.status()
        d = {}
        for k in ("valve", "cause", "link", "pressure_pa", "flow_m3h_x1000", "supply_mv", "faults"):
            if k in st:
                d[k] = st[k]
        return d

    # ------------------------------------------------------------ device facade
    def info(self):
        return {"fw": VERSION, "proto": PROTOCOL, "kind": self.KIND,
                "tier": self.controller.cfg["tier"], "profile": None, "board": self.board_name}

    def readings(self):
        c = self.controller
        return {"valve": c.status()["valve"], "pressure_pa": c.pressure_pa,
                "flow_m3h_x1000": c.flow_m3h_x1000, "supply_mv": c.supply_mv,
                "uptime_s": self._up_s}

    def last_close(self):
        """The newest close in the event log (found once at boot, then kept): why it closed."""
        return self._last_close

    def status(self):
        info = self.info()
        rec = self._identity_record()
        fh, outbox, parts, last = self._status_parts()
        # flat: the controller's status (valve, cause, link, pressure_pa, flow_m3h_x1000,
        # supply_mv, faults, counters[, link_detail]) plus the device's
        d = self.controller.status()
        d["last_close"] = self.last_close()
        d["last_close_latency_ms"] = self.controller.last_close_latency_ms
        if self.button is not None:
            d["button"] = {"pressed": self.button.pressed, "shorts": self.button.shorts,
                           "holds": self.button.holds}
        d["id"] = (rec or {}).get("id")
        d["fw"] = info["fw"]
        d["kind"] = info["kind"]
        d["tier"] = info["tier"]
        d["profile"] = None
        d["uptime_s"] = self._up_s
        d["reset_cause"] = self.reset_cause
        d["boot_count"] = self.boot_count
        d["free_heap"] = fh() if fh is not None else None
        d["readings"] = self.readings()
        d["outbox_depth"] = outbox
        d["last_faults"] = last[-5:]
        d["last_errors"] = list(self.errors)
        d["refused"] = self.refused
        d["faults"] = list(d.get("faults") or []) + self.faults_refused
        d["log"] = {"seq": self.log.seq, "write_errors": self.log.write_errors}
        d["parts"] = parts
        return d

    def history(self):
        n = min(self._hist_n, _HIST_POINTS)
        first = self._hist_n - n
        return {"period_s": self._hist_period_ms // 1000, "points": n,
                "pressure_pa_min": [self._p_min[(first + i) % _HIST_POINTS] for i in range(n)],
                "flow_m3h_x1000_max": [self._f_max[(first + i) % _HIST_POINTS] for i in range(n)]}

    # actions ----------------------------------------------------------------
    def self_test(self):
        """Non-destructive: reads the switch, the sensors, the supply and (where the board
        can sense it) the trip-coil circuit. The coil is never energised (that would close
        the valve); use ITEST for a real close."""
        c = self.controller
        b = self.board
        cfg = c.cfg
        checks = {}
        failed = []
        raw_closed = b.switch.value() == cfg["switch_closed_level"]
        st = c.status()["valve"]
        checks["switch"] = "closed" if raw_closed else "open"
        if st in ("open", "closed") and (st == "closed") != raw_closed:
            checks["switch"] += " (differs from state %s)" % st
            failed.append("switch")
        if c.pressure_in is None:
            checks["pressure"] = "absent"
        else:
            uv = c.pressure_in.read_uv()
            ok = cfg["pressure_uv_min"] <= uv <= cfg["pressure_uv_max"]
            checks["pressure"] = "ok" if ok else "out_of_range (%d uV)" % uv
            if not ok:
                failed.append("pressure_sensor")
        if c.flow_in is None:
            checks["flow"] = "absent"
        else:
            checks["flow"] = "ok" if c.flow_m3h_x1000 is not None else "no reading"
        if c.supply_in is None:
            checks["supply"] = "absent"
        else:
            mv = (c.supply_in.read_uv() // 1000) * cfg["_s_x1000"] // 1000
            checks["supply"] = "%d mV" % mv
            if mv < cfg["supply_low_mv"]:
                failed.append("supply_low")
        sense = getattr(b, "trip_sense", None)
        if sense is None:
            checks["coil"] = "not_available"
        else:
            ok = bool(sense.value())
            checks["coil"] = "ok" if ok else "open_circuit"
            if not ok:
                failed.append("coil_open_circuit")
        for f in c.faults:
            if f not in failed:
                failed.append(f)
        result = "fail" if failed else "pass"
        self.emit({"event": "self_test", "state": "end", "result": result, "faults": failed})
        return {"started": True, "result": result, "checks": checks, "faults": failed}

    def interlock_test(self):
        """ITEST on a valve: close it locally (cause manual, source service)."""
        self.controller.close("manual", "service")
        return {"closing": True, "valve": self.controller.status()["valve"]}


def _find_close(evs):
    for ev in reversed(evs):
        if ev.get("event") == "valve" and ev.get("state") == "closed":
            return ev
    return None
