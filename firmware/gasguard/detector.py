"""The detector: one sample step = gas paths -> alarms -> faults -> outputs -> events.

    det = Detector(board, config, store, emit)
    det.poll()            # call often: one sample step whenever sample_period_ms elapsed,
                          # the button, output patterns and interlock sinks every call
    det.step()            # exactly one sample step now
    det.interlocks        # interlock sinks: det.interlocks.append(sink); close(cause) is called
    det.close(cause)      # the one path that closes them (alarms, ITEST "test", "remote")
    det.gases             # the gas paths, methane first: Gas(name, channel, alarm, ...)
    det.channels          # {"ch4": Channel, "co": Channel} (co absent on tier low)
    det.status()          # dict for diagnostics / telemetry
    det.hush(), det.self_test(), det.button_pressed(long=False), det.reset_latches()

The Detector orchestrates; each job has one owner: a gas path (`Gas`: its channel's faults,
its reading, its alarm, peak and level), the device faults (`Faults`: supply, interlock
outputs, refused records), the hush (`Hush`), the indications (`Outputs.show`), the button
(`button.Button`), the self-test (`gasguard.selftest`, loaded only while a test runs),
the config check and assembly (`gasguard.profiles`, boot/CFG-time only) and the alarm
decisions (`methane_alarm`, `co_alarm`).

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

from gasguard.sensing import FAULT_BITS, FAULT_CODES, N_FAULTS

# faults that leave the reading usable (the channel still converts on the nominal model)
_READING_OK = ("cal_missing", "end_of_life")
_SHUT = ("closing", "confirmed")  # a sink in these states needs no new close request


def _fault(emit, old, new, gas):
    """Fault events for a fault given only as its top code (gas None: a device fault)."""
    if old is not None:
        ev = {"event": "fault", "code": old, "state": "off"}
        if gas is not None:
            ev["gas"] = gas
        emit(ev)
    if new is not None:
        ev = {"event": "fault", "code": new, "state": "on"}
        if gas is not None:
            ev["gas"] = gas
        emit(ev)


class Gas:
    """One gas path: its channel's faults, its reading, its alarm (MethaneAlarm or COAlarm:
    update() -> changed level bits, state() -> active level bits), peak and level.
    ilk / relay: the level that closes the interlocks (with `cause`) / drives the relay
    (0: never); hi: an over-range reading counts as at least this (0: no such rule)."""

    def __init__(self, name, ch, alarm, ilk, cause, relay, hi):
        self.name = name
        self.ch = ch
        self.alarm = alarm
        self.ilk = ilk
        self.cause = cause
        self.relay = relay
        self.hi = hi
        self.bits = 0
        self.fault = None
        self.peak = 0
        self.level = 0

    def scan(self, emit):
        """Emit a fault event for every channel fault that came or went."""
        ch = self.ch
        bits = getattr(ch, "fault_bits", None)
        if bits is None:  # a channel that only reports its top fault code
            if ch.fault != self.fault:
                _fault(emit, self.fault, ch.fault, self.name)
            bits = 0
        else:
            c = bits ^ self.bits
            if c:  # the faults that went first, then the ones that came
                for on in (False, True):
                    w = bits if on else self.bits
                    i = 0
                    while i < N_FAULTS:
                        m = FAULT_BITS[i]
                        if c & m and w & m:
                            emit({"event": "fault", "code": FAULT_CODES[i], "gas": self.name,
                                  "state": "on" if on else "off"})
                        i += 1
        self.bits = bits
        self.fault = ch.fault

    def codes(self, out):
        """Append this path's faults as "gas:code"."""
        if getattr(self.ch, "fault_bits", None) is None:
            if self.fault is not None:
                out.append(self.name + ":" + self.fault)
            return
        for i in range(N_FAULTS):
            if self.bits & FAULT_BITS[i]:
                out.append(self.name + ":" + FAULT_CODES[i])

    def status(self):
        ch = self.ch
        d = {"ppm_x10": ch.ppm_x10, "raw_uv": ch.raw_uv, "fault": self.fault,
             "warming_up": bool(ch.warming_up), "alarm": self.level, "peak_ppm_x10": self.peak}
        self.alarm.info(d)
        return d


