"""The safety self-closing valve controller: position, trip coil, why it closed.

The valve itself closes mechanically on over-pressure, under-pressure and excess flow
and latches closed (CJ/T 447-2014); it is reopened by hand. This controller
  * watches the open/closed switch (debounced) and reports every change,
  * drives the trip coil when the interlock (or link supervision, or a local/platform
    request, or the electronic backup of a mechanical trip point) asks for a close,
  * classifies *why* the valve closed: interlock, over_pressure, under_pressure,
    over_flow, manual, link_lost or unknown,
  * detects a manual reopening and reports it ("manual_reset"). It never opens the
    valve: there is no code path that could, and the trip coil can only close.

Board object (duck-typed, see docs/valve.md): clock, switch (digital in), trip
(digital out), pressure (analog in or None), flow (analog in, or a counter with
value(), or None), supply (analog in or None), radio (or None).
Defaults and their sources: docs/valve.md.
"""

from gasguard import record

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


INVALID = const(-(1 << 29))
_LAST_NAME = "valve_last"
_CLAMP = const(3200000)


def _nop(ev):
    pass


def __getattr__(name):
    """valve_config, CLOSE_CAUSES, pa_to_uv, ... stay importable from here; gasguard.valve_cfg
    is boot/CFG-time code, loaded when asked for and released after boot (gasguard.lazy)."""
    from gasguard import valve_cfg

    try:
        return getattr(valve_cfg, name)
    except AttributeError:
        raise AttributeError(name)


