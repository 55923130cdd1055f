"""A small MQTT 3.1.1 client that never blocks: a step machine driven by poll().

Why our own (docs/mqtt.md): micropython-lib's umqtt uses blocking sockets (a broker
that accepts TCP and never answers hangs it), cannot be installed from the registries
we reach in a usable form, and Peter Hinch's mqtt_as is not installable either; we may
not copy code. This client takes the *approach* mqtt_as popularised (non-blocking
sockets, recovery from outages, QoS 1 retransmission, re-subscription) without asyncio:
the app loop calls poll(), which does a bounded amount of work and returns.

One module: the wire format, the socket half and the state machine (they were three
modules so each compiled from source in a small heap; the device loads .mpy). The config
checks are boot-only (gasguard.report_cfg.mqtt_config, released before the loop).

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

No per-message copy of the payload: a PUBLISH is queued as its small header and a
reference to the payload bytes (the outbox's own copy), sent from there as the socket
takes it.

The socket module (and optionally an SSL context) is injected, so tests can hand in a
socket that stalls, resets or trickles bytes one at a time.
"""

import struct

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


# connection states (state_name() gives their names)
_DOWN = const(0)  # no socket; waiting for the backoff to expire
_CONNECTING = const(1)  # TCP connect in progress
_TLS = const(2)  # TLS handshake in progress
_CONNACK = const(3)  # CONNECT sent, waiting for CONNACK
_UP = const(4)
_NAMES = ("down", "connecting", "tls", "connack_wait", "up")
_RX = const(512)  # bytes read per poll
_TXMAX = const(1460)  # bytes sent per poll
# re-sends without any PUBACK that end the connection: TCP delivers or fails, so a broker
# that answers none of them is stalled, or the client has lost its place in the stream (a
# soak found one reading PUBACKs as the body of a packet that never ends, re-sending every
# retry_ms for hours with every event stuck behind); a new connection starts in step
_RESENDS = const(3)

# "not yet": EAGAIN/EWOULDBLOCK (11; BSD 35), EINPROGRESS (Linux 115, newlib/lwIP on the
# ESP32 119, BSD 36), EALREADY (Linux 114, newlib 120, BSD 37)
_AGAIN = (11, 35, 115, 114, 119, 120, 36, 37)
_ISCONN = (106, 56, 127)  # EISCONN: Linux, BSD, newlib (ESP32)


def _errno(e):
    """errno of an OSError: MicroPython has it in args[0]; CPython in .errno (None for
    OSError(n) built with one argument, so fall back to args[0])."""
    n = getattr(e, "errno", None)
    if n is None and e.args:
        n = e.args[0]
    return n


def _why(e):
    """None for "try again later" (EAGAIN/EINPROGRESS, or CPython's ssl.SSLWantRead/
    WriteError, whose errno is the SSL error code); else a short description."""
    if "Want" in type(e).__name__:
        return None
    if isinstance(e, OSError):
        n = _errno(e)
        if n in _AGAIN:
            return None
        if n is not None:
            return "errno %s" % n
    return type(e).__name__


def _s(s):
    """An MQTT string: 2-byte length, then the bytes."""
    if isinstance(s, str):
        s = s.encode()
    return struct.pack("!H", len(s)) + s


