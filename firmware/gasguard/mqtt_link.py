"""The socket half of the MQTT client: non-blocking connect, TLS, send and receive.

MQTTClient (gasguard.mqtt) subclasses Link; split so each module compiles in a small
heap. Every call here is non-blocking; see the rules in gasguard/mqtt.py.
"""

from gasguard.mqtt_wire import (
    CONNECTING, DOWN, EAGAIN_CODES, EISCONN_CODES, HANDSHAKE, RX_CHUNK, TX_CHUNK, UP,
    errno_of,
)


def would_block(e):
    """True for "try again later": EAGAIN/EINPROGRESS, or CPython's ssl.SSLWantRead/
    WriteError (an OSError subclass whose errno is the SSL error code, not EAGAIN)."""
    if "Want" in type(e).__name__:
        return True
    return isinstance(e, OSError) and errno_of(e) in EAGAIN_CODES


def describe(e):
    if isinstance(e, OSError) and errno_of(e) is not None:
        return "errno %s" % errno_of(e)
    return type(e).__name__


class Link:
    def _jitter(self, n):
        if n <= 0:
            return 0
        if self._rand is not None:
            return self._rand(n)
        import os

        r = int.from_bytes(os.urandom(4), "big")
        return r % n

    def _schedule_retry(self, now):
        # "equal jitter": wait between backoff/2 and backoff, then double up to the cap
        b = self._backoff
        half = b >> 1
        self._next_try = self.clock.ticks_add(now, half + self._jitter(b - half + 1))
        self._backoff = min(b * 2, self.backoff_max_ms)

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
        self._sock = None
        self._raw = None
        self._rx = bytearray()
        self._skip = 0
        self._tx = bytearray()
        self._inflight = {}
        self._order = []
        self._ping_sent = None
        self.state = DOWN
        now = self.clock.ticks_ms()
        if why == "disconnect":
            self._next_try = now
        else:
            # every failure kind waits; only a connection that stayed up longer than the
            # longest backoff starts the backoff again from the minimum
            if was == UP and self.clock.ticks_diff(now, self._deadline) >= self.backoff_max_ms:
                self._backoff = self.backoff_min_ms
            self._schedule_retry(now)
        if was != DOWN and self.on_disconnect is not None:
            self.on_disconnect(why)

    def _resolve(self):
        if self._addr is not None:
            return self._addr
        ai = self.sock_mod.getaddrinfo(self.host, self.port, 0, self.sock_mod.SOCK_STREAM)
        addr = ai[0][-1]
        self._addr = addr  # cached: resolved once (docs/mqtt.md)
        return addr

    def _start_connect(self, now):
        self._deadline = self.clock.ticks_add(now, self.connect_timeout_ms)
        try:
            addr = self._resolve()
            s = self.sock_mod.socket(self.sock_mod.AF_INET, self.sock_mod.SOCK_STREAM)
        except Exception as e:
            self.state = CONNECTING
            self._fail("socket: %r" % (e,))
            return
        self._raw = s
        self.state = CONNECTING
        try:
            s.setblocking(False)
        except Exception as e:
            self._fail("setblocking: %r" % (e,))
            return
        try:
            s.setsockopt(6, 1, 1)  # TCP_NODELAY: small packets go out now (toolchain.md)
        except Exception:
            pass
        self._connect_once(addr, first=True)

    def _connect_once(self, addr, first=False):
        try:
            self._raw.connect(addr)
        except OSError as e:
            code = errno_of(e)
            if code in EAGAIN_CODES:
                return
            if code in EISCONN_CODES and not first:
                self._tcp_up()
                return
            self._fail("connect: errno %s" % code)
            return
        self._tcp_up()

    def _step_connect(self, now):
        self._connect_once(self._resolve())

    def _tcp_up(self):
        if self.ssl_context is not None:
            try:
                kw = {"do_handshake_on_connect": False}
                if self.server_hostname:
                    kw["server_hostname"] = self.server_hostname
                self._sock = self.ssl_context.wrap_socket(self._raw, **kw)
                self._readinto = getattr(self._sock, "readinto", None)
            except Exception as e:
                self._fail("tls: %r" % (e,))
                return
            self.state = HANDSHAKE
            self._step_tls(self.clock.ticks_ms())
            return
        self._sock = self._raw
        self._readinto = getattr(self._raw, "readinto", None)
        self._send_connect()

    def _step_tls(self, now):
        hs = getattr(self._sock, "do_handshake", None)
        if hs is None:  # MicroPython: the handshake runs inside the first read/write
            self._send_connect()
            return
        try:
            hs()
        except Exception as e:
            if would_block(e):
                return
            self._fail("tls handshake: %s" % describe(e))
            return
        self._send_connect()

    def _flush(self):
        """Send what the socket takes now. Return False if the connection failed."""
        if not self._tx:
            return True
        try:
            n = self._sock.send(self._tx[:TX_CHUNK])
        except Exception as e:
            if would_block(e):
                return True
            self._fail("send: %s" % describe(e))
            return False
        if n:
            self._tx = self._tx[n:]
            self._last_tx = self.clock.ticks_ms()
        return True

    def _read(self, now):
        rd = self._readinto
        try:
            if rd is not None:
                # MicroPython streams: readinto() returns None when nothing is waiting,
                # without raising (an EAGAIN exception costs ~600 bytes of heap per poll)
                if self._rxbuf is None:
                    self._rxbuf = bytearray(RX_CHUNK)
                n = rd(self._rxbuf)
                if n is None:
                    return True
                data = memoryview(self._rxbuf)[:n]
            else:
                data = self._sock.recv(RX_CHUNK)
        except Exception as e:
            if would_block(e):
                return True
            self._fail("recv: %s" % describe(e))
            return False
        if data is None:  # MicroPython TLS socket with nothing to read
            return True
        if not data:
            self._fail("closed by broker")
            return False
        self._last_rx = now
        if self._skip:  # the tail of an oversized PUBLISH: discarded as it arrives
            k = min(self._skip, len(data))
            self._skip -= k
            if k == len(data):
                return True
            data = data[k:]
        self._rx.extend(data)
        return self._parse()
