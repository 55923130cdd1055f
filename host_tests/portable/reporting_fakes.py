"""Strict fake network for the reporting tests (runs on CPython and MicroPython).

FakeNet is a stand-in for the `socket` module: sockets it makes refuse every
connect/send/recv while they are still blocking (a real blocking call could hang the
safety loop), so a test that passes proves the client only uses non-blocking calls.
The test plays the broker: it reads what the client sent (sock.tx) and feeds replies
(sock.feed). Modes: "ok" (connect completes on the 2nd try), "lwip" (the ESP32's errno
values: EINPROGRESS 119, EALREADY 120, then EISCONN 127), "refused", "unreachable",
"stall" (TCP accepted, the peer never says anything), "hang" (connect never completes).
"""

import struct

from gasguard.mqtt import packet, parse_remaining  # noqa: F401  (the tests' broker side)
from simboard import MisuseError


class FakeSock:
    def __init__(self, net, af, kind):
        self.net = net
        self.kind = kind
        self.blocking = True
        self.connected = False
        self.closed = False
        self.peer_closed = False
        self.tries = 0
        self.rx = bytearray()
        self.tx = bytearray()
        self.sent_to = []
        self.opts = []
        self.send_limit = None  # max bytes accepted per send() (None: all)

    def _nb(self, what):
        if self.blocking:
            raise MisuseError("%s() on a blocking socket" % what)
        if self.closed:
            raise OSError(9)  # EBADF

    def setblocking(self, flag):
        self.blocking = bool(flag)

    def settimeout(self, t):
        self.blocking = t is None or t > 0
        if t is not None and t > 0:
            raise MisuseError("a socket timeout > 0 blocks the caller")

    def setsockopt(self, *a):
        self.opts.append(a)

    def connect(self, addr):
        self._nb("connect")
        if len(self.net.connects) < 64:
            self.net.connects.append(addr)
        mode = self.net.mode
        self.tries += 1
        if mode == "refused" and self.tries > 1:
            raise OSError(111)
        if mode == "unreachable":
            raise OSError(113)
        if mode == "lwip":  # ESP32 newlib errnos: EINPROGRESS 119, EALREADY 120, EISCONN 127
            if self.tries == 1:
                raise OSError(119)
            if self.tries == 2:
                raise OSError(120)
            self.connected = True
            raise OSError(127)
        if self.connected:
            raise OSError(106)  # EISCONN
        if self.tries == 1 or mode == "hang":
            raise OSError(115)  # EINPROGRESS
        self.connected = True

    def send(self, data):
        self._nb("send")
        if not self.connected:
            raise OSError(11)
        if self.peer_closed:
            raise OSError(104)  # ECONNRESET
        n = len(data)
        if self.send_limit is not None:
            n = min(n, self.send_limit)
        self.tx.extend(bytes(data[:n]))
        return n

    def write(self, data):
        return self.send(data)

    def recv(self, n):
        self._nb("recv")
        if self.rx:
            k = min(n, len(self.rx), self.net.trickle or n)
            out = bytes(self.rx[:k])
            self.rx = self.rx[k:]
            return out
        if self.peer_closed:
            return b""
        raise OSError(11)  # EAGAIN

    def readinto(self, buf):
        """MicroPython stream semantics: None when nothing is waiting, 0 at EOF."""
        self._nb("readinto")
        if self.peer_closed and not self.rx:
            return 0
        if not self.rx:
            return None
        rx = self.rx
        k = min(len(buf), len(rx), self.net.trickle or len(buf))
        for i in range(k):  # in place, as a real stream: allocates nothing
            buf[i] = rx[i]
        rx[0:k] = b""
        return k

    def sendto(self, data, addr):
        self._nb("sendto")
        self.sent_to.append((bytes(data), addr))
        return len(data)

    def close(self):
        self.closed = True

    # ---- the broker's side -------------------------------------------------------------
    def feed(self, data):
        self.rx.extend(data)

    def take(self):
        """Packets the client sent since the last take(): list of (first_byte, body)."""
        out = []
        buf = self.tx
        pos = 0
        while pos < len(buf):
            r = parse_remaining(buf, pos)
            if r is None:
                break
            n, h = r
            if len(buf) - pos < n + h:
                break
            out.append((buf[pos], bytes(buf[pos + h : pos + h + n])))
            pos += n + h
        self.tx = self.tx[pos:]
        return out


