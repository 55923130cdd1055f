"""The detector application: one object that owns the components and runs the main loop.

DetectorApp builds the Detector (alarm path), the service console, the event log, and
implements the `device` facade the service protocol talks to (docs/service-protocol.md).
The board's main.py (and boards/sim/virtual_device.py) do only:

    app = DetectorApp(board, store, config)
    app.run_forever(10)

Nothing here blocks: poll() gives each component one bounded step. Other parts are
plugged in by appending to two lists:
    app.sinks    objects with event(ev): every stamped event (reporter, ...)
    app.pollers  objects with poll(): driven every loop turn (interlock links, reporter)
A poller or sink that raises is counted and logged but never stops the alarm path; an
exception in the detector itself propagates so the watchdog resets the device.
"""

import json

from gasguard import VERSION, record
from gasguard.boot import (  # noqa: F401  (main.py imports these from here)
    BOOT_NAME, CONFIG_NAME, KEY_NAME, MAINT_NAME, NullConsole, boot_mode, bump_boot_count,
    copy, load_config,
)
from gasguard.device_base import DeviceApp
from gasguard.eventlog import EventLog
from gasguard.service import PROTOCOL, Service, ServiceError, E_STATE, E_UNSUPPORTED

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


CAL_BACKUP = "calibration.bak"
# Top-level config sections of a detector; link/net/report/identity are read by main.py
# and gasguard.devices (attach_interlock, attach_reporter, attach_active_id).
SECTIONS = ("detector", "service", "app", "board", "link", "net", "report", "identity",
            "modbus")
_HIST_POINTS = const(120)


def _default_detector(board, config, store, emit):
    from gasguard.detector import Detector

    return Detector(board, config, store, emit)


