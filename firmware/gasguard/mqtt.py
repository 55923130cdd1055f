"""A small MQTT 3.1.1 client that never blocks: a step machine driven by poll().

Why our own (docs/mqtt.md): micropython-lib's umqtt uses blocking sockets (a broker
that accepts TCP and never answers hangs it), cannot be installed from the registries
we reach in a usable form, and Peter Hinch's mqtt_as is not installable either; we may
not copy code. This client takes the *approach* mqtt_as popularised (non-blocking
sockets, recovery from outages, QoS 1 retransmission, re-subscription) without asyncio:
the app loop calls poll(), which does a bounded amount of work and returns.

Non-blocking rules (checked by host_tests/portable/test_reporting_mqtt.py with a strict
fake socket):
  * every socket is set non-blocking (setblocking(False)) before connect/send/recv;
  * connect() is started once and then re-tried: EINPROGRESS/EALREADY mean "not yet",
    0 or EISCONN mean connected (the select-free non-blocking connect that works on
    Linux, lwIP and CPython alike);
  * name resolution: only numeric IPv4 addresses are used in the poll path; a host name
    is refused at construction unless cfg["allow_dns"] is true (then getaddrinfo runs at
    most once per connection attempt and is cached: on the ESP32 getaddrinfo blocks up
    to the lwIP DNS timeout, so the safety build configures the broker as an IP);
  * every wait is a deadline in the state (CONNACK, PINGRESP, PUBACK), never a sleep.

The socket module (and optionally an SSL context) is injected, so tests can hand in a
socket that stalls, resets or trickles bytes one at a time.
"""

import struct

from gasguard.mqtt_link import Link
from gasguard.mqtt_wire import (
    CONNACK_WAIT, CONNECTING, DOWN, HANDSHAKE, INT_KEYS, STATE_NAMES, UP, MQTTError, configure,
    connect_packet, parse_publish, parse_remaining, publish_packet, subscribe_packet,
)