class Faults:
    """The faults outside the gas channels: supply, the interlock outputs (each sink's
    fault; a required interlock missing) and what the app refused at boot."""

    def __init__(self, det):
        self.det = det
        self.supply = None
        self.sinks = []  # per sink: its fault code or None
        self.missing = False

    def scan(self):
        det = self.det
        emit = det.emit
        sup = det.supply
        if sup is not None and sup.fault != self.supply:
            _fault(emit, self.supply, sup.fault, None)
            self.supply = sup.fault
        sinks = det.interlocks
        sf = self.sinks
        while len(sf) < len(sinks):
            sf.append(None)
        i = 0
        for s in sinks:
            f = getattr(s, "fault", None)
            if f != sf[i]:
                if sf[i] is not None:
                    emit({"event": "fault", "code": sf[i], "state": "off", "sink": i})
                if f is not None:
                    emit({"event": "fault", "code": f, "state": "on", "sink": i})
                sf[i] = f
            i += 1
        missing = det.cfg["interlock_required"] and not sinks
        if missing != self.missing:
            self.missing = missing
            emit({"event": "fault", "code": "interlock_missing",
                  "state": "on" if missing else "off"})

    def sink(self):
        for f in self.sinks:
            if f is not None:
                return True
        return False

    def word(self):
        """As bits (allocation-free; docs/modbus.md): 1 supply, 2 interlock required but
        missing, 4 an interlock output reports a fault, 8 a stored record refused at boot."""
        v = 1 if self.supply is not None else 0
        if self.missing:
            v |= 2
        if self.sink():
            v |= 4
        if self.det.refused_faults:
            v |= 8
        return v

    def codes(self, out, refused=True):
        if self.supply is not None:
            out.append(self.supply)
        for f in self.sinks:
            if f is not None:
                out.append(f)
        if self.missing:
            out.append("interlock_missing")
        if refused:
            out.extend(self.det.refused_faults)


