"""Reporting to the platform (docs/protocol.md): events -> outbox -> MQTT, telemetry,
the retained state, commands, wall time. One module: the protocol's message building, the
telemetry ring and the SNTP client live here with the reporter (they were five modules so
each compiled from source in a small heap; the device loads .mpy). The config checks and
the boot counter are boot-only (gasguard.report_cfg), the command checks parked
(gasguard.commands), the MQTT client is gasguard.mqtt, the flash queue gasguard.outbox.

    rep = Reporter(clock, store, identity_info, cfg, transport, handler=None, key=None,
                   ssl_context=None, rand=None, boot=None, status_fn=None)
    rep.event(ev)        # any event dict -> (RAM, then flash outbox in poll) QoS 1; seq
    rep.flush()          # write queued events to the outbox now
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

Every message is one JSON object with the envelope
    {"v": 1, "kind": K, "dev": id, "fw": version, "boot": n, "seq": n, "up_ms": n,
     ["ts": unix_seconds,] ["q": [flags]], ...kind fields}
on topic  <base>/<dev>/<kind>.  (dev, boot, seq) is unique per message: the platform
deduplicates on it and orders by (boot, seq).

Nothing here blocks: event() only stamps the event and queues it in RAM (no I/O: the
detector emits before it closes the valve); poll() writes queued events to the flash
outbox and touches the network only through the non-blocking MQTT client.
"""

import json

# message kinds; the index is the kind's code in the outbox (0: never stored)
KINDS = ("command", "event", "valve", "command_result", "identity", "state", "telemetry")
# safety events (never dropped by the outbox, docs/protocol.md "Outbox"); the last three
# are reported on the valve topic, the others are events
SAFETY = ("alarm", "fault", "valve", "interlock", "relay")
_STATE_KEY = (-1, -1)


def delivery(kind):
    """(qos, retain) of a kind: telemetry QoS 0, everything else QoS 1; state retained."""
    return (0 if kind == "telemetry" else 1), kind == "state"