class MQTTClient(Link):
    """poll()-driven MQTT 3.1.1 client.

    MQTTClient(clock, socket_mod, cfg, will=None, ssl_context=None, rand=None)
      will: (topic, payload, qos, retain) sent in CONNECT (the broker publishes it when
            the connection dies without DISCONNECT).
      rand: callable(n) -> int in 0..n-1 for backoff jitter (default: os.urandom).
    Callbacks (attributes, may be None):
      on_connect()                      after CONNACK accepted and subscriptions sent
      on_disconnect(reason_str)         when an established or attempted session ends
      on_message(topic_str, payload_bytes, retain_bool)  payload None: over max_packet,
                                        acknowledged and skipped; exceptions are counted
      on_puback(pid)                    QoS 1 publish acknowledged
    """

    def __init__(self, clock, socket_mod, cfg=None, will=None, ssl_context=None, rand=None):
        c = configure(cfg, will)
        for k in INT_KEYS:
            setattr(self, k, c[k])
        self.host = c["host"]
        self.client_id = c["client_id"]
        self._auth = (c["user"], c["password"])
        self.server_hostname = c["server_hostname"]
        self.will = will
        self.ssl_context = ssl_context
        self.clock = clock
        self.sock_mod = socket_mod
        self._rand = rand
        self.on_connect = None
        self.on_disconnect = None
        self.on_message = None
        self.on_puback = None
        self.state = DOWN
        self._sock = None
        self._raw = None
        self._addr = None
        self._rx = bytearray()
        self._rxbuf = None  # preallocated readinto() buffer (MicroPython)
        self._readinto = None
        self._tx = bytearray()
        self._pid = 0
        self._inflight = {}  # pid -> [topic, payload, retain, sent_ticks]
        self._order = []  # in-flight pids in send order (MicroPython dicts have no order)
        self._subs = []  # [(topic, qos)]
        self._backoff = self.backoff_min_ms
        self._next_try = clock.ticks_ms()  # first attempt immediately
        self._deadline = 0
        self._last_tx = 0
        self._last_rx = 0
        self._ping_sent = None
        # counters for diagnostics and the state message
        self.connects = 0
        self.failures = 0
        self.last_error = None
        self.retransmits = 0
        # PUBLISH packets acknowledged but dropped: over max_packet, or on_message raised
        self.rx_dropped = 0
        self._skip = 0  # bytes of an oversized packet still to discard

    # ---- public API -----------------------------------------------------------------
    @property
    def connected(self):
        return self.state == UP

    def state_name(self):
        return STATE_NAMES[self.state]

    def subscribe(self, topic, qos=1):
        """Remember a subscription; it is (re)sent after every CONNACK."""
        for i in range(len(self._subs)):
            if self._subs[i][0] == topic:
                self._subs[i] = (topic, qos)
                break
        else:
            self._subs.append((topic, qos))
        if self.state == UP:
            self._queue(subscribe_packet(self._next_pid(), [(topic, qos)]))

    def can_publish(self, qos=0, size=0):
        if self.state != UP:
            return False
        if qos and len(self._inflight) >= self.max_inflight:
            return False
        return len(self._tx) + size + 8 <= self.tx_buffer

    def publish(self, topic, payload, qos=0, retain=False, dup=False):
        """Queue a publish. Return the packet id (QoS 1), 0 (QoS 0), or None when it cannot
        be taken now (not connected, too many in flight, buffer full): the caller keeps it."""
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        if isinstance(payload, str):
            payload = payload.encode()
        if not self.can_publish(qos, len(payload) + len(topic) + 4):
            return None
        pid = 0
        if qos:
            pid = self._next_pid()
            self._inflight[pid] = [topic, payload, retain, self.clock.ticks_ms()]
            self._order.append(pid)
        self._queue(publish_packet(topic, payload, qos, retain, pid, dup))
        return pid

    def inflight(self):
        return len(self._inflight)

    def disconnect(self):
        """Graceful: DISCONNECT (the broker then does not publish the will), then close."""
        if self.state == UP:
            self._queue(b"\xe0\x00")
            self._flush()
        self._close("disconnect")

    def poll(self):
        """Advance the state machine by a bounded amount of work. Never blocks."""
        now = self.clock.ticks_ms()
        st = self.state
        if st == DOWN:
            if self.clock.ticks_diff(now, self._next_try) >= 0:
                self._start_connect(now)
            return
        if st != UP and self.clock.ticks_diff(now, self._deadline) >= 0:
            self._fail("timeout in %s" % STATE_NAMES[st])
            return
        if st == CONNECTING:
            self._step_connect(now)
            return
        if st == HANDSHAKE:
            self._step_tls(now)
            return
        # CONNACK_WAIT or UP: read what arrived, run the timers, send what is queued
        if not self._read(now):
            return
        if self.state == UP:
            self._timers(now)
        if self.state != DOWN:
            self._flush()

    # ---- internals -------------------------------------------------------------------
    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        while self._pid in self._inflight:
            self._pid = self._pid % 65535 + 1
        return self._pid

    def _queue(self, data):
        self._tx.extend(data)

    def _send_connect(self):
        self._tx = bytearray()
        self._rx = bytearray()
        self._queue(
            connect_packet(self.client_id, self.keepalive_s, True, self.will, *self._auth)
        )
        self.state = CONNACK_WAIT
        now = self.clock.ticks_ms()
        self._last_rx = now
        self._flush()

    def _parse(self):
        buf = self._rx
        pos = 0
        ok = True
        while ok and len(buf) - pos >= 2:
            try:
                r = parse_remaining(buf, pos)
            except MQTTError as e:
                self._fail(str(e))
                return False
            if r is None:
                break
            n, h = r
            if n + h > self.max_packet:
                r = self._oversized(buf, pos, n, h)
                if r is None:
                    break  # its header is not all here yet
                if not r:
                    return False
                pos = r  # past it, or the end of buf: the rest is skipped in _read
                continue
            if len(buf) - pos < n + h:
                break
            first = buf[pos]
            body = bytes(buf[pos + h : pos + h + n])
            pos += h + n
            ok = self._handle(first, body)
        if ok:
            self._rx = buf[pos:]
        return ok

    def _oversized(self, buf, pos, n, h):
        """A packet over max_packet. A PUBLISH is acknowledged and skipped (the connection
        stays up: a retained oversized command cannot make a connect/fail loop); anything
        else closes the connection. Return the position after what was consumed, False
        when closed, None to wait for the rest of its header."""
        first = buf[pos]
        p = pos + h + 2
        if len(buf) < p:
            return None
        p += (buf[p - 2] << 8) | buf[p - 1]
        qos = (first >> 1) & 3
        if self.state != UP or first >> 4 != 3 or qos > 1 or p + 2 - pos > self.max_packet:
            self._fail("packet of %d bytes exceeds max_packet" % (n + h))
            return False
        if len(buf) < p + 2 * qos:
            return None
        if qos:
            self._queue(b"\x40\x02" + buf[p : p + 2])
        end = pos + h + n
        self._skip = max(0, end - len(buf))
        self._deliver(bytes(buf[pos + h + 2 : p]), None, first)
        return min(end, len(buf)) if self.state == UP else False

    def _deliver(self, topic, payload, first):
        # counted, never raised into the loop: the message is already acknowledged and
        # consumed, so delivery goes on (a raising handler once stalled every event)
        try:
            if self.on_message is not None:
                self.on_message(topic.decode(), payload, bool(first & 1))
            if payload is None:
                self.rx_dropped += 1
        except Exception as e:
            self.rx_dropped += 1
            self.last_error = "on_message: %s" % type(e).__name__

    def _handle(self, first, body):
        t = first >> 4
        if self.state == CONNACK_WAIT:
            if t != 2 or len(body) != 2:
                self._fail("expected CONNACK")
                return False
            if body[1] != 0:
                self._fail("connection refused, code %d" % body[1])
                return False
            self.state = UP
            self.connects += 1
            # the backoff is NOT reset here: a broker that drops us right after CONNACK
            # would make a tight loop; _close resets it after a connection that lasted
            self._deadline = self.clock.ticks_ms()  # while UP: when the connection came up
            self.last_error = None
            if self._subs:
                self._queue(subscribe_packet(self._next_pid(), self._subs))
            if self.on_connect is not None:
                self.on_connect()
            return self.state == UP
        if t == 3:  # PUBLISH
            r = parse_publish(first, body)
            if r is None:
                self._fail("bad PUBLISH")
                return False
            topic, payload, pid = r
            if pid:
                self._queue(b"\x40\x02" + struct.pack("!H", pid))
            self._deliver(topic, payload, first)
            return self.state == UP
        if t == 4:  # PUBACK
            if len(body) >= 2:
                pid = (body[0] << 8) | body[1]
                if self._inflight.pop(pid, None) is not None:
                    self._order.remove(pid)
                    if self.on_puback is not None:
                        self.on_puback(pid)
            return self.state == UP
        if t == 13:  # PINGRESP
            self._ping_sent = None
            return True
        if t == 9:  # SUBACK
            return True
        # anything else (QoS 2 flow, UNSUBACK) is not used by this client: ignore
        return True

    def _timers(self, now):
        # no bound-method or iterator allocations on the idle path (MicroPython heap churn)
        if self._ping_sent is not None:
            if self.clock.ticks_diff(now, self._ping_sent) >= self.ping_timeout_ms:
                self._fail("no PINGRESP")
                return
        elif self.keepalive_s:
            # ping when half the keepalive passed without traffic out or in
            half = self.keepalive_s * 500
            if (self.clock.ticks_diff(now, self._last_tx) >= half
                    or self.clock.ticks_diff(now, self._last_rx) >= half):
                self._queue(b"\xc0\x00")
                self._ping_sent = now
                self._last_tx = now
        if not self._inflight:
            return
        # MQTT 3.1.1 §4.6: re-send in the order of the original sends
        for pid in self._order:
            e = self._inflight[pid]
            if self.clock.ticks_diff(now, e[3]) >= self.retry_ms:
                if len(self._tx) + len(e[1]) + 8 > self.tx_buffer:
                    break
                e[3] = now
                self.retransmits += 1
                self._queue(publish_packet(e[0], e[1], 1, e[2], pid, True))
                break  # one per poll: bounded work
