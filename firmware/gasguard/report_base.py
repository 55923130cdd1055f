"""Message building half of the Reporter: envelope, counters, state, queues.

gasguard.reporter.Reporter subclasses ReportBase; the split keeps each module small
enough to compile from source in a 112 KiB MicroPython heap (the ESP32 build freezes it).
Attributes used here are set by Reporter.__init__.
"""

from gasguard import protocol


class ReportBase:
    def topic(self, kind):
        return protocol.topic(self.base, self.dev, kind)

    def uptime_ms(self):
        now = self.clock.ticks_ms()
        self._up_ms += self.clock.ticks_diff(now, self._last_tick)
        self._last_tick = now
        return self._up_ms

    def _envelope(self, kind, q=None):
        self.seq += 1
        ts = self.wall.now()
        flags = list(q) if q else []
        if ts is None:
            flags.append("time_unsynced")
        return protocol.envelope(kind, self.ident, self.boot, self.seq, self.uptime_ms(), ts, flags)

    def _counters(self):
        ob = self.outbox
        d = {
            "outbox": len(ob) + len(self._pending),
            "outbox_bytes": ob.live_bytes,
            "dropped_events": ob.dropped,
            "lost_safety": ob.lost_safety,
            "store_errors": ob.store_errors,
            "telemetry_dropped": self.ring.dropped,
            "ram_dropped": self.rq_dropped,
            "bad_events": self.bad_events,
        }
        if self.mqtt is not None:
            d["connects"] = self.mqtt.connects
            d["conn_failures"] = self.mqtt.failures
            d["rx_dropped"] = self.mqtt.rx_dropped
        if self.commands is not None:
            d["cmd_accepted"] = self.commands.accepted
            d["cmd_rejected"] = self.commands.rejected
        return d

    def _state_message(self, online):
        m = self._envelope(protocol.STATE)
        m["online"] = online
        m["tier"] = self.ident.get("tier")
        m["device_kind"] = self.ident.get("kind")
        m["interval_s"] = self.interval_s
        st = self._run_state
        if self.status_fn is not None and online:
            try:
                st = self.status_fn()  # the app's summary, read when the state is sent
            except Exception as e:
                st = {"status_error": type(e).__name__}
        if not isinstance(st, dict) or not protocol.plain(st):
            st = {"status_error": "not_json"}
        m["status"] = st
        m["counters"] = self._counters()
        ob = self.outbox
        if ob.unacked_lost or ob.unacked_dropped:
            # persisted with the outbox: survives reboots until ack_losses (protocol.md)
            m["losses"] = {"lost_safety": ob.unacked_lost, "dropped_events": ob.unacked_dropped}
        return m

    def _arm_will(self):
        m = self._state_message(False)
        m["reason"] = "connection_lost"
        self.mqtt.will = (self.topic(protocol.STATE), protocol.encode(m), 1, True)

    # ---- public API ----------------------------------------------------------------------
    def event(self, ev):
        """Queue one event for delivery; returns its seq. Cheap and I/O-free: the event is
        stamped (seq, uptime, wall time) and kept in RAM; the next poll() (normally later in
        the same loop turn, after the detector has driven its outputs) or flush() writes it
        to the flash outbox. Never drops silently (see outbox.py)."""
        name = ev.get("event") if isinstance(ev, dict) else None
        if not isinstance(name, str) or not name:
            raise ValueError("event dict without a name: %r" % (ev,))
        self.seq += 1
        self._pending.append((self.seq, self.uptime_ms(), self.wall.now(), dict(ev)))
        if protocol.is_safety(name):
            self._state_dirty = True
        if len(self._pending) >= 16:
            self.flush()  # poll() is not being called: do not let RAM grow
        return self.seq

    def flush(self):
        """Write the events queued by event() to the flash outbox now."""
        while self._pending:
            seq, up, ts, ev = self._pending[0]
            name = ev["event"]
            kind = protocol.kind_of_event(name)
            q = None if ts is not None else ["time_unsynced"]
            m = protocol.event_body(protocol.envelope(kind, self.ident, self.boot, seq, up, ts, q), ev)
            try:
                if not protocol.plain(ev):
                    raise TypeError("not JSON data")
                self.outbox.append(self.boot, seq, protocol.KIND_CODES[kind],
                                   0 if protocol.is_safety(name) else 1, protocol.encode(m))
            except (TypeError, ValueError):
                # not JSON-encodable, or larger than the whole outbox: a programming error
                # upstream; counted (state counters: bad_events), never raised into the loop
                self.bad_events += 1
            except MemoryError:
                return  # still queued in RAM, in order: the next poll() tries again
            self._pending.pop(0)

    def send(self, kind, body, persist=True):
        """Send a command_result-like message with the envelope: persistent (outbox) or
        from the small RAM QoS 1 queue (persist=False; returns None when it is full)."""
        if kind not in protocol.DELIVERY or kind in (protocol.STATE, protocol.TELEMETRY):
            raise ValueError("send(): unsupported kind %r" % (kind,))
        m = self._envelope(kind, body.get("q") if isinstance(body, dict) else None)
        for k in body:
            if k != "q":
                m[k] = body[k]
        data = protocol.encode(m)
        if persist:
            self.outbox.append(self.boot, self.seq, protocol.KIND_CODES[kind], 1, data)
        elif not self._rq_push(kind, data):
            return None
        return self.seq

    def identity_send(self, kind, payload):
        """Uplink for gasguard.active_id (reg/hb/rsp): the payload is published verbatim on
        <base>/<dev>/identity (its own HMAC covers it), QoS 1, from a RAM queue of 4.
        Returns False when the queue is full (ActiveId then retries later)."""
        return self._rq_push(protocol.IDENTITY, bytes(payload))

    def _rq_push(self, kind, data):
        if len(self._rq) >= 4:
            self.rq_dropped += 1
            return False
        self._rq.append((kind, data))
        return True

    def attach_identity(self, on_message):
        """Deliver <base>/<dev>/identity_down payloads to on_message(bytes) (ActiveId)."""
        self.on_identity = on_message
        if self.mqtt is not None:
            self.mqtt.subscribe(self.topic("identity_down"), 1)

    def telemetry(self, d):
        """Queue one telemetry reading (RAM ring; the oldest is dropped when full).
        Returns its seq, or None if d is not JSON data (counted in bad_events)."""
        self._last_telemetry = self.clock.ticks_ms()
        self._report_now = False
        if not isinstance(d, dict) or not protocol.plain(d):
            self.bad_events += 1
            return None
        q = d.get("q")
        data = {}
        for k in d:
            if k != "q":
                data[k] = d[k]
        m = self._envelope(protocol.TELEMETRY, q)
        m["data"] = data
        # "dropped" is appended when the message is sent, so it counts the drops up to then
        self.ring.push((protocol.TELEMETRY, protocol.encode(m)))
        return self.seq

    def telemetry_due(self):
        """True when the app should call telemetry(): interval elapsed or report_now asked."""
        if self._report_now or self._last_telemetry is None:
            return True
        return self.clock.ticks_diff(self.clock.ticks_ms(), self._last_telemetry) >= self.interval_s * 1000

    def state(self, d):
        """Set the run state (small dict) carried by the retained state message."""
        if d != self._run_state:
            self._run_state = dict(d)
            self._state_dirty = True
