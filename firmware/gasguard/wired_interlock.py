"""Wired interlock: a relay or pulse output from the detector to a shut-off valve.

An interlock sink (docs/interlock.md): close(cause), poll(), fault, state.

mode "level": on close() the output goes to `active_level` and stays there until the
    detector restarts (there is no release call: nothing remote may reopen a valve).
    With active_level 0 and the output held at 1 in normal operation this is the
    fail-safe wiring for an energise-to-open valve: power loss or a cut wire closes it.
mode "pulse": on close() the output is active for pulse_ms, then idle again: the
    trip coil of a latching valve or a 12 V "manipulator". Another close() after
    repeat_ms re-pulses (the valve may have been reopened by hand during an alarm);
    within repeat_ms close() is a no-op.
Line supervision (when the board has a sense input): while the output is idle, the
sense input must read sense_ok_level (a digital pin), or at least sense_ok_min_uv (an
analog input with read_uv()), from a small supervision current through the load;
anything else for sense_debounce_ms is an open circuit: fault "interlock_open_circuit".

Wired takes priority over wireless: the detector calls every sink's close() in the
same sample step, wired first; close() only sets a pin, so the wired output never
waits on the radio (see docs/interlock.md).
"""

from gasguard.validate import ConfigError, need_choice, need_int, reject_unknown

DEFAULTS = {
    "mode": "pulse",
    "pulse_ms": 500,
    "repeat_ms": 10000,
    "active_level": 1,
    "sense_ok_level": 1,
    "sense_debounce_ms": 1000,
    "sense_ok_min_uv": 300000,
}


def wired_config(cfg):
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConfigError("wired_interlock: expected a dict")
    reject_unknown(cfg, DEFAULTS, "wired_interlock")
    d = DEFAULTS
    return {
        "mode": need_choice(cfg, "mode", ("level", "pulse"), d["mode"]),
        "pulse_ms": need_int(cfg, "pulse_ms", 20, 10000, d["pulse_ms"]),
        "repeat_ms": need_int(cfg, "repeat_ms", 1000, 600000, d["repeat_ms"]),
        "active_level": need_int(cfg, "active_level", 0, 1, d["active_level"]),
        "sense_ok_level": need_int(cfg, "sense_ok_level", 0, 1, d["sense_ok_level"]),
        "sense_debounce_ms": need_int(cfg, "sense_debounce_ms", 10, 60000, d["sense_debounce_ms"]),
        "sense_ok_min_uv": need_int(cfg, "sense_ok_min_uv", 1000, 3000000, d["sense_ok_min_uv"]),
    }


class WiredInterlock:
    def __init__(self, out_pin, sense_pin, clock, cfg=None, emit=None):
        self.cfg = wired_config(cfg)
        self.out = out_pin
        self.sense = sense_pin
        self.clock = clock
        self.emit = emit
        self.state = "idle"
        self.fault = None
        self.cause = None
        self.closes = 0  # pulses/assertions actually driven
        self.events_lost = 0  # close events that found no room (the close was driven)
        self._idle = 1 - self.cfg["active_level"]
        self.out.value(self._idle)
        now = clock.ticks_ms()
        self._pulse_end = now
        self._last_pulse = now
        self._bad_since = None
        self._pulsing = False
        self._recent = False  # a pulse ended less than repeat_ms ago

    def close(self, cause="other"):
        """Drive the output now (idempotent, never blocks)."""
        now = self.clock.ticks_ms()
        c = self.cfg
        if self.state == "closing" or self._pulsing:
            return
        if self.state in ("confirmed", "failed") and c["mode"] == "level":
            return
        if self.state in ("confirmed", "failed") and self._recent:
            return
        self.cause = cause
        self.closes += 1
        self.out.value(c["active_level"])
        self._last_pulse = now
        if c["mode"] == "pulse":
            self._pulsing = True
            self._pulse_end = self.clock.ticks_add(now, c["pulse_ms"])
        if self.fault == "interlock_open_circuit":
            self.state = "failed"  # driven anyway: the fault may be in the sense wiring
        elif c["mode"] == "level":
            self.state = "confirmed"
        else:
            self.state = "closing"
        if self.emit is not None:  # the output is driven: a lost event is not a failed close
            try:
                self.emit({"event": "interlock", "state": self.state, "via": "wired", "cause": cause})
            except MemoryError:
                self.events_lost += 1  # the detector takes it into its events_lost

    def _driving(self):
        return self.out.value() == self.cfg["active_level"]

    def poll(self):
        now = self.clock.ticks_ms()
        if self._pulsing and self.clock.ticks_diff(now, self._pulse_end) >= 0:
            self.out.value(self._idle)
            self._pulsing = False
            self._recent = True
            self._last_pulse = now
            self.state = "failed" if self.fault else "confirmed"
        # a flag, not a comparison at close() time: ticks_diff wraps after 2**29 ms (6 days)
        if self._recent and self.clock.ticks_diff(now, self._last_pulse) >= self.cfg["repeat_ms"]:
            self._recent = False
        if self.sense is None or self._driving():
            return
        if hasattr(self.sense, "read_uv"):  # an ADC on the line (detector board GPIO39)
            ok = self.sense.read_uv() >= self.cfg["sense_ok_min_uv"]
        else:
            ok = self.sense.value() == self.cfg["sense_ok_level"]
        if ok:
            self._bad_since = None
            if self.fault is not None:
                self.fault = None
                if self.emit is not None:
                    self.emit({"event": "fault", "code": "interlock_open_circuit", "state": "off"})
            return
        if self._bad_since is None:
            self._bad_since = now
        elif self.fault is None and self.clock.ticks_diff(now, self._bad_since) >= self.cfg["sense_debounce_ms"]:
            self.fault = "interlock_open_circuit"
            if self.emit is not None:
                self.emit({"event": "fault", "code": "interlock_open_circuit", "state": "on"})

    def status(self):
        return {"via": "wired", "state": self.state, "fault": self.fault, "closes": self.closes,
                "mode": self.cfg["mode"]}