class FakeNet:
    AF_INET = 2
    SOCK_STREAM = 1
    SOCK_DGRAM = 2

    def __init__(self, mode="ok"):
        self.mode = mode
        self.sockets = []  # the last 8 sockets made
        self.made = 0
        self.connects = []
        self.lookups = []
        self.trickle = 0  # >0: recv returns at most this many bytes

    def getaddrinfo(self, host, port, *a):
        self.lookups.append((host, port))
        return [(2, 1, 6, "", (host, port))]

    def socket(self, af=2, kind=1, *a):
        s = FakeSock(self, af, kind)
        self.sockets.append(s)
        self.made += 1
        if len(self.sockets) > 8:  # keep the heap small on MicroPython: old ones are closed
            self.sockets.pop(0)
        return s

    @property
    def last(self):
        return self.sockets[-1] if self.sockets else None


CONNACK_OK = b"\x20\x02\x00\x00"


def publish_packet(topic, payload, qos=0, retain=False, pid=0, dup=False):
    """A PUBLISH as the broker sends it (the tests' downlink)."""
    if isinstance(topic, str):
        topic = topic.encode()
    if isinstance(payload, str):
        payload = payload.encode()
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", pid) if qos else b"")
    return packet(0x30 | qos << 1 | (1 if retain else 0) | (8 if dup else 0), body + payload)


def puback(pid):
    return b"\x40\x02" + struct.pack("!H", pid)


def publish_fields(first, body):
    """(topic, payload, qos, retain, dup, pid) of a PUBLISH the client sent."""
    qos = (first >> 1) & 3
    tl = (body[0] << 8) | body[1]
    topic = body[2 : 2 + tl].decode()
    p = 2 + tl
    pid = 0
    if qos:
        pid = (body[p] << 8) | body[p + 1]
        p += 2
    return topic, body[p:], qos, bool(first & 1), bool(first & 8), pid


def run_until_up(client, clock, step_ms=10, limit=100):
    """Drive a client against the FakeNet until CONNECT is sent; answer CONNACK; poll."""
    for _ in range(limit):
        client.poll()
        s = client._sock
        if s is not None and s.tx:
            pk = s.take()
            assert pk and pk[0][0] == 0x10, pk
            s.feed(CONNACK_OK)
            client.poll()
            assert client.connected
            return pk[0]
        clock.advance(step_ms)
    raise AssertionError("client never sent CONNECT")


class AutoBroker:
    """Plays a well-behaved broker on the newest FakeNet socket: CONNACK, PUBACK, SUBACK,
    PINGRESP. Records every PUBLISH as (topic, payload, qos, retain, dup). Set ack=False to
    hold PUBACKs (a broker that takes messages and never confirms them)."""

    def __init__(self, net):
        self.net = net
        self.published = []
        self.ack = True
        self.connects = 0

    def service(self):
        s = self.net.last
        if s is None or s.closed or not s.connected:
            return
        for first, body in s.take():
            t = first >> 4
            if t == 1:
                self.connects += 1
                s.feed(CONNACK_OK)
            elif t == 3:
                f = publish_fields(first, body)
                self.published.append(f[:5])
                if f[2] and self.ack:
                    s.feed(puback(f[5]))
            elif t == 8:
                s.feed(b"\x90\x03" + body[:2] + b"\x01")
            elif t == 12:
                s.feed(b"\xd0\x00")

    def messages(self, kind=None):
        import json

        out = []
        for topic, payload, qos, retain, dup in self.published:
            if kind is None or topic.endswith("/" + kind):
                out.append(json.loads(payload))
        return out