def plain(v, depth=0):
    """True if v is JSON data (None, bool, int, float, str, list/tuple, dict with str keys),
    at most 4 levels deep. MicroPython's json.dumps does not refuse other objects: it
    writes their repr, which is not JSON, so messages are checked before encoding."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if depth < 4:
        if isinstance(v, dict):
            for k in v:
                if not isinstance(k, str) or not plain(v[k], depth + 1):
                    return False
            return True
        if isinstance(v, (list, tuple)):
            for x in v:
                if not plain(x, depth + 1):
                    return False
            return True
    return False


def encode(m):
    """Compact JSON bytes (no spaces) for the wire and the outbox."""
    return json.dumps(m, separators=(",", ":")).encode()


class WallTime:
    """Wall time for messages: a non-blocking SNTP client (RFC 4330) over UDP; the
    exchange itself is parked (gasguard.sntp).

    poll() sends one 48-byte client request to a configured *numeric* server address and
    later reads the reply without waiting; a reply is accepted only if it is a server-mode
    packet with a plausible stratum, echoes our transmit timestamp (against spoofed or
    stale replies) and gives a time after 2023. The result is an anchor (unix seconds at a
    ticks_ms value); now() adds the ticks elapsed since. The anchor is moved forward every
    hour so ticks_diff never sees more than half the 2**30 ms wrap. Without a server (or
    before the first reply) now() is None; set(unix_s) sets the time instead."""

    def __init__(self, clock, socket_mod=None, server=None, port=123, resync_s=3600,
                 timeout_ms=3000, retry_ms=30000, rand=None):
        if server is not None:
            from gasguard.report_cfg import is_ipv4

            if not is_ipv4(server) or socket_mod is None:
                raise ValueError("ntp server: numeric IPv4 and a socket module")
        self.clock = clock
        self.sock_mod = socket_mod
        self.server = server
        self.port = port
        self._t = (resync_s * 1000, timeout_ms, retry_ms)
        self._rand = rand
        self._base = None  # unix seconds at _anchor
        self._anchor = 0
        self._sock = None
        self._nonce = None
        self._sent = 0
        self._next = clock.ticks_ms()
        self.syncs = self.failures = 0

    @property
    def synced(self):
        return self._base is not None

    def set(self, unix_s, at=None):
        if not isinstance(unix_s, int) or unix_s < 1672531200:  # 2023-01-01
            raise ValueError("time")
        self._base = unix_s
        self._anchor = self.clock.ticks_ms() if at is None else at
        self.syncs += 1

    def now(self):
        """Unix seconds (int) or None when not synchronised."""
        if self._base is None:
            return None
        return self._base + self.clock.ticks_diff(self.clock.ticks_ms(), self._anchor) // 1000

    def poll(self):
        c = self.clock
        now = c.ticks_ms()
        if self._base is not None:
            d = c.ticks_diff(now, self._anchor)
            if d >= 3600000:  # re-anchor hourly: ticks_diff stays far from the wrap
                s = d // 1000
                self._base += s
                self._anchor = c.ticks_add(self._anchor, s * 1000)
        if self.server is None or (self._sock is None and c.ticks_diff(now, self._next) < 0):
            return
        # an exchange is due or under way: its code is parked (gasguard.sntp), in the heap
        # only while a request is in flight (ms to 3 s, once an hour)
        from gasguard import sntp

        done = sntp.step(self, now)
        sntp = None
        if done:
            from gasguard.lazy import release

            release("sntp")


class Reporter:
    def __init__(self, clock, store, identity_info, cfg, transport, handler=None, key=None,
                 ssl_context=None, rand=None, boot=None, status_fn=None):
        from gasguard.outbox import Outbox
        from gasguard.report_cfg import check_ident, configure, next_boot  # boot-only

        check_ident(identity_info)
        c = configure(cfg)
        self.interval_s = c["interval_s"]
        self._lim = (c["window"], c["max_per_poll"], c["telemetry_slots"])
        self.clock = clock
        self.store = store
        self.ident = identity_info
        self.dev = identity_info["device_id"]
        self._tp = "%s/%s/" % (c["base"], self.dev)  # topic prefix: <base>/<dev>/
        self.handler = handler
        self.status_fn = status_fn  # optional: () -> small dict for the state message
        # our own persistent counter, raised to the app's boot counter when it passes one
        # (so event data and envelope agree) but never repeating a value we used before
        self.boot = next_boot(store, boot - 1 if isinstance(boot, int) and boot > 0 else 0)
        self.outbox = Outbox(store, "outbox", c["outbox_bytes"], c["outbox_reserve"])
        for e in self.outbox.entries:
            # a boot counter that could not be written must not repeat a (boot, seq) key
            if e[0] >= self.boot:
                self.boot = next_boot(store, max(e[0], self.boot))
        self.seq = self._up_ms = 0
        self._last_tick = clock.ticks_ms()
        self._last_tel = None
        self._report_now = False
        self.ring = []  # telemetry messages (bytes), newest last, at most telemetry_slots
        self.ring_dropped = 0  # telemetry messages pushed out of the ring since boot
        ntp = c["ntp_server"]
        self.wall = WallTime(clock, transport if ntp else None, ntp, c["ntp_port"],
                             c["ntp_resync_s"], rand=rand)
        self._pending = []  # events stamped by event(), written to the outbox by poll()
        self.bad_events = self.rq_dropped = self.published = 0
        self._rq = []  # RAM QoS 1 queue (<= 4): identity uplinks, rejected command results
        self.on_identity = None
        self._run_state = {}
        self._dirty = True  # the state message is to be sent
        self._clear_cmd = False  # clear the retained copy of the command topic
        self._pid_key = {}  # MQTT packet id -> (boot, seq) of the outbox message
        self._inflight = {}  # (boot, seq) -> pid
        self._tried = {}  # (boot, seq) already sent once (re-sends carry DUP)
        self.mqtt = None
        if transport is not None:
            from gasguard.mqtt import MQTTClient

            mc = dict(c["mqtt"] or {})
            mc.setdefault("client_id", self.dev)
            m = self.mqtt = MQTTClient(clock, transport, mc, None, ssl_context, rand)
            m.on_connect = self._on_connect
            m.on_disconnect = self._on_disconnect
            m.on_puback = self._on_puback
            m.on_message = self._on_message
            m.will = self._will  # built for each CONNECT: not held between connections
        # the config checks (boot-only) out of the heap before the command handler's code
        # loads: the reporter is built while the boot's builders are still in the heap
        check_ident = configure = next_boot = None
        from gasguard.lazy import release

        release("report_cfg")
        self.commands = None
        if c["commands"]:
            # parked (gasguard.lazy): commands come a few times a day, so their code is in
            # the heap only while one is handled; built on the first one, not here, so it
            # is never in the heap with the boot's builders (docs/heap-budget.md)
            from gasguard.lazy import ParkedCommands

            self.commands = ParkedCommands(
                (self.dev, key, store, handler, self.wall, c["cmd_window_s"],
                 {"report_now": self._cmd_report_now, "set_interval": self._cmd_set_interval,
                  "ack_losses": self._cmd_ack_losses}))
        if self.commands is not None and self.mqtt is not None:
            self.mqtt.subscribe(self.topic("command"), 1)

    # ---- message building --------------------------------------------------------------
    def topic(self, kind):
        return self._tp + kind

    def uptime_ms(self):
        now = self.clock.ticks_ms()
        self._up_ms += self.clock.ticks_diff(now, self._last_tick)
        self._last_tick = now
        return self._up_ms

    def _envelope(self, kind, seq, up, ts, q):
        m = {"v": 1, "kind": kind, "dev": self.dev, "fw": self.ident["fw"], "boot": self.boot,
             "seq": seq, "up_ms": up}
        if ts is None:
            q = list(q or ()) + ["time_unsynced"]
        else:
            m["ts"] = ts
        if q:
            m["q"] = q
        return m

    def _new(self, kind, q=None):
        self.seq += 1
        return self._envelope(kind, self.seq, self.uptime_ms(), self.wall.now(), q)

    def _state_message(self, online, reason=None):
        m = self._new("state")
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
        if not isinstance(st, dict) or not plain(st):
            st = {"status_error": "not_json"}
        m["status"] = st
        m["counters"] = self._counters()
        ob = self.outbox
        if ob.unacked_lost or ob.unacked_dropped:
            # persisted with the outbox: survives reboots until ack_losses (protocol.md)
            m["losses"] = {"lost_safety": ob.unacked_lost, "dropped_events": ob.unacked_dropped}
        if reason:
            m["reason"] = reason
        return encode(m)

    def _counters(self):
        ob = self.outbox
        d = {
            "outbox": len(ob) + len(self._pending),
            "outbox_bytes": ob.live_bytes,
            "dropped_events": ob.dropped,
            "lost_safety": ob.lost_safety,
            "store_errors": ob.store_errors,
            "telemetry_dropped": self.ring_dropped,
            "ram_dropped": self.rq_dropped,
            "bad_events": self.bad_events,
        }
        m = self.mqtt
        if m is not None:
            d["connects"] = m.connects
            d["conn_failures"] = m.failures
            d["rx_dropped"] = m.rx_dropped
        if self.commands is not None:
            d["cmd_accepted"] = self.commands.accepted
            d["cmd_rejected"] = self.commands.rejected
        # the core's events it could not build (full heap) and link failures (protocol.md)
        h = self.handler
        h = getattr(h, "detector", None) or getattr(h, "controller", None)
        for k in ("events_lost", "link_errors"):
            if hasattr(h, k):
                d[k] = getattr(h, k)
        return d

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
        if name in SAFETY:
            self._dirty = True
        if len(self._pending) >= 16:
            self.flush()  # poll() is not being called: do not let RAM grow
        return self.seq

    def flush(self):
        """Write the events queued by event() to the flash outbox now."""
        p = self._pending
        while p:
            seq, up, ts, ev = p[0]
            name = ev["event"]
            safety = name in SAFETY
            kind = 2 if safety and SAFETY.index(name) >= 2 else 1  # valve / event (no slice)
            # MemoryError first and alone: under a full heap any exception arrives as one,
            # and even the tuple of an `except (A, B)` clause is an allocation that fails
            try:
                m = self._envelope(KINDS[kind], seq, up, ts, None)
                m["event"] = name
                del ev["event"]
                m["data"] = ev  # "event" names it, "data" has the rest
                if not plain(ev):
                    raise TypeError
                self.outbox.append(self.boot, seq, kind, 0 if safety else 1, encode(m))
            except MemoryError:
                ev["event"] = name  # (its slot is free again: no allocation)
                return  # still queued in RAM, in order: the next poll() tries again
            except Exception as e:
                ev["event"] = name
                if not (isinstance(e, TypeError) or isinstance(e, ValueError)):
                    raise
                # not JSON-encodable, or larger than the whole outbox: a programming error
                # upstream; counted (state counters: bad_events), never raised into the loop
                self.bad_events += 1
            p.pop(0)

    def send(self, kind, body, persist=True):
        """Send a command_result-like message with the envelope: persistent (outbox) or
        from the small RAM QoS 1 queue (persist=False; returns None when it is full)."""
        if kind not in KINDS[1:5]:
            raise ValueError("send(): unsupported kind %r" % (kind,))
        m = self._new(kind, body.get("q") if isinstance(body, dict) else None)
        for k in body:
            if k != "q":
                m[k] = body[k]
        data = encode(m)
        if persist:
            self.outbox.append(self.boot, self.seq, KINDS.index(kind), 1, data)
        elif not self._rq_push(kind, data):
            return None
        return self.seq

    def identity_send(self, kind, payload):
        """Uplink for gasguard.active_id (reg/hb/rsp): the payload is published verbatim on
        <base>/<dev>/identity (its own HMAC covers it), QoS 1, from a RAM queue of 4.
        Returns False when the queue is full (ActiveId then retries later)."""
        return self._rq_push("identity", bytes(payload))

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
        self._last_tel = self.clock.ticks_ms()
        self._report_now = False
        if not isinstance(d, dict) or not plain(d):
            self.bad_events += 1
            return None
        data = dict(d)
        m = self._new("telemetry", data.pop("q", None))
        m["data"] = data
        # "dropped" is appended when the message is sent, so it counts the drops up to then
        r = self.ring
        r.append(encode(m))
        if len(r) > self._lim[2]:
            r.pop(0)
            self.ring_dropped += 1
        return self.seq

    def telemetry_due(self):
        """True when the app should call telemetry(): interval elapsed or report_now asked."""
        if self._report_now or self._last_tel is None:
            return True
        return self.clock.ticks_diff(self.clock.ticks_ms(), self._last_tel) >= self.interval_s * 1000

    def state(self, d):
        """Set the run state (small dict) carried by the retained state message."""
        if d != self._run_state:
            self._run_state = dict(d)
            self._dirty = True

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
        """Graceful shutdown: persist queued events, publish offline state (retained), then
        DISCONNECT."""
        self.flush()
        if self.online:
            self.mqtt.publish(self._tp + "state", self._state_message(False, "shutdown"), 1, True)
            self.mqtt.disconnect()

    def poll(self):
        """Bounded, non-blocking step: SNTP, MQTT I/O, then deliveries in order."""
        if self._pending:
            self.flush()
        self.uptime_ms()
        self.wall.poll()
        c = self.mqtt
        if c is None:
            return
        c.poll()
        if not c.connected:
            return
        tp = self._tp
        budget = self._lim[1]
        if self._dirty and c.can_publish(1, 512):
            pid = c.publish(tp + "state", self._state_message(True), 1, True)
            if pid is not None:
                self._dirty = False
                self._pid_key[pid] = _STATE_KEY
                budget -= 1
        if self._clear_cmd and budget > 0:
            # an empty retained PUBLISH deletes the broker's retained copy (MQTT 3.1.1
            # §3.3.1.3); QoS 0: if it is lost, the next delivery asks again
            if c.publish(tp + "command", b"", 0, True) is not None:
                self._clear_cmd = False
                budget -= 1
        fl = self._inflight
        box = self.outbox
        ob = box.entries
        if len(fl) < len(ob):  # else everything is in flight (or nothing waits): no iterator
            for e in ob:
                if budget <= 0 or len(fl) >= self._lim[0]:
                    break
                key = (e[0], e[1])
                if key in fl:
                    continue
                k = e[2]
                t = tp + KINDS[k if 0 < k < 7 else 1]
                if not c.can_publish(1, e[5] + len(t)):
                    break  # no room now: the message is not read from flash for nothing
                # read back from the flash log now (the outbox keeps an index in RAM); the
                # client holds it until the PUBACK
                msg = box.message(e)
                if msg is None:
                    break  # the log cannot give it now (counted): tried again next poll
                pid = c.publish(t, msg, 1, k == 5, key in self._tried or e[0] != self.boot)
                msg = None
                if pid is None:
                    break
                self._tried[key] = True
                fl[key] = pid
                self._pid_key[pid] = key
                budget -= 1
        q = self._rq
        while budget > 0 and q and c.can_publish(1, len(q[0][1]) + 64):
            if c.publish(tp + q[0][0], q[0][1], 1, False) is None:
                break
            q.pop(0)
            budget -= 1
        # telemetry yields to events: while an outbox message waits for a window slot,
        # no telemetry goes out
        r = self.ring
        while budget > 0 and r and len(fl) >= len(ob):
            if c.publish(tp + "telemetry", r[0][:-1] + b',"dropped":%d}' % self.ring_dropped,
                         0, False) is None:
                break
            r.pop(0)
            self.published += 1
            budget -= 1

    # ---- MQTT callbacks ------------------------------------------------------------------
    def _on_connect(self):
        self._dirty = True

    def _on_disconnect(self, why):
        self._pid_key = {}
        self._inflight = {}
        t = self._tried
        self._tried = {}
        for e in self.outbox.entries:
            if (e[0], e[1]) in t:
                self._tried[e[0], e[1]] = True

    def _will(self):
        # the last will: the retained state message saying offline
        return self._tp + "state", self._state_message(False, "connection_lost"), 1, True

    def _on_puback(self, pid):
        key = self._pid_key.pop(pid, None)
        if key is None or key == _STATE_KEY:
            return
        self._inflight.pop(key, None)
        self._tried.pop(key, None)
        self.published += 1
        self.outbox.ack(key[0], key[1])

    def _on_message(self, topic, payload, retain):
        # payload None: larger than max_packet, acknowledged and skipped by the client
        tp = self._tp
        if self.on_identity is not None and topic == tp + "identity_down":
            if payload is not None:
                self.on_identity(bytes(payload))
            return
        if self.commands is None or topic != tp + "command" or payload == b"":
            return  # b"": a retained message being cleared (ours, or the platform's)
        # whatever it is, no copy may stay retained on the broker: a retained delivery is
        # refused, and one that reached us live would be delivered again at every connect
        self._clear_cmd = True
        r = self.commands.handle(payload, retain)  # never raises
        # accepted commands are answered through the persistent outbox; rejections from
        # RAM only (QoS 1, at most 4 waiting), so unauthenticated input cannot wear the
        # flash or push events out of the outbox
        self.send("command_result", r, r["ok"])

    # ---- builtin command actions -----------------------------------------------------------
    def _cmd_report_now(self):
        self._report_now = True
        self._dirty = True

    def _cmd_set_interval(self, seconds):
        self.interval_s = seconds
        self._dirty = True

    def _cmd_ack_losses(self, lost_safety, dropped_events):
        self.outbox.ack_losses(lost_safety, dropped_events)
        self._dirty = True
