"""Reporting to the platform: events -> outbox -> MQTT, telemetry ring, state, commands.

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

Nothing here blocks: event() only stamps the event and queues it in RAM (no I/O: the
detector emits before it closes the valve); poll() writes queued events to the flash
outbox and touches the network only through the non-blocking MQTT client. The protocol
is in docs/protocol.md.
"""

from gasguard import protocol
from gasguard.mqtt import MQTTClient
from gasguard.outbox import Outbox
from gasguard.report_base import ReportBase
from gasguard.telemetry import TelemetryRing
from gasguard.walltime import WallTime

_STATE_KEY = (-1, -1)


class Reporter(ReportBase):
    def __init__(self, clock, store, identity_info, cfg, transport, handler=None, key=None,
                 ssl_context=None, rand=None, boot=None, status_fn=None):
        from gasguard.report_cfg import check_ident, configure, next_boot  # boot-only

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
        self.status_fn = status_fn  # optional: () -> small dict for the state message
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
            # parked (gasguard.lazy): commands come a few times a day, so their code
            # (commands + command_msg, ~7 KB) is in the heap only while one is handled
            from gasguard.lazy import Parked

            self.commands = Parked.build(
                "commands", "Commands",
                (self.dev, key, store, handler, self.wall, c["cmd_window_s"],
                 {"report_now": self._cmd_report_now, "set_interval": self._cmd_set_interval,
                  "ack_losses": self._cmd_ack_losses}), ("commands", "command_msg"))
        self._pending = []  # events stamped by event(), written to the outbox by poll()
        self.bad_events = 0
        self._rq = []  # RAM QoS 1 queue (<= 4): identity uplinks, rejected command results
        self.rq_dropped = 0
        self.on_identity = None
        self._run_state = {}
        self._state_dirty = True
        self._clear_cmd = False  # clear the retained copy of the command topic
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
            m = self._state_message(False)
            m["reason"] = "shutdown"
            qos, retain = protocol.DELIVERY[protocol.STATE]  # as the topic table says (QoS 1)
            self.mqtt.publish(self.topic(protocol.STATE), protocol.encode(m), qos, retain)
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
        budget = self.max_per_poll
        if self._state_dirty and c.can_publish(1, 512):
            pid = c.publish(self.topic(protocol.STATE), protocol.encode(self._state_message(True)), 1, True)
            if pid is not None:
                self._state_dirty = False
                self._pid_key[pid] = _STATE_KEY
                budget -= 1
        if self._clear_cmd and budget > 0:
            # an empty retained PUBLISH deletes the broker's retained copy (MQTT 3.1.1
            # §3.3.1.3); QoS 0: if it is lost, the next delivery asks again
            if c.publish(self.topic(protocol.COMMAND), b"", 0, True) is not None:
                self._clear_cmd = False
                budget -= 1
        if len(self._inflight) >= len(self.outbox.entries):
            entries = ()  # everything is in flight (or nothing waits): no iterator
        else:
            entries = self.outbox.entries
        for e in entries:
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
        while budget > 0 and self._rq and c.can_publish(1, len(self._rq[0][1]) + 64):
            kind, data = self._rq[0]
            if c.publish(self.topic(kind), data, 1, False) is None:
                break
            self._rq.pop(0)
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
        live = self.outbox.keys()
        self._tried = dict((k, True) for k in live if k in self._tried)
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
        # payload None: larger than max_packet, acknowledged and skipped by the client
        if self.on_identity is not None and topic == self.topic("identity_down"):
            if payload is not None:
                self.on_identity(bytes(payload))
            return
        if self.commands is None or topic != self.topic(protocol.COMMAND) or payload == b"":
            return  # b"": a retained message being cleared (ours, or the platform's)
        # whatever it is, no copy may stay retained on the broker: a retained delivery is
        # refused, and one that reached us live would be delivered again at every connect
        self._clear_cmd = True
        r = self.commands.handle(payload, retain)  # never raises
        # accepted commands are answered through the persistent outbox; rejections from
        # RAM only (QoS 1, at most 4 waiting), so unauthenticated input cannot wear the
        # flash or push events out of the outbox
        self.send(protocol.COMMAND_RESULT, r, r["ok"])

    # ---- builtin command actions -----------------------------------------------------------
    def _cmd_report_now(self):
        self._report_now = True
        self._state_dirty = True

    def _cmd_set_interval(self, seconds):
        self.interval_s = seconds
        self._state_dirty = True

    def _cmd_ack_losses(self, lost_safety, dropped_events):
        self.outbox.ack_losses(lost_safety, dropped_events)
        self._state_dirty = True
