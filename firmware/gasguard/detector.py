"""The detector: one sample step = channels -> alarms -> faults -> outputs -> events.

    det = Detector(board, config, store, emit)
    det.poll()            # call often: one sample step whenever sample_period_ms elapsed,
                          # output patterns and interlock sinks every call
    det.step()            # exactly one sample step now
    det.interlocks        # interlock sinks: det.interlocks.append(sink); close(cause) is called
    det.channels          # {"ch4": Channel, "co": Channel} (co absent on tier low)
    det.status()          # dict for diagnostics / telemetry
    det.hush(), det.self_test(), det.button_pressed(long=False), det.reset_latches(),
    det.reload_calibration()

Events handed to emit (dicts without time; the owner stamps it), in this order within
a step: fault, warmup/ready, alarm, hush, relay, interlock, self_test. Shapes:
docs/replay.md. Rules and their sources: docs/alarms.md.

Latching vs self-reset (per output):
  - alarm indications (red LED, buzzer) and the alarm events: self-reset when the gas
    is gone (methane: below set point - hysteresis for ch4_clear_s; CO: at or below the
    no-alarm level for co_clear_s) -- the on-site commissioning rule (back to normal
    monitoring within 60 s).
  - relay: follows the alarm (self-reset, e.g. exhaust fan) unless relay_latch is set;
    a latched relay releases only on reset_latches() (long button press) while no alarm
    that drives it is active.
  - interlock sinks (gas valve): close(cause) is a one-way request; the valve stays
    closed until reopened by hand at the valve. The detector has no open call.
  - peak memory: kept until reset_latches().
"""

from gasguard.methane_alarm import MethaneAlarm, MethaneLevel
from gasguard.co_alarm import COAlarm, DOSE_FULL, alarm_time_s
from gasguard.outputs import (
    Outputs, OFF, ON, SLOW_BLINK, BLINK_1HZ, DOUBLE_FLASH, BEEP_L1, BEEP_L2, BEEP_CO_T4, CHIRP,
)
from gasguard.sensing import F_CAL, FAULT_BITS, FAULT_CODES, N_FAULTS
from gasguard.validate import ConfigError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


# faults that leave the reading usable (the channel still converts on the nominal model)
_READING_OK = ("cal_missing", "end_of_life")
_SELF_TEST_MS = const(4000)
_BTN_DEBOUNCE_MS = const(50)
_BTN_LONG_MS = const(3000)


def validate_config(config):
    """Check a detector config (ConfigError on violation); returns the normalised dict.
    gasguard.profiles is boot/CFG-time code, released after use (gasguard.lazy.BOOT_ONLY).
    CFG checks more: gasguard.config_write builds the channels as Detector() does."""
    from gasguard import profiles

    return profiles.load(config)


