"""Reporting to the platform: events -> outbox -> MQTT, telemetry ring, state, commands.

    rep = Reporter(clock, store, identity_info, cfg, transport, handler=None, key=None,
                   ssl_context=None, rand=None, boot=None)
    rep.event(ev)        # any event dict -> persistent outbox (QoS 1); returns its seq
    rep.telemetry(d)     # telemetry dict -> RAM ring (QoS 0, drop oldest, counted)
    rep.telemetry_due()  # True when interval_s passed or report_now was commanded
    rep.state(d)         # run state for the retained state message (sent when changed)
    rep.send(kind, body) # command_result-like messages with the envelope (outbox)
    rep.identity_send(kind, payload) -> bool   # verbatim identity uplink (ActiveId's send)
    rep.attach_identity(fn)                    # identity_down payloads -> fn(bytes)
    rep.poll()           # bounded, non-blocking: MQTT I/O, deliveries, SNTP, commands
    rep.status()         # counters for diagnostics; rep.online; rep.boot; rep.interval_s
    rep.close()          # graceful: retained offline state, then DISCONNECT

identity_info: {"device_id", "fw", "tier", "kind"} (contracts.md). transport: the socket
module (usocket/socket) or None for a device without network; handler: the object
with hush(), self_test(), report_now(), set_interval(seconds), close_valve() that
downlink commands call (any subset; missing ones answer "unsupported"); key: the
device key (bytes) for command authentication.

Nothing here blocks: event() appends one record to the store (flash, ~one page write;
see docs/protocol.md for the measured cost) and returns; the network is only touched in
poll(), through the non-blocking MQTT client. The protocol is in docs/protocol.md.
"""

from gasguard import protocol
from gasguard.mqtt import MQTTClient
from gasguard.outbox import Outbox
from gasguard.report_cfg import DEFAULTS, check_ident, configure, next_boot  # noqa: F401
from gasguard.telemetry import TelemetryRing
from gasguard.walltime import WallTime

_STATE_KEY = (-1, -1)


