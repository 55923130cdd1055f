"""Wall time for messages: a non-blocking SNTP client (RFC 4330) over UDP.

poll() sends one 48-byte client request to a configured *numeric* server address and
later reads the reply without waiting (non-blocking socket); a reply is accepted only
if it is a server-mode packet with a plausible stratum, echoes our transmit timestamp
(against spoofed/stale replies) and gives a time after 2023. The result is an anchor
(unix seconds at a ticks_ms value); now() adds the ticks elapsed since. The anchor is
moved forward every hour so ticks_diff never sees more than half the 2**30 ms wrap.

Without a server (or before the first reply) now() returns None and messages carry
only uptime plus the "time_unsynced" quality flag. set(unix_s) lets the app or a
platform message set the time instead.
"""

import struct

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


NTP_DELTA = 2208988800  # 1900-01-01 to 1970-01-01 in seconds
MIN_VALID = 1672531200  # 2023-01-01: anything earlier is a broken reply
_REANCHOR_MS = const(3600000)
_EAGAIN = (11, 35, 115, 119)


class WallTime:
    def __init__(self, clock, socket_mod=None, server=None, port=123, resync_s=3600,
                 timeout_ms=3000, retry_ms=30000, rand=None):
        if server is not None:
            parts = server.split(".")
            if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
                raise ValueError("ntp server must be a numeric IPv4 address (no DNS on the device loop)")
            if socket_mod is None:
                raise ValueError("ntp server given without a socket module")
        self.clock = clock
        self.sock_mod = socket_mod
        self.server = server
        self.port = port
        self.resync_ms = resync_s * 1000
        self.timeout_ms = timeout_ms
        self.retry_ms = retry_ms
        self._rand = rand
        self._base = None  # unix seconds at _anchor
        self._anchor = 0
        self._sock = None
        self._nonce = None
        self._sent = 0
        self._next = clock.ticks_ms()
        self.syncs = 0
        self.failures = 0

    @property
    def synced(self):
        return self._base is not None

    def set(self, unix_s, at=None):
        if not isinstance(unix_s, int) or unix_s < MIN_VALID:
            raise ValueError("unix time %r is not plausible" % (unix_s,))
        self._base = unix_s
        self._anchor = self.clock.ticks_ms() if at is None else at
        self.syncs += 1

    def now(self):
        """Unix seconds (int) or None when not synchronised."""
        if self._base is None:
            return None
        d = self.clock.ticks_diff(self.clock.ticks_ms(), self._anchor)
        return self._base + d // 1000

    def _reanchor(self, now):
        if self._base is None:
            return
        d = self.clock.ticks_diff(now, self._anchor)
        if d >= _REANCHOR_MS:
            s = d // 1000
            self._base += s
            self._anchor = self.clock.ticks_add(self._anchor, s * 1000)

    def _close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except Exception:
                pass
            self._sock = None

    def _rand32(self):
        if self._rand is not None:
            return self._rand(1 << 30)
        import os

        return int.from_bytes(os.urandom(4), "big")

    def poll(self):
        now = self.clock.ticks_ms()
        self._reanchor(now)
        if self.server is None:
            return
        if self._sock is None:
            if self.clock.ticks_diff(now, self._next) < 0:
                return
            self._send(now)
            return
        self._receive(now)

    def _send(self, now):
        m = self.sock_mod
        try:
            s = m.socket(m.AF_INET, m.SOCK_DGRAM)
            s.setblocking(False)
            self._sock = s
            addr = m.getaddrinfo(self.server, self.port)[0][-1]
            req = bytearray(48)
            req[0] = 0x1B  # LI 0, version 3, mode 3 (client)
            self._nonce = struct.pack("!II", self._rand32(), self._rand32())
            req[40:48] = self._nonce
            s.sendto(req, addr)
        except OSError:
            self._fail(now)
            return
        self._sent = now

    def _fail(self, now):
        self.failures += 1
        self._close()
        self._next = self.clock.ticks_add(now, self.retry_ms)

    def _receive(self, now):
        try:
            data = self._sock.recv(64)
        except OSError as e:
            code = e.args[0] if e.args else None
            if code in _EAGAIN:
                if self.clock.ticks_diff(now, self._sent) >= self.timeout_ms:
                    self._fail(now)
                return
            self._fail(now)
            return
        t = parse_reply(data, self._nonce)
        if t is None:
            return  # not our answer: keep waiting until the timeout
        rtt = self.clock.ticks_diff(now, self._sent)
        self.set(t + (rtt // 2000), now)
        self._close()
        self._next = self.clock.ticks_add(now, self.resync_ms)


def parse_reply(data, nonce):
    """Unix seconds from an SNTP reply, or None if it is not a valid answer to nonce."""
    if data is None or len(data) < 48:
        return None
    mode = data[0] & 7
    stratum = data[1]
    if mode != 4 or stratum < 1 or stratum > 15 or (data[0] >> 6) == 3:
        return None
    if nonce is not None and bytes(data[24:32]) != bytes(nonce):
        return None
    secs = struct.unpack_from("!I", data, 40)[0]
    t = secs - NTP_DELTA
    if t < MIN_VALID:
        return None
    return t