class Hush:
    """Silencing the buzzer (docs/alarms.md "Hush"): one window at a time, at most hush_max
    per alarm episode, the CO baseline taken at the episode's first hush and never reset;
    a high methane alarm is never silenced. Sets det.hushed."""

    def __init__(self, det):
        cfg = det.cfg
        self.det = det
        self.start = 0
        self.dose = 0
        self.co_x10 = 0
        self.count = 0  # hushes in this alarm episode (0 again when all alarms clear)
        self.ms = cfg["hush_s"] * 1000
        # of an alarm dose, co_alarm.DOSE_FULL = 1 << 24 (written out: a methane-only
        # detector never loads gasguard.co_alarm; test_detector_core pins the two)
        self.rise = ((1 << 24) * cfg["hush_co_rise_pct"]) // 100
        self.co_max = cfg["hush_co_max_ppm"] * 10

    def ask(self):
        det = self.det
        cfg = det.cfg
        co = det._co
        reason = None
        sounding = det._sounding()
        if det.gases[0].level >= 2:
            reason = "ch4_high"  # never silenced
        elif not (sounding or det.any_fault()):
            return {"hushed": False, "reason": "nothing_to_hush"}
        elif det.hushed:
            reason = "already_hushed"  # a second HUSH does not extend the window
        elif co is not None and co.level and co.ch.ppm_x10 > self.co_max:
            reason = "co_high"
        elif sounding and self.count >= cfg["hush_max"]:
            reason = "hush_limit"  # this episode's hushes are used up: it sounds until clear
        if reason is not None:
            det.emit({"event": "hush", "state": "refused", "reason": reason})
            return {"hushed": False, "reason": reason}
        if sounding:
            if self.count == 0 and co is not None:
                self.dose = co.alarm.dose  # the episode's baseline, kept
                self.co_x10 = co.ch.ppm_x10
            self.count += 1
        det.hushed = True
        self.start = det.clock.ticks_ms()
        det.emit({"event": "hush", "state": "on", "seconds": cfg["hush_s"], "count": self.count})
        det._render()
        return {"hushed": True, "seconds": cfg["hush_s"], "count": self.count,
                "max": cfg["hush_max"]}

    def check(self, now):
        det = self.det
        if not det._sounding():
            self.count = 0  # the alarm episode is over: the next one may be hushed
        if not det.hushed:
            return
        co = det._co
        if det.gases[0].level >= 2:
            self.end("ch4_high")
        elif co is not None and co.fault is None and (
                co.ch.ppm_x10 > self.co_max
                or (self.count and (
                    co.alarm.dose - self.dose >= self.rise
                    or co.ch.ppm_x10 > self.co_x10 + self.co_x10 // 5 + 100))):
            # above the level no hush is allowed, or since the episode's first hush the dose
            # grew by hush_co_rise_pct of an alarm dose or the concentration by 20 % + 10 ppm
            self.end("co_rising")
        elif det.clock.ticks_diff(now, self.start) >= self.ms:
            self.end("timeout")

    def end(self, reason):
        self.det.hushed = False
        try:
            self.det.emit({"event": "hush", "state": "off", "reason": reason})
        except MemoryError:
            self.det.events_lost += 1

    def left_s(self):
        det = self.det
        if not det.hushed:
            return 0
        return (self.ms - det.clock.ticks_diff(det.clock.ticks_ms(), self.start)) // 1000


class Detector:
    def __init__(self, board, config, store, emit, channels=None, supply=None):
        # the config check, the inputs it needs and the wiring of the parts: boot/CFG-time
        # code (lazy.BOOT_ONLY), loaded one builder at a time and each released before the
        # next loads (the boot's peak, docs/heap-budget.md): the check (profiles), the
        # channels and the supply monitor (sensors, calibration), the wiring (profiles
        # again). ConfigError before anything is built
        from gasguard import lazy, profiles

        # Events without room under a full heap (issue 10): the alarm path never waits for
        # or fails on them (docs/heap-budget.md "The alarm path under a full heap"); each
        # one lost is counted here
        self.events_lost = 0
        cfg = profiles.load(config)
        profiles = rec = None
        lazy.release("profiles")
        if channels is None and store is not None:
            from gasguard import calibration

            rec = calibration.load(store)  # the stored record, applied to the new channels
            calibration = None
        from gasguard import sensors

        channels, supply = sensors.inputs(board, cfg, rec, channels, supply)
        sensors = rec = None
        lazy.release("sensors", "calibration")
        from gasguard import profiles

        # the builder gets this module's parts as arguments (it does not import them back:
        # no import cycle, docs/architecture.md)
        profiles.build_detector(self, (Gas, Faults, Hush), board, cfg, emit, channels, supply)
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
        if self.button is not None:
            self.button.poll()
        if self._st is not None:
            self._st.poll(self, now)
        for s in self.interlocks:
            try:
                s.poll()
            except Exception as e:  # a sink's bug must never stop the alarm path
                self._sink_error(s, e)
        self.outputs.poll()

    def _sink_error(self, sink, e):
        self.sink_errors += 1
        # the exception itself: its text would need room, which a full heap does not have
        self.last_sink_error = e

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
        gases = self.gases
        for g in gases:
            g.ch.sample()
        if self.supply is not None:
            self.supply.sample()

        # ---- faults (explicit states, never a silent 0 ppm)
        warming = False
        try:  # (an event without room: lost, counted; the fault state follows on the next step)
            for g in gases:
                g.scan(self.emit)
                if g.ch.warming_up:
                    warming = True
            self._flt.scan()
        except MemoryError:
            warming = True  # (not ready on a step that could not see every channel)
            self.events_lost += 1

        # ---- warm-up / ready
        if not self.ready:
            try:  # (the state first: only the event may find no room)
                if not warming:
                    self.ready = True
                    self.emit({"event": "ready"})
                elif not self._warm:
                    self._warm = True
                    self.emit({"event": "warmup", "state": "on"})
            except MemoryError:
                self.events_lost += 1

        # ---- alarms (a faulted channel holds its alarm state: no all-clear from bad data)
        for g in gases:
            f = g.fault
            if f is None or f in _READING_OK:
                ch = g.ch
                x = ch.ppm_x10
                if x > g.peak:
                    g.peak = x
                if x < g.hi and getattr(ch, "over_range", False):
                    # a saturated sensor cannot tell how big the leak is: treat it as at
                    # least the high set point (the sensor's range may end below it)
                    x = g.hi
                c = g.alarm.update(x, dt, ch.warming_up)
                if c:
                    self._alarm(g, c)

        self._reassert()
        self._hush.check(now)
        self._relay_update()
        self._render()

    def _alarm(self, g, c):
        """Events of the alarm levels that changed (c: bits), then what a rise starts."""
        s = g.alarm.state()
        emit = self.emit
        # order: level 1 on before level 2 on; level 2 off before level 1 off
        # (under a full heap the events may find no room: lost, counted once, and the level,
        # the hush, the close, the relay and the indications below go on regardless)
        try:
            if c & 1 and s & 1:
                emit({"event": "alarm", "gas": g.name, "level": 1, "state": "on"})
            if c & 2:
                emit({"event": "alarm", "gas": g.name, "level": 2, "state": "on" if s & 2 else "off"})
            if c & 1 and not s & 1:
                emit({"event": "alarm", "gas": g.name, "level": 1, "state": "off"})
        except MemoryError:
            self.events_lost += 1
        old = g.level
        lvl = 2 if s & 2 else s
        g.level = lvl
        if lvl > old:
            if self.hushed:  # a new alarm (a level rising) always ends a hush
                self._hush.end("new_alarm")
            if g.ilk and old < g.ilk <= lvl:
                self.interlock_cause = g.cause
                self.interlock_count += 1
                self.close(g.cause)

    def close(self, cause, again=False):
        """The one path that closes the interlocks: every sink is asked (a failing one is
        counted and never stops the others) and an interlock event is logged; returns how
        many sinks were asked. Alarms (ch4_low, ch4_high, co), ITEST ("test") and a remote
        command ("remote") all come here. again: the alarm still demands it, ask only the
        sinks that are not closing or closed already, without an event."""
        sinks = self.interlocks
        for s in sinks:
            if again and getattr(s, "state", None) in _SHUT:
                continue
            try:
                s.close(cause)
            except Exception as e:
                self._sink_error(s, e)
            n = getattr(s, "events_lost", 0)  # a sink's own event lost after it closed (wired)
            if n:
                self.events_lost += n
                s.events_lost = 0
        if not again:  # after the sinks: without room the event is lost (counted), not the close
            try:
                self.emit({"event": "interlock", "state": "close", "cause": cause,
                           "sinks": len(sinks)})
            except MemoryError:
                self.events_lost += 1
        return len(sinks)

    def _reassert(self):
        """While the alarm that demanded the valve closed persists, keep asking: a valve
        reopened by hand during the alarm is closed again, and a request that failed
        (radio out of range) starts over. Sinks are idempotent: close() on a closing or
        confirmed sink does nothing, so this costs nothing while the valve is shut."""
        if not self.interlocks or self.interlock_cause is None:
            return
        for g in self.gases:
            if g.ilk and g.level >= g.ilk:
                self.close(g.cause, True)
                return

    # ------------------------------------------------------------------ state
    def _sounding(self):
        for g in self.gases:
            if g.level:
                return True
        return False

    def any_fault(self):
        """True while any fault is active (allocation-free, for the Modbus state word)."""
        for g in self.gases:
            if g.fault is not None:
                return True
        f = self._flt
        return (f.supply is not None or f.missing or f.sink() or bool(self.refused_faults))

    def device_faults(self):
        """The faults outside the gas channels as bits (Faults.word, docs/modbus.md)."""
        return self._flt.word()

    def alarm_level(self, gas):
        for g in self.gases:
            if g.name == gas:
                return g.level
        return 0

    def hush(self):
        """Silence the buzzer for hush_s (docs/alarms.md "Hush"). Returns what happened:
        {"hushed": True, "seconds": window, ...} or {"hushed": False, "reason": code}."""
        return self._hush.ask()

    # ------------------------------------------------------------------ relay / outputs
    def _relay_want(self):
        for g in self.gases:
            if g.relay and g.level >= g.relay:
                return True
        return False

    def _relay_update(self):
        want = self._relay_want()
        if want and self.cfg["relay_latch"]:
            self.relay_latched = True
        on = want or self.relay_latched
        if self._st is not None and self.cfg["self_test_relay"]:
            on = True
        if self.outputs.set_relay(on):
            try:  # (the relay is set: only the event may find no room)
                self.emit({"event": "relay", "state": "on" if on else "off"})
            except MemoryError:
                self.events_lost += 1

    def reset_latches(self):
        """Manual reset (long press): release a latched relay (only if its cause is gone)
        and clear the peak memory. Returns what was reset."""
        released = False
        if self.relay_latched and not self._relay_want():
            self.relay_latched = False
            released = True
        for g in self.gases:
            g.peak = 0
        self.emit({"event": "reset", "relay_released": released})
        self._relay_update()
        return {"relay_released": released, "relay_latched": self.relay_latched}

    def _render(self):
        if self._st is None:  # else the self-test drives the outputs
            co = self._co
            self.outputs.show(self.gases[0].level, co is not None and co.level, self.any_fault(),
                              self.ready, self.hushed, self._chirp)

    # ------------------------------------------------------------------ self-test
    def self_test(self):
        """Exercise the chain: sensing (a fresh sample of each channel, faults, calibration),
        the alarm logic (a scratch evaluator on a synthetic leak; the CO dose table against
        the profile's windows) and every output (LEDs, buzzer, optionally the relay).
        Result comes as a self_test event after ~4 s; never actuates the interlock.
        The code (gasguard.selftest) is loaded for the test and released after it."""
        if self._sounding():
            return {"started": False, "reason": "alarm_active"}
        if self._st is not None:
            return {"started": False, "reason": "running"}
        try:
            from gasguard.selftest import SelfTest

            st = SelfTest(self)  # drives the outputs, emits the start; ends itself
        except Exception:  # a MemoryError loading it: no test, the alarm path goes on
            return {"started": False, "reason": "unavailable"}
        return {"started": True, "faults": list(st.faults)}

    # ------------------------------------------------------------------ button
    def button_pressed(self, long=False):
        """Short press: hush when something sounds, else self-test. Long press: reset latches."""
        self.emit({"event": "button", "press": "long" if long else "short"})
        if long:
            return self.reset_latches()
        if self._sounding() or self.any_fault():
            return self.hush()
        return self.self_test()

    def _hold(self):
        self.button_pressed(True)

    # ------------------------------------------------------------------ misc
    def set_environment(self, temp_c_x10, rh_pct=None):
        """Temperature/humidity for the sensor models' compensation (from the app)."""
        for ch in self.channels.values():
            f = getattr(ch, "set_environment", None)
            if f is not None:
                f(temp_c_x10, rh_pct)

    def status(self):
        g = self.gases
        st = {"profile": self.cfg["profile"], "tier": self.cfg["tier"], "ready": self.ready,
              "hushed": self.hushed, "hush_left_s": self._hush.left_s(),
              "relay": self.outputs.relay_on, "relay_latched": self.relay_latched,
              "interlock_cause": self.interlock_cause,
              "interlock_requests": self.interlock_count, "sink_errors": self.sink_errors,
              "events_lost": self.events_lost,
              "faults": self.faults(), "self_test": self._st is not None,
              "outputs": list(self.outputs.levels())}
        for p in g:  # the detector's gases, whatever they are
            st[p.name] = p.status()
        if self.supply is not None:
            st["supply_mv"] = getattr(self.supply, "millivolts", None)
        return st

    def faults(self):
        out = []
        for g in self.gases:
            g.codes(out)
        self._flt.codes(out)
        return out