def _check_range(cfg, ch4):
    rng = getattr(getattr(ch4, "model", None), "range_ppm_x10", None)
    if rng is not None and rng < cfg["ch4_low_x10"]:
        raise ConfigError("ch4_low_pct_lel: %r %%LEL (%d ppm) is above the sensor range (%d ppm)"
                          % (cfg["ch4_low_pct_lel"], cfg["ch4_low_x10"] // 10, rng // 10))


def _default_channels(board, cfg, store, clock):
    """Build the sensing channels (gasguard.sensors) from the board and the sub-configs
    cfg["ch4"] / cfg["co"] = {"sensor": {model config}, "channel": {channel config}}."""
    from gasguard import calibration, sensors
    from gasguard.sensors import Channel

    rec = calibration.load(store) if store is not None else None
    gases = ["ch4"]
    if cfg["co_enabled"]:
        gases.append("co")
    chans = {}
    for gas in gases:
        adc = getattr(board, "adc_" + gas, None)
        if adc is None:
            raise ConfigError("%s: tier %s needs a %s channel but the board has no adc_%s"
                              % (gas, cfg["tier"], gas, gas))
        sub = cfg[gas]
        model = sensors.from_config(sub["sensor"])
        if model.gas != gas:
            raise ConfigError("%s.sensor: model %s measures %s" % (gas, model.name, model.gas))
        cal = rec.get(gas) if rec is not None else None
        chans[gas] = Channel(adc, clock, model, cal, sub["channel"])
    return chans


def _default_supply(board, cfg, clock):
    adc = getattr(board, "adc_supply", None)
    if adc is None:
        return None
    from gasguard.sensors import SupplyMonitor

    return SupplyMonitor(adc, clock, cfg["supply"])


class Detector:
    def __init__(self, board, config, store, emit, channels=None, supply=None):
        cfg = validate_config(config)  # ConfigError before anything is built
        self.cfg = cfg
        self.board = board
        self.clock = board.clock
        self.store = store
        self.emit = emit
        self.period_ms = cfg["sample_period_ms"]
        if channels is None:
            channels = _default_channels(board, cfg, store, self.clock)
        if "ch4" not in channels:
            raise ConfigError("channels: a methane channel is required")
        if cfg["co_enabled"] and "co" not in channels:
            raise ConfigError("channels: tier %s requires a CO channel" % cfg["tier"])
        self.channels = channels
        self.ch4 = channels["ch4"]
        self.co = channels.get("co") if cfg["co_enabled"] else None
        self.supply = _default_supply(board, cfg, self.clock) if supply is None else supply
        self.methane = MethaneAlarm(cfg)
        self._ch4_high = cfg["ch4_high_x10"]
        _check_range(cfg, self.ch4)
        self.co_alarm = COAlarm(cfg) if self.co is not None else None
        self.outputs = Outputs(board, self.clock)
        self.interlocks = []
        self.sink_errors = 0
        self.last_sink_error = None
        # state
        self._last = self.clock.ticks_ms()
        self._next = self._last  # first step at the first poll
        self._first = True
        self._ch4_level = 0
        self._co_on = False
        self._ch4_fault = None
        self._co_fault = None
        self._ch4_bits = 0
        self._co_bits = 0
        self._supply_fault = None
        self._sink_faults = []
        self._ilk_missing = False
        self.refused_faults = ()  # what the app refused at boot (e.g. config_invalid)
        self.ready = False
        self._warm_announced = False
        self.peak_ch4_x10 = 0
        self.peak_co_x10 = 0
        self.relay_latched = False
        self.interlock_cause = None  # last cause sent to the sinks (latched at the valve)
        self.interlock_count = 0
        # hush (docs/alarms.md "Hush"): one window at a time, at most hush_max per alarm
        # episode, the CO baseline taken at the episode's first hush and never reset
        self.hushed = False
        self._hush_start = 0
        self._hush_dose = 0
        self._hush_co_x10 = 0
        self._hush_count = 0  # hushes in this alarm episode (0 again when all alarms clear)
        # self-test
        self._st_active = False
        self._st_start = 0
        self._st_faults = None
        # button
        self._btn = getattr(board, "button", None)
        self._btn_seen_idle = False
        self._btn_down = False
        self._btn_since = 0
        self._btn_long_done = False
        # cached thresholds for the CO hush rule
        self._hush_rise = (DOSE_FULL * cfg["hush_co_rise_pct"]) // 100
        self._hush_ms = cfg["hush_s"] * 1000
        self._hush_co_max_x10 = cfg["hush_co_max_ppm"] * 10
        self._render()

    # ------------------------------------------------------------------ loop
    def poll(self):
        clock = self.clock
        now = clock.ticks_ms()
        if clock.ticks_diff(now, self._next) >= 0:
            self.step()
            # keep the cadence; resynchronise after a long stall
            nxt = clock.ticks_add(self._next, self.period_ms)
            if clock.ticks_diff(now, nxt) >= 0:
                nxt = clock.ticks_add(now, self.period_ms)
            self._next = nxt
        self._poll_button(now)
        if self._st_active:
            self._self_test_poll(now)
        for s in self.interlocks:
            try:
                s.poll()
            except Exception as e:  # a sink's bug must never stop the alarm path
                self._sink_error(s, e)
        self.outputs.poll()

    def _sink_error(self, sink, e):
        self.sink_errors += 1
        self.last_sink_error = "%s: %s" % (type(e).__name__, e)

    def step(self):
        clock = self.clock
        now = clock.ticks_ms()
        if self._first:
            self._first = False
            dt = self.period_ms
        else:
            dt = clock.ticks_diff(now, self._last)
            if dt < 0:
                dt = 0
            elif dt > 60000:
                dt = 60000
        self._last = now
        ch4 = self.ch4
        co = self.co
        ch4.sample()
        if co is not None:
            co.sample()
        sup = self.supply
        if sup is not None:
            sup.sample()

        # ---- faults (explicit states, never a silent 0 ppm)
        self._ch4_bits = self._chan_faults(ch4, "ch4", self._ch4_bits, self._ch4_fault)
        self._ch4_fault = ch4.fault
        if co is not None:
            self._co_bits = self._chan_faults(co, "co", self._co_bits, self._co_fault)
            self._co_fault = co.fault
        if sup is not None:
            f = sup.fault
            if f != self._supply_fault:
                self._fault_change(self._supply_fault, f, None)
                self._supply_fault = f
        self._sink_fault_scan()

        # ---- warm-up / ready
        warming = ch4.warming_up or (co is not None and co.warming_up)
        if not self.ready:
            if not warming:
                self.ready = True
                self.emit({"event": "ready"})
            elif not self._warm_announced:
                self._warm_announced = True
                self.emit({"event": "warmup", "state": "on"})

        # ---- methane (a faulted channel holds its alarm state: no all-clear from bad data)
        f = self._ch4_fault
        if f is None or f in _READING_OK:
            x = ch4.ppm_x10
            if x > self.peak_ch4_x10:
                self.peak_ch4_x10 = x
            if getattr(ch4, "over_range", False) and x < self._ch4_high:
                # a saturated sensor cannot tell how big the leak is: treat it as at
                # least the high set point (the sensor's range may end below it)
                x = self._ch4_high
            ch = self.methane.update(x, dt, ch4.warming_up)
            if ch:
                self._methane_events(ch)
        # ---- CO dose
        f = self._co_fault
        if co is not None and (f is None or f in _READING_OK):
            x = co.ppm_x10
            if x > self.peak_co_x10:
                self.peak_co_x10 = x
            if self.co_alarm.update(x, dt):
                on = self.co_alarm.active
                self._co_on = on
                self.emit({"event": "alarm", "gas": "co", "level": 1,
                           "state": "on" if on else "off"})
                if on:
                    self._new_alarm()
                    if self.cfg["interlock_on_co"]:
                        self._close_interlocks("co")

        self._reassert_interlocks()
        self._hush_check(now)
        self._relay_update()
        self._render()

    def _reassert_interlocks(self):
        """While the alarm that demanded the valve closed persists, keep asking: a valve
        reopened by hand during the alarm is closed again, and a request that failed
        (radio out of range) starts over. Sinks are idempotent: close() on a closing or
        confirmed sink does nothing, so this costs nothing while the valve is shut."""
        if not self.interlocks or self.interlock_cause is None:
            return
        cause = None
        if self._ch4_level >= self.cfg["interlock_ch4_level"]:
            cause = "ch4_high" if self.cfg["interlock_ch4_level"] == 2 else "ch4_low"
        elif self._co_on and self.cfg["interlock_on_co"]:
            cause = "co"
        if cause is None:
            return
        for s in self.interlocks:
            if getattr(s, "state", None) in ("closing", "confirmed"):
                continue
            try:
                s.close(cause)
            except Exception as e:
                self._sink_error(s, e)

    # ------------------------------------------------------------------ events
    def _fault_change(self, old, new, gas):
        if old is not None:
            ev = {"event": "fault", "code": old, "state": "off"}
            if gas is not None:
                ev["gas"] = gas
            self.emit(ev)
        if new is not None:
            ev = {"event": "fault", "code": new, "state": "on"}
            if gas is not None:
                ev["gas"] = gas
            self.emit(ev)

    def _chan_faults(self, ch, gas, old_bits, old_code):
        """Emit a fault event for every channel fault that came or went; return the bits."""
        bits = getattr(ch, "fault_bits", None)
        if bits is None:  # a channel that only reports its top fault code
            f = ch.fault
            if f != old_code:
                self._fault_change(old_code, f, gas)
            return 0
        ch_ = bits ^ old_bits
        if ch_:
            i = 0
            while i < N_FAULTS:
                m = FAULT_BITS[i]
                if ch_ & m and old_bits & m:
                    self.emit({"event": "fault", "code": FAULT_CODES[i], "gas": gas, "state": "off"})
                i += 1
            i = 0
            while i < N_FAULTS:
                m = FAULT_BITS[i]
                if ch_ & m and bits & m:
                    self.emit({"event": "fault", "code": FAULT_CODES[i], "gas": gas, "state": "on"})
                i += 1
        return bits

    def _sink_fault_scan(self):
        sinks = self.interlocks
        sf = self._sink_faults
        while len(sf) < len(sinks):
            sf.append(None)
        i = 0
        for s in sinks:
            f = getattr(s, "fault", None)
            if f != sf[i]:
                if sf[i] is not None:
                    self.emit({"event": "fault", "code": sf[i], "state": "off", "sink": i})
                if f is not None:
                    self.emit({"event": "fault", "code": f, "state": "on", "sink": i})
                sf[i] = f
            i += 1
        missing = self.cfg["interlock_required"] and not sinks
        if missing != self._ilk_missing:
            self._ilk_missing = missing
            self.emit({"event": "fault", "code": "interlock_missing",
                       "state": "on" if missing else "off"})

    def _methane_events(self, changed):
        m = self.methane
        # order: low on before high on; high off before low off
        if changed & 1 and m.low.active:
            self.emit({"event": "alarm", "gas": "ch4", "level": 1, "state": "on"})
        if changed & 2:
            self.emit({"event": "alarm", "gas": "ch4", "level": 2,
                       "state": "on" if m.high.active else "off"})
        if changed & 1 and not m.low.active:
            self.emit({"event": "alarm", "gas": "ch4", "level": 1, "state": "off"})
        old = self._ch4_level
        lvl = m.level()
        self._ch4_level = lvl
        if lvl > old:
            self._new_alarm()
            need = self.cfg["interlock_ch4_level"]
            if old < need <= lvl:
                self._close_interlocks("ch4_high" if need == 2 else "ch4_low")

    def _close_interlocks(self, cause):
        self.interlock_cause = cause
        self.interlock_count += 1
        for s in self.interlocks:
            try:
                s.close(cause)
            except Exception as e:
                self._sink_error(s, e)
        self.emit({"event": "interlock", "state": "close", "cause": cause,
                   "sinks": len(self.interlocks)})

    # ------------------------------------------------------------------ hush
    def _alarm_sounding(self):
        return self._ch4_level > 0 or self._co_on

    def _faulted(self):
        return (self._ch4_fault is not None or self._co_fault is not None
                or self._supply_fault is not None or self._ilk_missing
                or self._any_sink_fault() or bool(self.refused_faults))

    def any_fault(self):
        """True while any fault is active (allocation-free, for the Modbus state word)."""
        return self._faulted()

    def device_faults(self):
        """The faults outside the gas channels as bits (allocation-free; docs/modbus.md):
        1 supply, 2 interlock required but missing, 4 an interlock output reports a fault,
        8 the device refused a stored record at boot (config_invalid, ...)."""
        v = 1 if self._supply_fault is not None else 0
        if self._ilk_missing:
            v |= 2
        if self._any_sink_fault():
            v |= 4
        if self.refused_faults:
            v |= 8
        return v

    def _any_sink_fault(self):
        for f in self._sink_faults:
            if f is not None:
                return True
        return False

    def hush(self):
        """Silence the buzzer for hush_s (docs/alarms.md "Hush"). Returns what happened:
        {"hushed": True, "seconds": window} or {"hushed": False, "reason": code}."""
        reason = None
        sounding = self._alarm_sounding()
        if self._ch4_level >= 2:
            reason = "ch4_high"  # never silenced
        elif not (sounding or self._faulted()):
            return {"hushed": False, "reason": "nothing_to_hush"}
        elif self.hushed:
            reason = "already_hushed"  # a second HUSH does not extend the window
        elif self._co_on and self.co.ppm_x10 > self._hush_co_max_x10:
            reason = "co_high"
        elif sounding and self._hush_count >= self.cfg["hush_max"]:
            reason = "hush_limit"  # this episode's hushes are used up: it sounds until clear
        if reason is not None:
            self.emit({"event": "hush", "state": "refused", "reason": reason})
            return {"hushed": False, "reason": reason}
        if sounding:
            if self._hush_count == 0 and self.co_alarm is not None:
                self._hush_dose = self.co_alarm.dose  # the episode's baseline, kept
                self._hush_co_x10 = self.co.ppm_x10
            self._hush_count += 1
        self.hushed = True
        self._hush_start = self.clock.ticks_ms()
        self.emit({"event": "hush", "state": "on", "seconds": self.cfg["hush_s"],
                   "count": self._hush_count})
        self._render()
        return {"hushed": True, "seconds": self.cfg["hush_s"], "count": self._hush_count,
                "max": self.cfg["hush_max"]}

    def _new_alarm(self):
        # a new alarm (a level rising, a CO alarm starting) always ends a hush
        if self.hushed:
            self._end_hush("new_alarm")

    def _end_hush(self, reason):
        self.hushed = False
        self.emit({"event": "hush", "state": "off", "reason": reason})

    def _hush_check(self, now):
        if not (self._ch4_level or self._co_on):
            self._hush_count = 0  # the alarm episode is over: the next one may be hushed
        if not self.hushed:
            return
        if self._ch4_level >= 2:
            self._end_hush("ch4_high")
        elif self.co_alarm is not None and self._co_fault is None and (
                self.co.ppm_x10 > self._hush_co_max_x10
                or (self._hush_count and (
                    self.co_alarm.dose - self._hush_dose >= self._hush_rise
                    or self.co.ppm_x10 > self._hush_co_x10 + self._hush_co_x10 // 5 + 100))):
            # above the level no hush is allowed, or since the episode's first hush the dose
            # grew by hush_co_rise_pct of an alarm dose or the concentration by 20 % + 10 ppm
            self._end_hush("co_rising")
        elif self.clock.ticks_diff(now, self._hush_start) >= self._hush_ms:
            self._end_hush("timeout")

    # ------------------------------------------------------------------ relay / outputs
    def _relay_want(self):
        src = self.cfg["relay"]
        if src == "none":
            return False
        lvl = self._ch4_level
        if src == "ch4_low":
            return lvl >= 1
        if src == "ch4_high":
            return lvl >= 2
        if src == "co":
            return self._co_on
        return lvl >= 1 or self._co_on

    def _relay_update(self):
        want = self._relay_want()
        if want and self.cfg["relay_latch"]:
            self.relay_latched = True
        on = want or self.relay_latched
        if self._st_active and self.cfg["self_test_relay"]:
            on = True
        if self.outputs.set_relay(on):
            self.emit({"event": "relay", "state": "on" if on else "off"})

    def reset_latches(self):
        """Manual reset (long press): release a latched relay (only if its cause is gone)
        and clear the peak memory. Returns what was reset."""
        released = False
        if self.relay_latched and not self._relay_want():
            self.relay_latched = False
            released = True
        self.peak_ch4_x10 = 0
        self.peak_co_x10 = 0
        self.emit({"event": "reset", "relay_released": released})
        self._relay_update()
        return {"relay_released": released, "relay_latched": self.relay_latched}

    def _render(self):
        o = self.outputs
        if self._st_active:
            return  # the self-test drives the outputs
        lvl = self._ch4_level
        co = self._co_on
        faulted = self._faulted()
        # red: level 2 steady, level 1 blink, CO double flash
        if lvl >= 2:
            o.red.set(ON)
        elif lvl == 1:
            o.red.set(BLINK_1HZ)
        elif co:
            o.red.set(DOUBLE_FLASH)
        else:
            o.red.set(OFF)
        o.yellow.set(ON if faulted else OFF)
        if lvl or co or faulted:
            o.green.set(OFF)
        elif not self.ready:
            o.green.set(SLOW_BLINK)
        else:
            o.green.set(ON)
        # buzzer: priority high methane > CO > low methane > fault chirp; hush silences
        # everything except a high methane alarm (never hushable).
        if lvl >= 2:
            o.buzzer.set(BEEP_L2)
        elif self.hushed:
            o.buzzer.set(OFF)
        elif co:
            o.buzzer.set(BEEP_CO_T4)
        elif lvl == 1:
            o.buzzer.set(BEEP_L1)
        elif faulted:
            o.buzzer.set(CHIRP, self.cfg["fault_chirp_s"] * 1000 - 100)
        else:
            o.buzzer.set(OFF)

    # ------------------------------------------------------------------ self-test
    def self_test(self):
        """Exercise the chain: sensing (a fresh sample of each channel, faults, calibration),
        the alarm logic (a scratch evaluator on a synthetic leak; the CO dose table against
        the profile's windows) and every output (LEDs, buzzer, optionally the relay).
        Result comes as a self_test event after ~4 s; never actuates the interlock."""
        if self._alarm_sounding():
            return {"started": False, "reason": "alarm_active"}
        if self._st_active:
            return {"started": False, "reason": "running"}
        faults = []
        for gas in ("ch4", "co"):
            ch = self.channels.get(gas)
            if ch is None or (gas == "co" and self.co is None):
                continue
            ch.sample()
            if ch.fault is not None:
                faults.append("%s:%s" % (gas, ch.fault))
        if self.supply is not None and self.supply.fault is not None:
            faults.append(self.supply.fault)
        for f in self._sink_faults:
            if f is not None:
                faults.append(f)
        if self._ilk_missing:
            faults.append("interlock_missing")
        faults.extend(self._logic_check())
        self._st_faults = faults
        self._st_active = True
        self._st_start = self.clock.ticks_ms()
        o = self.outputs
        o.red.set(ON)
        o.yellow.set(ON)
        o.green.set(ON)
        o.buzzer.set(BEEP_L1)
        self._relay_update()
        self.emit({"event": "self_test", "state": "start"})
        return {"started": True, "faults": list(faults)}

    def _logic_check(self):
        bad = []
        m = self.methane.low
        scratch = MethaneLevel(1, m.on_x10, m.off_x10, m.delay_ms, m.clear_ms)
        probe = m.on_x10 + (m.on_x10 * 6) // 10  # 1.6 x set point (GB response-test gas)
        t = 0
        while not scratch.active and t <= m.delay_ms + 1000:
            scratch.update(probe, 1000)
            t += 1000
        if not scratch.active or t < m.delay_ms:
            bad.append("logic_ch4")
        if self.co_alarm is not None:
            for ppm, lo, hi in self.cfg["co_windows"]:
                ts = alarm_time_s(self.co_alarm.rates, ppm)
                if hi is None:
                    if ts is not None and ts < lo:
                        bad.append("logic_co")
                elif ts is None or ts < lo or ts > hi:
                    bad.append("logic_co")
        return bad

    def _self_test_poll(self, now):
        if self._alarm_sounding():
            self._st_finish("aborted")
            return
        el = self.clock.ticks_diff(now, self._st_start)
        o = self.outputs
        if el >= _SELF_TEST_MS:
            self._st_finish("fail" if self._st_faults else "pass")
        elif el >= 3000:
            o.red.set(OFF)
            o.yellow.set(OFF)
            o.green.set(ON)
            o.buzzer.set(OFF)
        elif el >= 2000:
            o.red.set(OFF)
            o.yellow.set(ON)
            o.green.set(OFF)
            o.buzzer.set(OFF)
        elif el >= 1000:
            o.red.set(ON)
            o.yellow.set(OFF)
            o.green.set(OFF)

    def _st_finish(self, result):
        self._st_active = False
        ev = {"event": "self_test", "state": "end", "result": result}
        if self._st_faults:
            ev["faults"] = self._st_faults
        self._st_faults = None
        self.emit(ev)
        self._relay_update()
        self._render()

    # ------------------------------------------------------------------ button
    def button_pressed(self, long=False):
        """Short press: hush when something sounds, else self-test. Long press: reset latches."""
        self.emit({"event": "button", "press": "long" if long else "short"})
        if long:
            return self.reset_latches()
        if self._alarm_sounding() or self._faulted():
            return self.hush()
        return self.self_test()

    def _poll_button(self, now):
        b = self._btn
        if b is None:
            return
        down = b.value() == 1  # logical level: the HAL inverts active-low buttons (Signal)
        if not self._btn_seen_idle:
            if not down:
                self._btn_seen_idle = True
            return
        if down != self._btn_down:
            if down:
                self._btn_down = True
                self._btn_since = now
                self._btn_long_done = False
            else:
                self._btn_down = False
                held = self.clock.ticks_diff(now, self._btn_since)
                if held >= _BTN_DEBOUNCE_MS and not self._btn_long_done:
                    self.button_pressed(False)
        elif down and not self._btn_long_done:
            if self.clock.ticks_diff(now, self._btn_since) >= _BTN_LONG_MS:
                self._btn_long_done = True
                self.button_pressed(True)

    # ------------------------------------------------------------------ misc
    def reload_calibration(self):
        """Re-read the calibration record and apply it to every channel (after CAL COMMIT)."""
        from gasguard import calibration

        rec = calibration.load(self.store)
        for gas, ch in self.channels.items():
            cal = rec.get(gas)
            setter = getattr(ch, "set_calibration", None)
            if setter is not None:
                setter(cal)
                continue
            ch.cal = cal
            ch.cal_problem = None
            try:
                calibration.apply(ch.model, cal)
            except ValueError as e:
                ch.cal_problem = str(e)
            bits = ch.fault_bits & ~F_CAL
            if ch.cal_problem is not None:
                bits |= F_CAL
            ch._set_bits(bits)

    def set_environment(self, temp_c_x10, rh_pct=None):
        """Temperature/humidity for the sensor models' compensation (from the app)."""
        for ch in self.channels.values():
            f = getattr(ch, "set_environment", None)
            if f is not None:
                f(temp_c_x10, rh_pct)

    def alarm_level(self, gas):
        if gas == "ch4":
            return self._ch4_level
        return 1 if self._co_on else 0

    def status(self):
        m = self.methane
        st = {
            "profile": self.cfg["profile"],
            "tier": self.cfg["tier"],
            "ready": self.ready,
            "ch4": {
                "ppm_x10": self.ch4.ppm_x10,
                "pct_lel_x10": (self.ch4.ppm_x10 * 10) // self.cfg["ch4_pct_lel_x10"],
                "raw_uv": self.ch4.raw_uv,
                "fault": self._ch4_fault,
                "warming_up": bool(self.ch4.warming_up),
                "alarm": self._ch4_level,
                "peak_ppm_x10": self.peak_ch4_x10,
                "pending_ms": m.low.pending_ms,
            },
            "hushed": self.hushed,
            "hush_left_s": (self._hush_ms - self.clock.ticks_diff(self.clock.ticks_ms(),
                                                                 self._hush_start)) // 1000
            if self.hushed else 0,
            "relay": self.outputs.relay_on,
            "relay_latched": self.relay_latched,
            "interlock_cause": self.interlock_cause,
            "interlock_requests": self.interlock_count,
            "sink_errors": self.sink_errors,
            "faults": self.faults(),
            "self_test": self._st_active,
            "outputs": list(self.outputs.levels()),
        }
        if self.co is not None:
            st["co"] = {
                "ppm_x10": self.co.ppm_x10,
                "raw_uv": self.co.raw_uv,
                "fault": self._co_fault,
                "warming_up": bool(self.co.warming_up),
                "alarm": 1 if self._co_on else 0,
                "dose_pct": self.co_alarm.dose_pct(),
                "peak_ppm_x10": self.peak_co_x10,
            }
        if self.supply is not None:
            st["supply_mv"] = getattr(self.supply, "millivolts", None)
        return st

    def faults(self):
        out = []
        for gas, ch, bits, code in (("ch4", self.ch4, self._ch4_bits, self._ch4_fault),
                                    ("co", self.co, self._co_bits, self._co_fault)):
            if ch is None:
                continue
            if getattr(ch, "fault_bits", None) is None:
                if code is not None:
                    out.append(gas + ":" + code)
                continue
            for i in range(N_FAULTS):
                if bits & FAULT_BITS[i]:
                    out.append(gas + ":" + FAULT_CODES[i])
        if self._supply_fault is not None:
            out.append(self._supply_fault)
        for f in self._sink_faults:
            if f is not None:
                out.append(f)
        if self._ilk_missing:
            out.append("interlock_missing")
        out.extend(self.refused_faults)
        return out