class ValveController:
    """Step machine; call poll() often (every 10-50 ms). Never blocks, never opens."""

    def __init__(self, board, cfg, store, emit=None, rand=None):
        from gasguard.valve_cfg import CLOSE_CAUSES, valve_config

        self.cfg = c = valve_config(cfg)  # plain data: nothing here keeps valve_cfg loaded
        self.causes = CLOSE_CAUSES
        self.board = board
        self.clock = board.clock
        self.store = store
        self.emit = emit or _nop
        self.trip = board.trip
        self.trip.value(0)
        self.switch = board.switch
        self.pressure_in = getattr(board, "pressure", None)
        self.flow_in = getattr(board, "flow", None) if c["flow_mode"] != "none" else None
        self.supply_in = getattr(board, "supply", None)
        n = c["classify_window_ms"] // c["sample_ms"] + 1
        self._p_ring = [INVALID] * n
        self._f_ring = [INVALID] * n
        self._ring_i = 0
        self.pressure_pa = None
        self.flow_m3h_x1000 = None
        self.supply_mv = None
        self.faults = []
        self.counters = {"closes": 0, "reopens": 0, "trips": 0, "trip_retries": 0, "remote_closes": 0}
        self.last_close_latency_ms = None
        now = self.clock.ticks_ms()
        closed = self.switch.value() == c["switch_closed_level"]
        self._stable_closed = self._cand = closed
        self._cand_since = now
        self.state = "closed" if closed else "open"
        self.cause = None
        if closed:  # closed since before this boot: the cause saved when it closed
            self.cause = "unknown"
            try:
                name = record.unseal(store.read(_LAST_NAME), 1).decode()
                if name in self.causes:
                    self.cause = name
            except (record.RecordError, OSError, ValueError):
                pass
        self._trip_cause = self._trip_source = self._backup_cause = self._flow_count = None
        self._trip_started = self._pulse_end = self._backup_since = now
        self._sample_at = self._supply_at = self._flow_ms = now
        self._pulse_on = False
        self._tries = self._flow_rate = 0
        # under a full heap (issue 10) an event may find no room: the trip, the coil and the
        # state never depend on it; each lost event is counted here, each exception out of
        # the link (its own failure, never the valve's) in link_errors
        self.events_lost = self.link_errors = 0
        self.link = None
        radio = getattr(board, "radio", None)
        if radio is not None:
            from gasguard.valve_link import ValveLink

            self.link = ValveLink(radio, self.clock, store, c["link"], self.emit, rand, self._remote_close,
                                  self._state_pair)
        self._link_state = self.link.link if self.link else "none"

    # --- requests to close -------------------------------------------------
    def close(self, cause="manual", source="local"):
        """Close the valve (local button, platform command). cause must be a close cause."""
        if cause not in self.causes:
            raise ValueError("unknown close cause %r" % cause)
        self._trip(cause, source)

    def _remote_close(self, request):
        self.counters["remote_closes"] += 1
        self._trip("interlock", request)

    def _trip(self, cause, source):
        if self._stable_closed and self._cand:
            return  # closed, and the switch is not on its way to open
        if self._trip_cause is not None:
            return  # already closing: idempotent
        now = self.clock.ticks_ms()
        self._trip_cause = cause
        self._trip_source = source
        self._trip_started = now
        self._tries = 0
        self.counters["trips"] += 1
        self._coil(now)
        self.state = "closing"
        try:
            self.emit({"event": "valve", "state": "closing", "cause": cause, "source": source})
        except MemoryError:
            self.events_lost += 1

    def _coil(self, now=None):
        """Energise the trip coil for trip_pulse_ms from now; None: release it."""
        if now is not None:
            self.trip.value(1)
            self._pulse_on = True
            self._pulse_end = self.clock.ticks_add(now, self.cfg["trip_pulse_ms"])
        elif self._pulse_on:
            self.trip.value(0)
            self._pulse_on = False

    def _state_pair(self):
        """What the link reports. "closed" only when the switch agrees, debounced and raw."""
        cause = self.cause or "none"
        if "valve_stuck_open" in self.faults:
            return "fault", cause
        if self._trip_cause is not None:
            return "closing", cause
        if self._stable_closed == self._cand:
            return self.state, cause
        return "unknown", cause  # a change of the switch is being debounced

    def pair_button(self, force=False, *args):
        if self.link is not None:  # args: (app,) whose LEDs show a failed window (pair_note)
            self.link.pair_button(force, *args)

    # --- the step ----------------------------------------------------------
    def poll(self):
        clock = self.clock
        now = clock.ticks_ms()
        c = self.cfg
        if clock.ticks_diff(now, self._sample_at) >= 0:
            self._sample_at = clock.ticks_add(now, c["sample_ms"])
            self._sample(now)
        if self.supply_in is not None and clock.ticks_diff(now, self._supply_at) >= 0:
            self._supply_at = clock.ticks_add(now, c["supply_ms"])
            self.supply_mv = (self.supply_in.read_uv() // 1000) * c["_s_x1000"] // 1000
            self._fault("supply_low", self.supply_mv < c["supply_low_mv"])
        self._debounce(now)
        self._drive(now)
        if self.link is not None:
            try:
                self.link.poll()
            except Exception:  # (a MemoryError in a heartbeat): the valve goes on, the link retries
                self.link_errors += 1
            ls = self.link.link
            if ls != self._link_state:
                self._link_state = ls
                if ls == "lost" and c["link_lost_action"] == "close" and self.state == "open":
                    self._trip("link_lost", "supervision")

    def _sample(self, now):
        c = self.cfg
        p = INVALID
        if self.pressure_in is not None:
            uv = self.pressure_in.read_uv()
            ok = c["pressure_uv_min"] <= uv <= c["pressure_uv_max"]
            self._fault("pressure_sensor", not ok)
            if ok:
                p = max(0, ((uv - c["pressure_uv_zero"]) * c["_p_gain"]) >> c["_p_shift"])
        f = INVALID
        if self.flow_in is None:
            pass
        elif c["flow_mode"] == "analog":
            f = max(0, (min(self.flow_in.read_uv() - c["flow_uv_zero"], _CLAMP) * c["_f_gain"])
                    >> c["_f_shift"])
        else:  # pulse counter: the rate over the last flow_window_ms
            count = self.flow_in.value()
            dt = c["flow_window_ms"]
            if self._flow_count is None:
                self._flow_rate = 0
            else:
                dt = self.clock.ticks_diff(now, self._flow_ms)
                if dt >= c["flow_window_ms"]:
                    # a counter that wrapped or was reset counts 0
                    self._flow_rate = min(max(0, count - self._flow_count), 1000) * (c["_flow_k"] // dt)
            if dt >= c["flow_window_ms"]:
                self._flow_count = count
                self._flow_ms = now
            f = self._flow_rate
        self.pressure_pa = None if p == INVALID else p
        self.flow_m3h_x1000 = None if f == INVALID else f
        i = self._ring_i
        self._p_ring[i] = p
        self._f_ring[i] = f
        self._ring_i = (i + 1) % len(self._p_ring)
        if not c["backup_trip"] or self.state != "open":
            return
        # the electronic backup of the mechanical trip points: beyond the tolerance band,
        # confirmed for backup_confirm_ms
        cause = None
        if p != INVALID:
            if p >= c["_p_over_backup"]:
                cause = "over_pressure"
            elif p <= c["_p_under_backup"]:
                cause = "under_pressure"
        if cause is None and f != INVALID and f >= c["_flow_backup"]:
            cause = "over_flow"
        if cause != self._backup_cause:
            self._backup_cause = cause
            self._backup_since = now
        elif cause is not None and self.clock.ticks_diff(now, self._backup_since) >= c["backup_confirm_ms"]:
            self._trip(cause, "backup")

    def _debounce(self, now):
        closed = self.switch.value() == self.cfg["switch_closed_level"]
        if closed != self._cand:
            self._cand = closed
            self._cand_since = now
            return
        if closed == self._stable_closed or \
                self.clock.ticks_diff(now, self._cand_since) < self.cfg["switch_debounce_ms"]:
            return
        self._stable_closed = closed
        if closed:
            cause = self._classify(now)
            src = self._trip_source if cause == self._trip_cause else None
            if self._trip_cause is not None:
                self.last_close_latency_ms = self.clock.ticks_diff(now, self._trip_started)
            self._trip_cause = None
            self._trip_source = None
            self._coil()
            self.state = "closed"
            self.cause = cause
            self.counters["closes"] += 1
            self._fault("valve_stuck_open", False)
            try:  # one write per close: the cause survives a reboot
                self.store.write(_LAST_NAME, record.seal(cause.encode(), 1))
            except OSError:
                self._fault("store_error", True)
            except MemoryError:  # no room for the record: closed all the same, counted
                self.events_lost += 1
            try:
                ev = {"event": "valve", "state": "closed", "cause": cause}
                if src is not None:
                    ev["source"] = src
                self.emit(ev)
            except MemoryError:
                self.events_lost += 1
            if self.link is not None:
                try:
                    self.link.valve_closed()
                except Exception:  # the link's own failure (no room): it reports again later
                    self.link_errors += 1
            return
        # reopened, by hand. A trip commanded while this was being debounced still stands.
        if self._trip_cause is not None and self.clock.ticks_diff(self._trip_started, self._cand_since) >= 0:
            self.state = "closing"
        else:
            self._trip_cause = None
            self._coil()
            self.state = "open"
        self._backup_cause = None
        self.cause = None
        self.counters["reopens"] += 1
        try:
            self.emit({"event": "valve", "state": "open", "cause": "manual_reset"})
        except MemoryError:
            self.events_lost += 1

    def _classify(self, now):
        c = self.cfg
        if self._trip_cause is not None and self.clock.ticks_diff(now, self._trip_started) <= c["attribution_ms"]:
            return self._trip_cause
        pmax = fmax = INVALID
        pmin = 1 << 29
        for v in self._p_ring:
            if v != INVALID:
                pmax = max(pmax, v)
                pmin = min(pmin, v)
        for v in self._f_ring:
            fmax = max(fmax, v)
        # (a ring holds INVALID where there was no reading: a max above it is a reading)
        if pmax != INVALID and pmax >= c["_p_over_classify"]:
            return "over_pressure"
        if fmax != INVALID and fmax >= c["_flow_classify"]:
            return "over_flow"
        if pmax != INVALID and pmin <= c["_p_under_classify"]:
            return "under_pressure"
        if pmax != INVALID or fmax != INVALID:
            return "manual"  # supply was normal: a hand closed it
        return "unknown"

    def _drive(self, now):
        if self._pulse_on and self.clock.ticks_diff(now, self._pulse_end) >= 0:
            self._coil()
        if self._trip_cause is None or self._stable_closed:
            return
        if self.clock.ticks_diff(now, self._trip_started) >= (self._tries + 1) * self.cfg["close_time_ms"]:
            if self._tries < self.cfg["trip_retries"]:
                self._tries += 1
                self.counters["trip_retries"] += 1
                self._coil(now)
            elif "valve_stuck_open" not in self.faults:
                self._fault("valve_stuck_open", True)

    def _fault(self, code, on):
        if on != (code in self.faults):
            if on:
                self.faults.append(code)
            else:
                self.faults.remove(code)
            try:
                self.emit({"event": "fault", "code": code, "state": "on" if on else "off"})
            except MemoryError:
                self.events_lost += 1

    def status(self):
        d = {
            "valve": "fault" if "valve_stuck_open" in self.faults else self.state,
            "cause": self.cause,
            "link": self.link.link if self.link else "none",
            "pressure_pa": self.pressure_pa,
            "flow_m3h_x1000": self.flow_m3h_x1000,
            "supply_mv": self.supply_mv,
            "faults": list(self.faults),
            # events it could not build (full heap) and link failures: counted, reported
            "counters": dict(self.counters, events_lost=self.events_lost,
                             link_errors=self.link_errors),
        }
        if self.link is not None:
            d["link_detail"] = self.link.status()
            d["counters"]["rejected_frames"] = self.link.rejected_total()
        return d
