"""The detector: DetectorApp is the device base (gasguard.device_base) around the Detector
(the alarm path), plus what only a detector has: the concentration history per gas, the
calibration facade (CAL) with its stability check, hush, self-test and the interlock test.

Built by gasguard.devices.build_detector() for the board's main.py, the simulator and the
tests. Nothing here blocks; an exception in the detector itself propagates so the
watchdog resets the device.
"""

from gasguard.device_base import DeviceApp
from gasguard.service_proto import E_UNSUPPORTED, ServiceError

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
        for ch in chans or ():  # the detector's gas list, whatever gases it has
            if ch is not None:
                out[ch.gas] = ch
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

    # calibration: the CAL facade is loaded per request ------------------------
    def __getattr__(self, name):
        """cal_get/cal_zero/cal_span/cal_commit/cal_abort/cal_revert: gasguard.app_cal,
        loaded for the call and released after it (docs/heap-budget.md)."""
        if name.startswith("cal_"):
            return lambda *args: self._cal(name, args)
        raise AttributeError(name)

    def _cal(self, name, args):
        from gasguard import app_cal, lazy

        try:
            return getattr(app_cal, name)(self, *args)
        finally:
            app_cal = None
            lazy.release("app_cal")

    def _reading_uv(self, ch):
        uv = getattr(ch, "filtered_uv", None)
        return ch.raw_uv if uv is None else uv

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

