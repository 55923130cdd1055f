"""The detector: DetectorApp is the device base (gasguard.device_base) around the Detector
(the alarm path), plus what only a detector has: the concentration history per gas, the
calibration facade (CAL) with its stability check, hush, self-test and the interlock test.

Built by gasguard.devices.build_detector() for the board's main.py, the simulator and the
tests. Nothing here blocks; an exception in the detector itself propagates so the
watchdog resets the device.
"""

from gasguard.boot import copy
from gasguard.device_base import DeviceApp
from gasguard.service_proto import E_STATE, E_UNSUPPORTED, ServiceError

CAL_BACKUP = "calibration.bak"
# Top-level config sections of a detector; link/net/report/identity/modbus are read by
# gasguard.devices (the builder: interlock link, platform, RS-485).
SECTIONS = ("detector", "service", "app", "board", "link", "net", "report", "identity",
            "modbus")


def _default_detector(board, config, store, emit):
    from gasguard.detector import Detector
    from gasguard.lazy import release

    d = Detector(board, config, store, emit)
    # the sensing builders and calibration are boot/CFG/CAL-time code (lazy.BOOT_ONLY): out
    # of the heap before the optional parts (link, reporter) load, not only after boot
    release("sensors", "calibration")
    return d


class DetectorApp(DeviceApp):
    KIND = "detector"
    SECTIONS = SECTIONS

    def __init__(self, board, store, config=None, identity=None, detector_factory=None,
                 rng=None, reset_cause=None, button_at_boot=None, board_name="unknown"):
        DeviceApp.__init__(self, board, store, identity, reset_cause, button_at_boot,
                           board_name)
        self._staged = {}  # channel -> {"zero_uv":..., "span_uv":..., "span_ppm":...}
        factory = detector_factory or _default_detector
        self._validate_detector = getattr(factory, "validate_config", None)

        def build():
            self.detector = factory(board, self.config.get("detector", {}), store, self.emit)

        # stored config, else the boot config, else the defaults, else methane only (a
        # board without a CO input): the alarm path always runs
        self._boot(config, build, ({}, {"detector": {"tier": "low"}}), rng)
        self.detector.refused_faults = self.faults_refused  # yellow LED, chirp, diag faults
        # the channels are the detector's for its life: found once, not per loop turn
        self._chans = chans = self._channels()
        self._gases = tuple(chans)
        # concentration history (peak ppm_x10 per period) and the reading's band over
        # 10 s windows for calibration stability: gas -> [lo, hi, previous lo, previous hi]
        self._hist_setup(self._gases)
        from array import array

        self._stab = {}
        self._stab_t = self.clock.ticks_ms()
        for gas in self._gases:
            if getattr(chans[gas], "model", None) is not None:
                self._stab[gas] = array("i", [3300000, 0, 0, 3300000])
        self._booted()

    # ------------------------------------------------------------ the core
    def _core(self, now):
        self.detector.poll()
        chans = self._chans
        turn = self.clock.ticks_diff(now, self._stab_t) >= 10000
        if turn:
            self._stab_t = now
        i = 0
        for gas in self._gases:
            ch = chans[gas]
            self._sample(i, ch.ppm_x10)
            i += 1
            st = self._stab.get(gas)
            if st is not None:
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

    def _channels(self):
        det = self.detector
        chans = getattr(det, "channels", None)
        if isinstance(chans, dict):
            return chans
        out = {}
        for ch in chans or ():
            if ch is not None:
                out[ch.gas] = ch
        if not out:
            for gas in ("ch4", "co"):
                ch = getattr(det, gas, None)
                if ch is not None:
                    out[gas] = ch
        return out

    def _tier(self):
        dcfg = getattr(self.detector, "cfg", None) or self.config.get("detector", {})
        return dcfg.get("tier"), dcfg.get("profile")

    def readings(self):
        out = {}
        for gas, ch in self._chans.items():
            out[gas] = {"ppm_x10": ch.ppm_x10, "raw_uv": ch.raw_uv, "fault": ch.fault,
                        "warming_up": bool(getattr(ch, "warming_up", False))}
        out["uptime_s"] = self._up_s
        return out

    def _status(self):
        links = []
        for s in getattr(self.detector, "interlocks", ()) or ():
            links.append({"type": type(s).__name__, "state": getattr(s, "state", None),
                          "fault": getattr(s, "fault", None)})
        return {"detector": self.detector.status(), "interlocks": links}

    def telemetry(self):
        """The telemetry body of a detector: integer readings and states."""
        st = self.detector.status()
        d = {"ready": st.get("ready"), "relay": st.get("relay"), "hushed": st.get("hushed")}
        for gas in self._gases:
            ch = st.get(gas)
            if ch is not None:
                d[gas + "_ppm_x10"] = ch.get("ppm_x10")
                d[gas + "_alarm"] = ch.get("alarm")
                d[gas + "_fault"] = ch.get("fault")
        d["faults"] = st.get("faults")
        return d

    # calibration -----------------------------------------------------------
    def _channel(self, gas):
        ch = self._chans.get(gas)
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
        gases = sorted(self._gases)
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

    def close_valve(self, cause="remote"):
        """The app's way to the interlocks (downlink, RS-485, ITEST): the detector's one
        close path (Detector.close: every sink asked, failures counted, an event logged)."""
        if not getattr(self.detector, "interlocks", None):
            raise ValueError("no interlock is configured on this detector")
        return {"closing": self.detector.close(cause)}

    def interlock_test(self):
        if not getattr(self.detector, "interlocks", None):
            raise ServiceError(E_UNSUPPORTED, "no interlock configured")
        r = self.close_valve("test")
        r["states"] = [getattr(s, "state", None) for s in self.detector.interlocks]
        return r

    def hush(self):
        """HUSH (console, button, downlink): the detector's answer -- accepted with the
        window, or refused with the reason (docs/alarms.md "Hush") -- never a blind yes."""
        r = self.detector.hush()
        if not isinstance(r, dict):  # a detector double without a reply
            return {"hushed": bool(getattr(self.detector, "hushed", False))}
        if r.get("hushed"):
            r["until_uptime_s"] = self._up_s + r.get("seconds", 0)
        return r