class DetectorApp(DeviceApp):
    KIND = "detector"
    SECTIONS = SECTIONS

    def __init__(self, board, store, config=None, identity=None, detector_factory=None,
                 rng=None, reset_cause=None, button_at_boot=None, board_name="unknown"):
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
        self.errors = []  # last few (where, message) from pollers/sinks
        self.error_count = 0
        self.log = EventLog(store, boot=self.boot_count)
        self.refused = []  # what boot could not use (reasons), and its fault codes:
        self.faults_refused = []
        if identity is None:
            from gasguard.lazy import ParkedIdentity  # loaded per use: docs/heap-budget.md

            identity = ParkedIdentity(store)
        self.identity = identity
        if button_at_boot is None:
            btn = getattr(board, "button", None)
            button_at_boot = bool(btn.value()) if btn is not None else False
        self.button_at_boot = button_at_boot
        self._staged = {}  # channel -> {"zero_uv":..., "span_uv":..., "span_ppm":...}
        self._pending = None  # "reboot" / "maintenance" after the reply is out
        self.on_reboot = getattr(board, "reboot", None)
        factory = detector_factory or _default_detector
        self._validate_detector = getattr(factory, "validate_config", None)

        def build():
            self.detector = factory(board, self.config.get("detector", {}), store, self.emit)
            self.service = Service(board.console, self, self.clock, self.config.get("service"),
                                   rng=rng, button_at_boot=button_at_boot)

        # stored config, else the boot config, else the defaults, else methane only (a
        # board without a CO input): the alarm path always runs
        self._boot(config, build, ({}, {"detector": {"tier": "low"}}))
        self.detector.refused_faults = self.faults_refused  # yellow LED, chirp, diag faults
        # concentration history: peak ppm_x10 per period, for service reports
        from array import array

        self._hist = {}
        self._hist_peak = {}
        self._stab = {}  # gas -> [lo, hi, previous lo, previous hi] of the reading, µV
        self._stab_t = self.clock.ticks_ms()
        for gas, ch in self._channels().items():
            self._hist[gas] = array("i", [-1] * _HIST_POINTS)
            self._hist_peak[gas] = -1
            if getattr(ch, "model", None) is not None:
                self._stab[gas] = array("i", [3300000, 0, 0, 3300000])
        self._hist_n = 0
        self._hist_t = self.clock.ticks_ms()
        self.emit({"event": "boot", "reset_cause": self.reset_cause, "fw": VERSION,
                   "factory": bool(button_at_boot)})

    # ------------------------------------------------------------ main loop
    def poll_core(self):
        """Everything except the console (also used by the simulator to jump time)."""
        now = self.clock.ticks_ms()
        d = self.clock.ticks_diff(now, self._last)
        self._last = now
        if d > 0:
            self._up_ms += d
            if self._up_ms >= 1000:
                self._up_s += self._up_ms // 1000
                self._up_ms %= 1000
        self.detector.poll()
        self._history(now)
        for p in self.pollers:
            try:
                p.poll()
            except Exception as e:
                self._note_error("poller", e)

    def _history(self, now):
        chans = self._channels()
        turn = self.clock.ticks_diff(now, self._stab_t) >= 10000
        if turn:
            self._stab_t = now
        for gas in self._hist_peak:
            ch = chans.get(gas)
            if ch is None:
                continue
            if ch.ppm_x10 > self._hist_peak[gas]:
                self._hist_peak[gas] = ch.ppm_x10
            st = self._stab.get(gas)
            if st is not None:  # the reading's band over 10 s windows (calibration stability)
                v = self._reading_uv(ch)
                if turn:
                    st[2] = st[0]
                    st[3] = st[1]
                    st[0] = v
                    st[1] = v
                else:
                    if v < st[0]:
                        st[0] = v
                    if v > st[1]:
                        st[1] = v
        if self.clock.ticks_diff(now, self._hist_t) >= self._hist_period_ms:
            self._hist_t = self.clock.ticks_add(self._hist_t, self._hist_period_ms)
            if self.clock.ticks_diff(now, self._hist_t) >= self._hist_period_ms:
                self._hist_t = now  # fell behind (long stall): resynchronise
            i = self._hist_n % _HIST_POINTS
            for gas in self._hist:
                self._hist[gas][i] = self._hist_peak[gas]
                self._hist_peak[gas] = -1
            self._hist_n += 1

    def _channels(self):
        det = self.detector
        chans = getattr(det, "channels", None)
        if isinstance(chans, dict):
            return chans
        out = {}
        if chans:
            for ch in chans:
                if ch is not None:
                    out[ch.gas] = ch
            return out
        for gas in ("ch4", "co"):
            ch = getattr(det, gas, None)
            if ch is not None:
                out[gas] = ch
        return out

    # ------------------------------------------------------------ device facade
    def info(self):
        dcfg = getattr(self.detector, "cfg", None) or self.config.get("detector", {})
        return {"fw": VERSION, "proto": PROTOCOL, "kind": self.KIND, "tier": dcfg.get("tier"),
                "profile": dcfg.get("profile"), "board": self.board_name}

    def readings(self):
        out = {}
        for gas, ch in self._channels().items():
            out[gas] = {"ppm_x10": ch.ppm_x10, "raw_uv": ch.raw_uv, "fault": ch.fault,
                        "warming_up": bool(getattr(ch, "warming_up", False))}
        out["uptime_s"] = self._up_s
        return out

    def status(self):
        info = self.info()
        rec = self._identity_record()
        det = self.detector.status()
        links = []
        for s in getattr(self.detector, "interlocks", ()) or ():
            links.append({"type": type(s).__name__, "state": getattr(s, "state", None),
                          "fault": getattr(s, "fault", None)})
        fh, outbox, parts, last = self._status_parts()
        d = {
            "id": (rec or {}).get("id"),
            "fw": info["fw"],
            "kind": info["kind"],
            "tier": info["tier"],
            "profile": info["profile"],
            "uptime_s": self._up_s,
            "reset_cause": self.reset_cause,
            "boot_count": self.boot_count,
            "free_heap": fh() if fh is not None else None,
            "readings": self.readings(),
            "detector": det,
            "interlocks": links,
            "outbox_depth": outbox,
            "last_faults": last[-5:],
            "last_errors": list(self.errors),
            "refused": self.refused,
            "log": {"seq": self.log.seq, "write_errors": self.log.write_errors},
            "parts": parts,
        }
        return d

    def history(self):
        n = min(self._hist_n, _HIST_POINTS)
        out = {"period_s": self._hist_period_ms // 1000, "points": n}
        for gas in self._hist:
            h = self._hist[gas]
            out[gas] = [h[(self._hist_n - n + i) % _HIST_POINTS] for i in range(n)]
        return out

    # calibration -----------------------------------------------------------
    def _channel(self, gas):
        ch = self._channels().get(gas)
        if ch is None:
            raise ServiceError(E_UNSUPPORTED, "this device has no %s channel" % gas)
        return ch

    def cal_get(self):
        from gasguard import calibration

        rec = calibration.load(self.store)
        chans = {}
        for gas in rec.gases():
            chans[gas] = rec.get(gas).as_dict()
        return {"problem": rec.problem, "channels": chans, "staged": copy(self._staged)}

    def _reading_uv(self, ch):
        uv = getattr(ch, "filtered_uv", None)
        return ch.raw_uv if uv is None else uv

    def cal_zero(self, gas):
        from gasguard import calibration

        ch = self._channel(gas)
        if ch.fault not in (None, "cal_missing", "end_of_life"):
            raise ServiceError(E_STATE, "channel %s is faulted (%s): cannot take zero" % (gas, ch.fault))
        uv = self._reading_uv(ch)
        calibration.compute_zero(ch.model, uv)  # CalibrationError names the reason
        calibration.check_clean_air(ch.model, uv, self._alarm_points(gas)[0][1] // 2)
        self._check_stable(gas, uv, "zero")
        self._staged[gas] = {"zero_uv": uv}
        return {"ch": gas, "zero_uv": uv}

    def _alarm_points(self, gas):
        """(true ppm x10, must read at least) points a committed calibration must pass,
        against the sensor's own nominal model (docs/calibration.md, "Plausibility")."""
        cfg = self.detector.cfg
        rng = self._channel(gas).model.range_ppm_x10
        if gas == "ch4":
            l1 = cfg["ch4_low_x10"]
            return ((min(2 * l1, rng), l1), (rng, l1))
        # CO: the UL 2034 / GB 15322.2 points 150 and 400 ppm must read at least 85 % (a lower
        # reading moves the dose-based alarm out of the standard's time window)
        return ((min(1500, rng), min(1275, rng * 85 // 100)),
                (min(4000, rng), min(3400, rng * 85 // 100)))

    def _check_stable(self, gas, uv, what):
        """The reading must have stayed within 1 % + 2 mV over the last 10..20 s (right
        after boot there is no such band yet: refused)."""
        from gasguard.calibration import CalibrationError

        st = self._stab.get(gas)
        if st is None:
            return
        moved = max(st[1], st[3]) - min(st[0], st[2])
        if moved > uv // 100 + 2000:
            raise CalibrationError("%s: the reading moved %d µV in the last 10 s: not stable, "
                                   "wait and retry" % (what, moved))

    def cal_span(self, gas, ppm):
        ch = self._channel(gas)
        st = self._staged.get(gas)
        if not st or "zero_uv" not in st:
            raise ServiceError(E_STATE, "take CAL ZERO %s before the span" % gas)
        from gasguard import calibration

        if ch.fault not in (None, "cal_missing", "end_of_life"):
            raise ServiceError(E_STATE, "channel %s is faulted (%s): cannot take span" % (gas, ch.fault))
        uv = self._reading_uv(ch)
        self._check_stable(gas, uv, "span")
        ppm_x10 = int(ppm * 10 + 0.5)
        gain = calibration.compute_span(ch.model, st["zero_uv"], uv, ppm_x10)
        st["span_uv"] = uv
        st["span_ppm_x10"] = ppm_x10
        return {"ch": gas, "zero_uv": st["zero_uv"], "span_uv": uv, "span_ppm_x10": ppm_x10,
                "gain_pct": int(gain * 100 + 0.5)}

    def cal_commit(self, meta):
        """Write the staged channels into the record (others kept), read back, apply."""
        from gasguard import calibration

        if not self._staged:
            raise ServiceError(E_STATE, "nothing staged: CAL ZERO/SPAN first")
        for gas, st in self._staged.items():
            if "span_uv" not in st:
                raise ServiceError(E_STATE, "channel %s has a zero but no span" % gas)
        date = calibration.check_date(meta.get("date"))
        op = meta.get("operator", "factory")
        rec = calibration.load(self.store)
        if rec.problem is not None:
            rec = calibration.CalibrationRecord()
        for gas, st in self._staged.items():
            model = self._channel(gas).model
            rec = rec.with_zero(model, st["zero_uv"], date, op)
            rec = rec.with_span(model, st["span_uv"], st["span_ppm_x10"], date, op)
            # the firmware's own check: with this calibration the alarm points are reached
            calibration.check_alarms(model, rec.get(gas), self._alarm_points(gas))
        prev = self.store.read(calibration.STORE_NAME)
        self.store.write(CAL_BACKUP, prev if prev is not None else b"")
        calibration.save(self.store, rec)
        back = calibration.load(self.store)
        for gas in self._staged:
            if back.get(gas) != rec.get(gas):
                raise ServiceError(E_STATE, "read-back of the calibration differs")
        gases = sorted(self._staged.keys())
        self._staged = {}
        self._reload_cal(gases)
        self.emit({"event": "calibration", "channels": gases, "operator": op, "date": date})
        out = {}
        for gas in gases:
            out[gas] = back.get(gas).as_dict()
        return {"committed": out}

    def cal_abort(self):
        self._staged = {}

    def cal_revert(self):
        """Put back the record that the last CAL COMMIT replaced (one level of undo)."""
        from gasguard import calibration

        bak = self.store.read(CAL_BACKUP)
        if bak is None:
            raise ServiceError(E_STATE, "nothing to revert")
        if bak:
            self.store.write(calibration.STORE_NAME, bak)
        else:
            self.store.remove(calibration.STORE_NAME)
        self.store.remove(CAL_BACKUP)
        self._staged = {}
        gases = sorted(self._channels().keys())
        self._reload_cal(gases)
        self.emit({"event": "calibration", "channels": gases, "reverted": True})
        return self.cal_get()

    def _reload_cal(self, gases):
        from gasguard import calibration

        rec = calibration.load(self.store)
        for gas in gases:
            ch = self._channel(gas)
            if hasattr(ch, "set_calibration"):
                ch.set_calibration(rec.get(gas))
                continue
            ch.cal = rec.get(gas)
            try:
                calibration.apply(ch.model, ch.cal)
                ch.cal_problem = None
            except calibration.CalibrationError as e:
                ch.cal_problem = str(e)

    # actions ----------------------------------------------------------------
    def self_test(self):
        r = self.detector.self_test()
        return r if isinstance(r, dict) else {"started": True, "result": r}

    def interlock_test(self):
        sinks = getattr(self.detector, "interlocks", None) or []
        if not sinks:
            raise ServiceError(E_UNSUPPORTED, "no interlock configured")
        for s in sinks:
            s.close("test")
        self.emit({"event": "interlock", "state": "close", "cause": "test"})
        return {"closing": len(sinks), "states": [getattr(s, "state", None) for s in sinks]}

    def hush(self):
        """HUSH (console, button, downlink): the detector's answer -- accepted with the
        window, or refused with the reason (docs/alarms.md "Hush") -- never a blind yes."""
        r = self.detector.hush()
        if not isinstance(r, dict):  # a detector double without a reply
            return {"hushed": bool(getattr(self.detector, "hushed", False))}
        if r.get("hushed"):
            r["until_uptime_s"] = self._up_s + r.get("seconds", 0)
        return r

