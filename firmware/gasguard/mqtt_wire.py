"""MQTT 3.1.1 wire format: packet builders and the remaining-length parser.

Split from gasguard.mqtt so each module compiles in a small heap (the unix port
compiles source on import; the ESP32 build freezes the package).
"""

import struct

from gasguard.validate import ConfigError, need_bool, need_int, reject_unknown

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


# connection states
DOWN = const(0)  # no socket; waiting for the backoff to expire
CONNECTING = const(1)  # TCP connect in progress
HANDSHAKE = const(2)  # TLS handshake in progress
CONNACK_WAIT = const(3)  # CONNECT sent, waiting for CONNACK
UP = const(4)

STATE_NAMES = ("down", "connecting", "tls", "connack_wait", "up")

# "not yet": EAGAIN/EWOULDBLOCK (11; BSD 35), EINPROGRESS (Linux 115, newlib/lwIP on the
# ESP32 119, BSD 36), EALREADY (Linux 114, newlib 120, BSD 37)
EAGAIN_CODES = (11, 35, 115, 114, 119, 120, 36, 37)
EISCONN_CODES = (106, 56, 127)  # EISCONN: Linux, BSD, newlib (ESP32)
RX_CHUNK = const(512)
TX_CHUNK = const(1460)

DEFAULTS = {
    "host": "127.0.0.1",
    "port": 1883,
    "client_id": "",
    "user": None,
    "password": None,
    "keepalive_s": 60,
    "connect_timeout_ms": 10000,  # TCP connect + TLS + CONNACK
    "ping_timeout_ms": 10000,
    "retry_ms": 5000,  # QoS 1 retransmission with DUP while connected
    "backoff_min_ms": 1000,
    "backoff_max_ms": 60000,
    "max_packet": 2048,  # largest packet we accept from the broker
    "max_inflight": 8,
    "tx_buffer": 4096,
    "allow_dns": False,
    "server_hostname": None,  # TLS SNI / certificate check name
}


class MQTTError(Exception):
    pass


def is_numeric_ipv4(host):
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p or not p.isdigit() or int(p) > 255:
            return False
    return True


def errno_of(e):
    """errno of an OSError: MicroPython has it in args[0]; CPython in .errno (None for
    OSError(n) built with one argument, so fall back to args[0])."""
    n = getattr(e, "errno", None)
    if n is None and e.args:
        n = e.args[0]
    return n


def _enc_str(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack("!H", len(s)) + s


def _remaining(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def packet(first, body):
    return bytes([first]) + _remaining(len(body)) + body


def connect_packet(client_id, keepalive_s, clean=True, will=None, user=None, password=None):
    flags = 0x02 if clean else 0
    payload = _enc_str(client_id)
    if will is not None:
        wt, wp, wq, wr = will
        flags |= 0x04 | (wq << 3) | (0x20 if wr else 0)
        payload += _enc_str(wt) + _enc_str(wp)
    if user is not None:
        flags |= 0x80
        payload += _enc_str(user)
        if password is not None:
            flags |= 0x40
            payload += _enc_str(password)
    body = _enc_str(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive_s) + payload
    return packet(0x10, body)


def publish_packet(topic, payload, qos=0, retain=False, pid=0, dup=False):
    first = 0x30 | (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = _enc_str(topic)
    if qos:
        body += struct.pack("!H", pid)
    if isinstance(payload, str):
        payload = payload.encode()
    return packet(first, body + payload)


def subscribe_packet(pid, topics):
    body = struct.pack("!H", pid)
    for t, q in topics:
        body += _enc_str(t) + bytes([q])
    return packet(0x82, body)


def parse_remaining(buf, pos):
    """Return (length, header_len) of the packet at pos, or None if incomplete; raise if bad."""
    mult = 1
    n = 0
    i = pos + 1
    while True:
        if i >= len(buf):
            return None
        b = buf[i]
        n += (b & 0x7F) * mult
        i += 1
        if not b & 0x80:
            return n, i - pos
        mult <<= 7
        if mult > 0x200000:
            raise MQTTError("bad remaining length")




# integer settings: name -> (lo, hi); backoff_max_ms is also checked >= backoff_min_ms
INT_KEYS = {
    "port": (1, 65535),
    "keepalive_s": (0, 65535),
    "connect_timeout_ms": (100, 600000),
    "ping_timeout_ms": (100, 600000),
    "retry_ms": (100, 600000),
    "backoff_min_ms": (10, 3600000),
    "backoff_max_ms": (10, 3600000),
    "max_packet": (64, 65536),
    "max_inflight": (1, 64),
    "tx_buffer": (256, 65536),
}


def configure(cfg, will=None):
    """Validate an MQTT config dict against DEFAULTS; return the complete dict."""
    c = dict(DEFAULTS)
    if cfg:
        reject_unknown(cfg, DEFAULTS, "mqtt")
        c.update(cfg)
    host = c["host"]
    if not isinstance(host, str) or not host:
        raise ConfigError("mqtt.host: expected a host string, got %r" % (host,))
    need_bool(c, "allow_dns")
    if not is_numeric_ipv4(host) and not c["allow_dns"]:
        raise ConfigError(
            "mqtt.host: %r is not a numeric IPv4 address; DNS blocks on the ESP32 "
            "(set allow_dns to accept the bounded wait, see docs/mqtt.md)" % host
        )
    for k in INT_KEYS:
        lo, hi = INT_KEYS[k]
        need_int(c, k, lo, hi)
    if c["backoff_max_ms"] < c["backoff_min_ms"]:
        raise ConfigError("mqtt.backoff_max_ms: must be >= backoff_min_ms")
    cid = c["client_id"]
    if not isinstance(cid, str) or len(cid) > 128:
        raise ConfigError("mqtt.client_id: expected a string of at most 128 chars")
    if will is not None:
        if len(will) != 4 or will[2] not in (0, 1):
            raise ConfigError("mqtt will: (topic, payload, qos 0/1, retain)")
    return c


def parse_publish(first, body):
    """(topic bytes, payload, pid) of an incoming PUBLISH (pid 0 for QoS 0), or None if
    malformed."""
    qos = (first >> 1) & 3
    if len(body) < 2:
        return None
    p = 2 + ((body[0] << 8) | body[1])
    if len(body) < p:
        return None
    topic = body[2:p]
    pid = 0
    if qos:
        if len(body) < p + 2:
            return None
        pid = (body[p] << 8) | body[p + 1]
        p += 2
    return topic, body[p:], pid