def _remaining(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            out.append(b)
            return out
        out.append(b | 0x80)


def packet(first, body):
    """One MQTT packet: first byte, remaining length, body (also the tests' broker side)."""
    return bytes([first]) + _remaining(len(body)) + body


def parse_remaining(buf, pos):
    """(length, header_len) of the packet at pos, None if incomplete; ValueError if bad."""
    r = _rlen(buf, pos, len(buf))
    return None if r < 0 else (r >> 3, r & 7)


def _rlen(buf, pos, end):
    # parse_remaining without a tuple (the receive path allocates nothing): length << 3 |
    # header_len, -1 if buf[pos:end] has not all of the header yet
    mult = 1
    n = 0
    i = pos + 1
    while True:
        if i >= end:
            return -1
        b = buf[i]
        n += (b & 0x7F) * mult
        i += 1
        if not b & 0x80:
            return n << 3 | (i - pos)
        mult <<= 7
        if mult > 0x200000:
            raise ValueError("bad remaining length")


class MQTTClient:
    """poll()-driven MQTT 3.1.1 client.

    MQTTClient(clock, socket_mod, cfg=None, will=None, ssl_context=None, rand=None)
      cfg: gasguard.report_cfg.MQTT keys (host, port, keepalive_s, ...), checked here.
      will: (topic, payload, qos, retain) sent in CONNECT (the broker publishes it when
            the connection dies without DISCONNECT), or a function returning it, called
            for each CONNECT (so its payload is not held between connections).
      rand: callable(n) -> int in 0..n-1 for backoff jitter (default: os.urandom).
    Callbacks (attributes, may be None):
      on_connect()                      after CONNACK accepted and subscriptions sent
      on_disconnect(reason_str)         when an established or attempted session ends
      on_message(topic_str, payload_bytes, retain_bool)  payload None: over max_packet,
                                        acknowledged and skipped; exceptions are counted
      on_puback(pid)                    QoS 1 publish acknowledged
    """

    def __init__(self, clock, socket_mod, cfg=None, will=None, ssl_context=None, rand=None):
        from gasguard.report_cfg import mqtt_config  # boot-only: released before the loop

        c = mqtt_config(cfg, will)
        for k in c:
            setattr(self, k, c[k])
        self.will = will
        self.ssl_context = ssl_context
        self.clock = clock
        self.sock_mod = socket_mod
        self._rand = rand
        self.on_connect = self.on_disconnect = self.on_message = self.on_puback = None
        self.state = _DOWN
        self._sock = self._raw = self._addr = self._rb = self._readinto = None
        self._rx = bytearray()  # only the start of a packet that a read cut off
        self._tx = []  # queued pieces (bytes-like), sent in order
        self._txn = 0  # bytes queued
        self._txo = 0  # bytes of _tx[0] already sent
        self._pid = 0
        self._inflight = {}  # pid -> [topic, payload, retain, sent_ticks]
        self._order = []  # in-flight pids in send order (MicroPython dicts have no order)
        self._subs = []  # [(topic, qos)]
        self._backoff = self.backoff_min_ms
        self._next_try = clock.ticks_ms()  # first attempt immediately
        self._deadline = self._last_tx = self._last_rx = 0
        self._ping_sent = None
        self._resent = 0  # re-sends since the last PUBACK
        self._skip = 0  # bytes of an oversized packet still to discard
        # counters for diagnostics and the state message
        self.connects = self.failures = self.retransmits = 0
        # PUBLISH packets acknowledged but dropped: over max_packet, or on_message raised
        self.rx_dropped = 0
        self.last_error = None

    # ---- public API -----------------------------------------------------------------
    @property
    def connected(self):
        return self.state == _UP

    def state_name(self):
        return _NAMES[self.state]

    def subscribe(self, topic, qos=1):
        """Remember a subscription; it is (re)sent after every CONNACK."""
        s = self._subs
        for i in range(len(s)):
            if s[i][0] == topic:
                s[i] = (topic, qos)
                break
        else:
            s.append((topic, qos))
        if self.state == _UP:
            self._subscribe([(topic, qos)])

    def can_publish(self, qos=0, size=0):
        if self.state != _UP or (qos and len(self._inflight) >= self.max_inflight):
            return False
        return self._txn + size + 8 <= self.tx_buffer

    def publish(self, topic, payload, qos=0, retain=False, dup=False):
        """Queue a publish. Return the packet id (QoS 1), 0 (QoS 0), or None when it cannot
        be taken now (not connected, too many in flight, buffer full): the caller keeps it.
        payload is kept by reference until sent (and acknowledged, QoS 1)."""
        if qos not in (0, 1):
            raise ValueError("qos")
        if isinstance(payload, str):
            payload = payload.encode()
        if not self.can_publish(qos, len(payload) + len(topic) + 4):
            return None
        pid = 0
        if qos:
            pid = self._pid
            while True:
                pid = pid % 65535 + 1
                if pid not in self._inflight:
                    break
            self._pid = pid
            self._inflight[pid] = [topic, payload, retain, self.clock.ticks_ms()]
            self._order.append(pid)
        self._pub(topic, payload, qos, retain, pid, dup)
        return pid

    def disconnect(self):
        """Graceful: DISCONNECT (the broker then does not publish the will), then close."""
        if self.state == _UP:
            self._put(b"\xe0\x00")
            self._flush()
        self._close("disconnect")

    def poll(self):
        """Advance the state machine by a bounded amount of work. Never blocks."""
        now = self.clock.ticks_ms()
        st = self.state
        if st == _DOWN:
            if self.clock.ticks_diff(now, self._next_try) >= 0:
                self._start(now)
            return
        if st != _UP and self.clock.ticks_diff(now, self._deadline) >= 0:
            self._fail("timeout in %s" % _NAMES[st])
        elif st == _CONNECTING:
            self._connect()
        elif st == _TLS:
            self._handshake()
        elif self._read(now):
            # CONNACK wait or up: read what arrived, run the timers, send what is queued
            if self.state == _UP:
                self._timers(now)
            if self.state != _DOWN:
                self._flush()

    # ---- sending ---------------------------------------------------------------------
    def _put(self, data):
        self._tx.append(data)
        self._txn += len(data)

    def _pub(self, topic, payload, qos, retain, pid, dup):
        t = _s(topic)
        if qos:
            t += struct.pack("!H", pid)
        h = bytearray([0x30 | qos << 1 | (1 if retain else 0) | (8 if dup else 0)])
        h += _remaining(len(t) + len(payload))
        h += t
        self._put(h)
        if payload:
            self._put(payload)

    def _subscribe(self, topics):
        self._pid = self._pid % 65535 + 1
        body = struct.pack("!H", self._pid)
        for t, q in topics:
            body += _s(t) + bytes([q])
        self._put(packet(0x82, body))

    def _flush(self):
        """Send what the socket takes now (at most _TXMAX bytes). False if it failed."""
        q = self._tx
        left = _TXMAX
        while q and left > 0:
            d = q[0]
            o = self._txo
            try:
                n = self._sock.send(memoryview(d)[o : o + left])
            except Exception as e:
                return self._io_error(e, "send: ")
            if not n:
                return True
            self._last_tx = self.clock.ticks_ms()
            self._txn -= n
            left -= n
            if o + n < len(d):
                self._txo = o + n
                return True
            q.pop(0)
            self._txo = 0
        return True

    # ---- connecting ------------------------------------------------------------------
    def _start(self, now):
        self._deadline = self.clock.ticks_add(now, self.connect_timeout_ms)
        self.state = _CONNECTING
        m = self.sock_mod
        try:
            if self._addr is None:  # resolved once, then cached (docs/mqtt.md)
                self._addr = m.getaddrinfo(self.host, self.port, 0, m.SOCK_STREAM)[0][-1]
            s = self._raw = m.socket(m.AF_INET, m.SOCK_STREAM)
            s.setblocking(False)
        except Exception as e:
            self._fail("socket: %r" % (e,))
            return
        try:
            s.setsockopt(6, 1, 1)  # TCP_NODELAY: small packets go out now (toolchain.md)
        except Exception:
            pass
        self._connect(True)

    def _connect(self, first=False):
        try:
            self._raw.connect(self._addr)
        except OSError as e:
            n = _errno(e)
            if n in _AGAIN:
                return
            if n not in _ISCONN or first:
                self._fail("connect: errno %s" % n)
                return
        # TCP is up
        s = self._raw
        if self.ssl_context is not None:
            try:
                kw = {"do_handshake_on_connect": False}
                if self.server_hostname:
                    kw["server_hostname"] = self.server_hostname
                s = self.ssl_context.wrap_socket(s, **kw)
            except Exception as e:
                self._fail("tls: %r" % (e,))
                return
        self._sock = s
        # MicroPython streams: readinto (None when nothing is waiting: no EAGAIN exception,
        # which costs ~600 bytes per poll); CPython sockets: recv_into
        self._readinto = getattr(s, "readinto", None) or s.recv_into
        if self._rb is None:  # every read lands here: made once, at the first connection
            self._rb = bytearray(_RX)  # (not at boot: the boot budget; no bytes per read)
        if self.ssl_context is not None:
            self.state = _TLS
            self._handshake()
        else:
            self._send_connect()

    def _handshake(self):
        hs = getattr(self._sock, "do_handshake", None)
        if hs is not None:  # MicroPython: the handshake runs inside the first read/write
            try:
                hs()
            except Exception as e:
                w = _why(e)
                if w is not None:
                    self._fail("tls handshake: " + w)
                return
        self._send_connect()

    def _send_connect(self):
        self._tx = []
        self._txn = self._txo = 0
        self._rx = bytearray()
        flags = 0x02  # clean session
        # queued field by field, not joined into one packet: the will (the state message,
        # ~500 B) is copied once, and a reconnect after an outage finds a heap whose holes
        # the queued messages pinned (docs/heap-budget.md)
        p = [_s(self.client_id)]
        w = self.will
        if callable(w):
            w = w()
        if w is not None:
            flags |= 0x04 | (w[2] << 3) | (0x20 if w[3] else 0)
            p += (_s(w[0]), _s(w[1]))
            w = None
        if self.user is not None:
            flags |= 0x80
            p.append(_s(self.user))
            if self.password is not None:
                flags |= 0x40
                p.append(_s(self.password))
        n = 10
        for x in p:
            n += len(x)
        self._put(bytes([0x10]) + _remaining(n) + b"\x00\x04MQTT\x04" + bytes([flags])
                  + struct.pack("!H", self.keepalive_s))
        for x in p:
            self._put(x)
        p = None
        self.state = _CONNACK
        self._last_rx = self.clock.ticks_ms()
        self._flush()

    def _fail(self, why):
        self.failures += 1
        self.last_error = why
        self._close(why)

    def _close(self, why):
        was = self.state
        for s in (self._sock, self._raw):
            if s is not None:
                try:
                    s.close()
                except Exception:
                    pass
        self._sock = self._raw = self._ping_sent = None
        self._rx = bytearray()
        self._skip = self._txn = self._txo = self._resent = 0
        self._tx = []
        self._inflight = {}
        self._order = []
        self.state = _DOWN
        now = self.clock.ticks_ms()
        if why == "disconnect":
            self._next_try = now
        else:
            # every failure kind waits; only a connection that stayed up longer than the
            # longest backoff starts the backoff again from the minimum
            if was == _UP and self.clock.ticks_diff(now, self._deadline) >= self.backoff_max_ms:
                self._backoff = self.backoff_min_ms
            # "equal jitter": wait between backoff/2 and backoff, then double up to the cap
            b = self._backoff
            half = b >> 1
            n = b - half + 1
            if self._rand is not None:
                j = self._rand(n)
            else:
                import os

                j = int.from_bytes(os.urandom(4), "big") % n
            self._next_try = self.clock.ticks_add(now, half + j)
            self._backoff = min(b * 2, self.backoff_max_ms)
        if was != _DOWN and self.on_disconnect is not None:
            self.on_disconnect(why)

    # ---- receiving -------------------------------------------------------------------
    def _io_error(self, e, what):
        """A socket call raised: True if it only would block (try again later), else the
        connection is failed with `what` and the reason, and False."""
        w = _why(e)
        if w is None:
            return True
        self._fail(what + w)
        return False

    def _read(self, now):
        # in place: the packets are parsed in _rb; only what a handler keeps (a PUBLISH's
        # topic and payload) and a packet cut off by the read (_rx) are copied
        rb = self._rb
        try:
            n = self._readinto(rb)
        except Exception as e:
            return self._io_error(e, "recv: ")
        if n is None:  # nothing waiting (MicroPython streams, TLS)
            return True
        if not n:
            self._fail("closed by broker")
            return False
        self._last_rx = now
        k = 0
        if self._skip:  # the tail of an oversized PUBLISH: discarded as it arrives
            k = min(self._skip, n)
            self._skip -= k
            if k == n:
                return True
        rx = self._rx
        if rx:  # the start of a packet is waiting: the new bytes join it, in place
            m = len(rx)
            rx[m:] = rb
            rx[m + n :] = b""
            rx[m : m + k] = b""
            return self._parse(rx, 0, len(rx))
        return self._parse(rb, k, n)

    def _parse(self, buf, pos, end):
        ok = True
        while ok and end - pos >= 2:
            try:
                r = _rlen(buf, pos, end)
            except ValueError as e:
                self._fail(str(e))
                return False
            if r < 0:
                break
            n = r >> 3
            h = r & 7
            first = buf[pos]
            if n + h > self.max_packet:
                # a PUBLISH is acknowledged and skipped (the connection stays up: a
                # retained oversized command cannot make a connect/fail loop); anything
                # else closes the connection
                p = pos + h + 2
                if end < p:
                    break  # its header is not all here yet
                p += (buf[p - 2] << 8) | buf[p - 1]
                qos = (first >> 1) & 3
                if self.state != _UP or first >> 4 != 3 or qos > 1 or p + 2 - pos > self.max_packet:
                    self._fail("packet of %d bytes exceeds max_packet" % (n + h))
                    return False
                if end < p + 2 * qos:
                    break
                if qos:
                    self._put(b"\x40\x02" + bytes(buf[p : p + 2]))
                e = pos + h + n
                self._skip = max(0, e - end)
                self._deliver(bytes(buf[pos + h + 2 : p]), None, first)
                if self.state != _UP:
                    return False
                pos = min(e, end)  # past it, or the end of buf
                continue
            if end - pos < n + h:
                break
            ok = self._handle(first, buf, pos + h, pos + h + n)
            pos += h + n
        if ok:  # what is left is the start of a packet: kept in _rx, in place
            rx = self._rx
            if buf is not rx:
                if pos < end:
                    rx[0:] = buf
                    rx[end:] = b""
                    rx[0:pos] = b""
            else:
                rx[0:pos] = b""
                if not rx and end > _RX:
                    self._rx = bytearray()  # a long packet's room is not held on to
        return ok

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

    def _handle(self, first, b, s, e):
        # the packet's body is b[s:e] (parsed in place)
        t = first >> 4
        if self.state == _CONNACK:
            if t != 2 or e - s != 2:
                self._fail("expected CONNACK")
                return False
            if b[s + 1]:
                self._fail("connection refused, code %d" % b[s + 1])
                return False
            self.state = _UP
            self.connects += 1
            # the backoff is NOT reset here: a broker that drops us right after CONNACK
            # would make a tight loop; _close resets it after a connection that lasted
            self._deadline = self.clock.ticks_ms()  # while up: when the connection came up
            self.last_error = None
            if self._subs:
                self._subscribe(self._subs)
            if self.on_connect is not None:
                self.on_connect()
        elif t == 3:  # PUBLISH: topic, [packet id], payload
            qos = (first >> 1) & 3
            p = s + 2 + ((b[s] << 8) | b[s + 1]) if e - s >= 2 else 0
            if not p or e < p + 2 * (qos > 0):
                self._fail("bad PUBLISH")
                return False
            topic = bytes(b[s + 2 : p])
            if qos:
                self._put(b"\x40\x02" + bytes(b[p : p + 2]))
                p += 2
            self._deliver(topic, bytes(b[p:e]), first)
        elif t == 4:  # PUBACK
            if e - s >= 2:
                pid = (b[s] << 8) | b[s + 1]
                if self._inflight.pop(pid, None) is not None:
                    self._resent = 0
                    self._order.remove(pid)
                    if self.on_puback is not None:
                        self.on_puback(pid)
        elif t == 13:  # PINGRESP
            self._ping_sent = None
        # SUBACK, and anything else (QoS 2 flow, UNSUBACK) this client does not use: ignored
        return self.state == _UP

    def _timers(self, now):
        # no bound-method or iterator allocations on the idle path (MicroPython heap churn)
        clock = self.clock
        if self._ping_sent is not None:
            if clock.ticks_diff(now, self._ping_sent) >= self.ping_timeout_ms:
                self._fail("no PINGRESP")
                return
        elif self.keepalive_s:
            # ping when half the keepalive passed without traffic out or in
            half = self.keepalive_s * 500
            if (clock.ticks_diff(now, self._last_tx) >= half
                    or clock.ticks_diff(now, self._last_rx) >= half):
                self._put(b"\xc0\x00")
                self._ping_sent = self._last_tx = now
        if not self._inflight:
            return
        # MQTT 3.1.1 §4.6: re-send in the order of the original sends, one per poll
        for pid in self._order:
            e = self._inflight[pid]
            if clock.ticks_diff(now, e[3]) >= self.retry_ms:
                if self._resent >= _RESENDS:
                    self._fail("no PUBACK")
                    return
                if self._txn + len(e[1]) + 8 <= self.tx_buffer:
                    self._resent += 1
                    e[3] = now
                    self.retransmits += 1
                    self._pub(e[0], e[1], 1, e[2], pid, True)
                break