class Reporter:
    def __init__(self, clock, store, identity_info, cfg, transport, handler=None, key=None,
                 ssl_context=None, rand=None, boot=None):
        check_ident(identity_info)
        c = configure(cfg)
        self.base = c["base"]
        self.window = c["window"]
        self.interval_s = c["interval_s"]
        self.max_per_poll = c["max_per_poll"]
        self.clock = clock
        self.store = store
        self.ident = identity_info
        self.dev = identity_info["device_id"]
        self.handler = handler
        # our own persistent counter, raised to the app's boot counter when it passes one
        # (so event data and envelope agree) but never repeating a value we used before
        at_least = boot - 1 if isinstance(boot, int) and boot > 0 else 0
        self.boot = next_boot(store, at_least)
        self.seq = 0
        self._up_ms = 0
        self._last_tick = clock.ticks_ms()
        self._last_telemetry = None
        self._report_now = False
        self.outbox = Outbox(store, "outbox", c["outbox_bytes"], c["outbox_reserve"])
        for e in self.outbox.entries:
            # a boot counter that could not be written must not repeat a (boot, seq) key
            if e[0] >= self.boot:
                self.boot = next_boot(store, max(e[0], self.boot))
        self.ring = TelemetryRing(c["telemetry_slots"])
        ntp = c["ntp_server"]
        self.wall = WallTime(clock, transport if ntp else None, ntp, c["ntp_port"],
                             resync_s=c["ntp_resync_s"], rand=rand)
        self.commands = None
        if c["commands"]:
            from gasguard.commands import Commands  # only on devices that take commands

            self.commands = Commands(self.dev, key, store, handler, self.wall, c["cmd_window_s"],
                                     {"report_now": self._cmd_report_now,
                                      "set_interval": self._cmd_set_interval})
        self._idq = []  # identity uplinks waiting for the connection
        self.on_identity = None
        self._run_state = {}
        self._state_dirty = True
        self._pid_key = {}  # MQTT packet id -> (boot, seq) of the outbox message
        self._inflight = {}  # (boot, seq) -> pid
        self._tried = {}  # (boot, seq) already sent once (re-sends carry DUP)
        self.published = 0
        self.mqtt = None
        if transport is not None:
            mc = dict(c["mqtt"] or {})
            mc.setdefault("client_id", self.dev)
            self.mqtt = MQTTClient(clock, transport, mc, None, ssl_context, rand)
            self.mqtt.on_connect = self._on_connect
            self.mqtt.on_disconnect = self._on_disconnect
            self.mqtt.on_puback = self._on_puback
            self.mqtt.on_message = self._on_message
            if self.commands is not None:
                self.mqtt.subscribe(self.topic(protocol.COMMAND), 1)
            self._arm_will()

    # ---- message building --------------------------------------------------------------
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
            "outbox": len(ob),
            "outbox_bytes": ob.live_bytes,
            "dropped_events": ob.dropped,
            "lost_safety": ob.lost_safety,
            "store_errors": ob.store_errors,
            "telemetry_dropped": self.ring.dropped,
        }
        if self.mqtt is not None:
            d["connects"] = self.mqtt.connects
            d["conn_failures"] = self.mqtt.failures
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
        m["status"] = self._run_state
        m["counters"] = self._counters()
        return m

    def _arm_will(self):
        m = self._state_message(False)
        m["reason"] = "connection_lost"
        self.mqtt.will = (self.topic(protocol.STATE), protocol.encode(m), 1, True)

    # ---- public API ----------------------------------------------------------------------
    def event(self, ev):
        """Queue one event for delivery (persistent). Returns its seq. Never blocks on I/O
        other than one flash append; never drops silently (see outbox.py)."""
        name = ev.get("event") if isinstance(ev, dict) else None
        if not isinstance(name, str) or not name:
            raise ValueError("event dict without a name: %r" % (ev,))
        kind = protocol.kind_of_event(name)
        m = protocol.event_body(self._envelope(kind), ev)
        prio = 0 if protocol.is_safety(name) else 1
        self.outbox.append(self.boot, self.seq, protocol.KIND_CODES[kind], prio, protocol.encode(m))
        if prio == 0:
            self._state_dirty = True
        return self.seq

    def send(self, kind, body, persist=True):
        """Send another message kind (identity, command_result) with the envelope."""
        if kind not in protocol.DELIVERY or kind in (protocol.STATE, protocol.TELEMETRY):
            raise ValueError("send(): unsupported kind %r" % (kind,))
        m = self._envelope(kind, body.get("q") if isinstance(body, dict) else None)
        for k in body:
            if k != "q":
                m[k] = body[k]
        data = protocol.encode(m)
        if persist:
            self.outbox.append(self.boot, self.seq, protocol.KIND_CODES[kind], 1, data)
        else:
            self.ring.push((kind, data))
        return self.seq

    def identity_send(self, kind, payload):
        """Uplink for gasguard.active_id (reg/hb/rsp): the payload is published verbatim on
        <base>/<dev>/identity (its own HMAC covers it), QoS 1, from a RAM queue of 4.
        Returns False when the queue is full (ActiveId then retries later)."""
        if len(self._idq) >= 4:
            return False
        self._idq.append(bytes(payload))
        return True

    def attach_identity(self, on_message):
        """Deliver <base>/<dev>/identity_down payloads to on_message(bytes) (ActiveId)."""
        self.on_identity = on_message
        if self.mqtt is not None:
            self.mqtt.subscribe(self.topic("identity_down"), 1)

    def telemetry(self, d):
        """Queue one telemetry reading (RAM ring; the oldest is dropped when full)."""
        q = d.get("q")
        data = {}
        for k in d:
            if k != "q":
                data[k] = d[k]
        m = self._envelope(protocol.TELEMETRY, q)
        m["data"] = data
        # "dropped" is appended when the message is sent, so it counts the drops up to then
        self.ring.push((protocol.TELEMETRY, protocol.encode(m)))
        self._last_telemetry = self.clock.ticks_ms()
        self._report_now = False
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

    @property
    def online(self):
        return self.mqtt is not None and self.mqtt.connected

    def status(self):
        d = self._counters()
        d["boot"] = self.boot
        d["seq"] = self.seq
        d["online"] = self.online
        d["mqtt"] = self.mqtt.state_name() if self.mqtt is not None else "none"
        d["time_synced"] = self.wall.synced
        return d

    def close(self):
        """Graceful shutdown: publish offline state (retained), then DISCONNECT."""
        if self.online:
            m = self._state_message(False)
            m["reason"] = "shutdown"
            self.mqtt.publish(self.topic(protocol.STATE), protocol.encode(m), 0, True)
            self.mqtt.disconnect()

    def poll(self):
        """Bounded, non-blocking step: SNTP, MQTT I/O, then deliveries in order."""
        self.uptime_ms()
        self.wall.poll()
        c = self.mqtt
        if c is None:
            return
        c.poll()
        if not c.connected:
            return
        budget = self.max_per_poll
        if self._state_dirty and c.can_publish(1, 512):
            pid = c.publish(self.topic(protocol.STATE), protocol.encode(self._state_message(True)), 1, True)
            if pid is not None:
                self._state_dirty = False
                self._pid_key[pid] = _STATE_KEY
                budget -= 1
        for e in self.outbox.entries:
            if budget <= 0 or len(self._inflight) >= self.window:
                break
            key = (e[0], e[1])
            if key in self._inflight:
                continue
            kind = protocol.KIND_BY_CODE.get(e[2], protocol.EVENT)
            qos, retain = protocol.DELIVERY[kind]
            pid = c.publish(self.topic(kind), e[4], 1, retain, key in self._tried or e[0] != self.boot)
            if pid is None:
                break
            self._tried[key] = True
            self._inflight[key] = pid
            self._pid_key[pid] = key
            budget -= 1
        while budget > 0 and self._idq and c.can_publish(1, len(self._idq[0]) + 64):
            if c.publish(self.topic(protocol.IDENTITY), self._idq[0], 1, False) is None:
                break
            self._idq.pop(0)
            budget -= 1
        while budget > 0 and len(self.ring) and not self._inflight_blocks():
            kind, data = self.ring.peek()
            if kind == protocol.TELEMETRY:
                data = data[:-1] + b',"dropped":%d}' % self.ring.dropped
            if c.publish(self.topic(kind), data, 0, False) is None:
                break
            self.ring.pop()
            self.published += 1
            budget -= 1

    def _inflight_blocks(self):
        # telemetry yields to events: while an outbox message waits for a window slot,
        # no telemetry goes out
        return len(self._inflight) < len(self.outbox.entries)

    # ---- MQTT callbacks ------------------------------------------------------------------
    def _on_connect(self):
        self._state_dirty = True

    def _on_disconnect(self, why):
        self._pid_key = {}
        self._inflight = {}
        self._arm_will()

    def _on_puback(self, pid):
        key = self._pid_key.pop(pid, None)
        if key is None or key == _STATE_KEY:
            return
        self._inflight.pop(key, None)
        self._tried.pop(key, None)
        self.published += 1
        self.outbox.ack(key[0], key[1])

    def _on_message(self, topic, payload, retain):
        if self.on_identity is not None and topic == self.topic("identity_down"):
            self.on_identity(bytes(payload))
            return
        if self.commands is None or topic != self.topic(protocol.COMMAND):
            return
        if retain:
            # a retained command would run again on every reconnect: refuse it
            r = {"id": None, "cmd": None, "ok": False, "reason": "malformed", "detail": "retained"}
            self.commands.rejected += 1
        else:
            r = self.commands.handle(payload)
        self.send(protocol.COMMAND_RESULT, r)

    # ---- builtin command actions -----------------------------------------------------------
    def _cmd_report_now(self):
        self._report_now = True
        self._state_dirty = True

    def _cmd_set_interval(self, seconds):
        self.interval_s = seconds
        self._state_dirty = True
