"""The wireless interlock frame: binary layout, HMAC tag, and the code tables.

Layout (little-endian, documented with test vectors in docs/interlock.md):

    off  size  field
    0    1     version       VERSION (1); anything else is rejected
    1    1     type          bit 7 set = sent by the valve controller
    2    4     counter       sender's frame counter, 1..2**30-1, strictly increasing per key
    6    4     echo          highest counter the sender has accepted from its peer (0 = none)
    10   n     body          fixed length per type (BODY_LEN)
    10+n 16    tag           HMAC-SHA256(key, bytes 0..10+n)[:16]

There is no OPEN type: the valve cannot be opened over the air. An authentic frame
of any type the receiver does not accept is rejected as "unsupported" and counted.

This module only encodes and checks; freshness (counter and echo) is decided by
gasguard.espnow_link, which owns the state.
"""

import struct

from gasguard import hmac256

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


VERSION = const(1)
HEADER = const(10)
TAG_LEN = const(16)
KEY_LEN = const(32)
NONCE_LEN = const(16)
PUB_LEN = const(32)  # an X25519 public key
MAX_COUNTER = const(0x3FFFFFFF)  # stays a small int on the ESP32
MAX_FRAME = const(250)  # ESP-NOW payload limit

FROM_VALVE = const(0x80)
T_HEARTBEAT = const(0x01)  # detector -> valve: flags
T_CLOSE = const(0x02)  # detector -> valve: close_id, cause
T_PAIR_REQ = const(0x20)  # detector -> valve: nonce_d, pub_d (pairing window only)
T_STATUS = const(0x81)  # valve -> detector: state, cause, flags
T_ACK = const(0x82)  # valve -> detector: close_id, state, cause
T_PAIR_RESP = const(0xA0)  # valve -> detector: nonce_d, nonce_v, pub_v; tag under the new key

BODY_LEN = {
    T_HEARTBEAT: 1,
    T_CLOSE: 5,
    T_PAIR_REQ: NONCE_LEN + PUB_LEN,
    T_STATUS: 3,
    T_ACK: 6,
    T_PAIR_RESP: 2 * NONCE_LEN + PUB_LEN,
}

# Valve states on the air (index = code).
STATES = ("unknown", "open", "closed", "closing", "fault")
# Why the valve closed (index = code); "none" while it has not closed.
CAUSES = ("none", "interlock", "over_pressure", "under_pressure", "over_flow", "manual", "link_lost", "unknown")
# Why a detector asked for the close (index = code); anything else travels as "other".
REQUESTS = ("other", "ch4", "co", "fault", "test", "platform", "manual")

# Key for the integrity tag of a pairing request (no secret exists yet): public.
PAIR_KEY = b"gasguard-pair-v1"
# What the link key of a pairing is derived under (pair_key): the X25519 secret is the
# HMAC key, this label and the whole exchange (nonces, public keys, addresses) the message.
PAIR_LABEL = b"gasguard-pair-x25519-v2"


class FrameError(ValueError):
    """A frame that cannot be accepted; .reason is the counter it is counted under."""

    @property
    def reason(self):
        return self.args[0]


def code_of(table, name):
    for i in range(len(table)):
        if table[i] == name:
            return i
    return 0


def name_of(table, code):
    if 0 <= code < len(table):
        return table[code]
    return table[0]


def request_code(cause):
    """Map a detector cause string ("ch4_alarm", "co", ...) to a REQUESTS code."""
    if not isinstance(cause, str):
        return 0
    for i in range(1, len(REQUESTS)):
        if cause == REQUESTS[i] or cause.startswith(REQUESTS[i] + "_"):
            return i
    return 0


def encode(key, ftype, counter, echo, body):
    """Return the whole frame as bytes."""
    n = BODY_LEN.get(ftype)
    if n is None:
        raise ValueError("unknown frame type 0x%02x" % ftype)
    if len(body) != n:
        raise ValueError("type 0x%02x needs a %d-byte body, got %d" % (ftype, n, len(body)))
    if not (0 <= counter <= MAX_COUNTER) or not (0 <= echo <= MAX_COUNTER):
        raise ValueError("counter/echo out of range")
    head = struct.pack("<BBII", VERSION, ftype, counter, echo)
    msg = head + bytes(body)
    return msg + hmac256.digest(key, msg)[:TAG_LEN]


def heartbeat(key, counter, echo, flags=0):
    return encode(key, T_HEARTBEAT, counter, echo, bytes((flags & 0xFF,)))


def close(key, counter, echo, close_id, request):
    return encode(key, T_CLOSE, counter, echo, struct.pack("<IB", close_id, request))


def status(key, counter, echo, state, cause, flags=0):
    return encode(key, T_STATUS, counter, echo, bytes((state, cause, flags & 0xFF)))


def ack(key, counter, echo, close_id, state, cause):
    return encode(key, T_ACK, counter, echo, struct.pack("<IBB", close_id, state, cause))


def pair_request(nonce_d, pub_d):
    return encode(PAIR_KEY, T_PAIR_REQ, 0, 0, bytes(nonce_d) + bytes(pub_d))


def pair_key(secret, nonce_d, nonce_v, pub_d, pub_v, mac_d, mac_v):
    """The link key of a pairing: HMAC-SHA256 under the X25519 shared secret of both ends
    (never on the air) over the label, both nonces, both public keys and both MACs.
    An all-zero secret (the peer sent a small-order point, RFC 7748 section 6.1) makes no
    key: FrameError("malformed")."""
    acc = 0
    for b in secret:
        acc |= b
    if not acc:
        raise FrameError("malformed")
    msg = PAIR_LABEL + bytes(nonce_d) + bytes(nonce_v) + bytes(pub_d) + bytes(pub_v) + bytes(mac_d) + bytes(mac_v)
    return hmac256.digest(secret, msg)


def pair_response(key, nonce_d, nonce_v, pub_v):
    return encode(key, T_PAIR_RESP, 0, 0, bytes(nonce_d) + bytes(nonce_v) + bytes(pub_v))


def peek(buf):
    """Check version and length; return (type, counter, echo) without authenticating."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise FrameError("malformed")
    if len(buf) < HEADER + TAG_LEN or len(buf) > MAX_FRAME:
        raise FrameError("malformed")
    if buf[0] != VERSION:
        raise FrameError("version")
    _v, ftype, counter, echo = struct.unpack_from("<BBII", buf, 0)
    return ftype, counter, echo


def authentic(key, buf):
    """True when the tag matches (constant time)."""
    n = len(buf) - TAG_LEN
    want = hmac256.digest(key, bytes(buf[:n]))[:TAG_LEN]
    return hmac256.equal(want, bytes(buf[n:]))


def decode(key, buf, accept):
    """Check and split an authenticated frame.

    accept: the frame types this receiver takes. Returns (type, counter, echo, fields)
    where fields is a tuple per type. Raises FrameError("malformed" | "version" |
    "bad_tag" | "unsupported").
    """
    ftype, counter, echo = peek(buf)
    if not authentic(key, buf):
        raise FrameError("bad_tag")
    n = BODY_LEN.get(ftype)
    if ftype not in accept or n is None:
        raise FrameError("unsupported")
    if len(buf) != HEADER + n + TAG_LEN or counter < 1 or counter > MAX_COUNTER:
        raise FrameError("malformed")
    return ftype, counter, echo, fields(ftype, buf)


def fields(ftype, buf):
    if ftype == T_HEARTBEAT:
        return (buf[HEADER],)
    if ftype == T_CLOSE:
        return struct.unpack_from("<IB", buf, HEADER)
    if ftype == T_STATUS:
        return (buf[HEADER], buf[HEADER + 1], buf[HEADER + 2])
    if ftype == T_ACK:
        return struct.unpack_from("<IBB", buf, HEADER)
    if ftype == T_PAIR_REQ:
        return (bytes(buf[HEADER : HEADER + NONCE_LEN]), bytes(buf[HEADER + NONCE_LEN : HEADER + NONCE_LEN + PUB_LEN]))
    if ftype == T_PAIR_RESP:
        a = HEADER + NONCE_LEN
        b = a + NONCE_LEN
        return (bytes(buf[HEADER:a]), bytes(buf[a:b]), bytes(buf[b : b + PUB_LEN]))
    raise FrameError("unsupported")


def decode_pair_request(buf):
    """Return (nonce_d, pub_d) of a well-formed pairing request, or raise FrameError."""
    ftype, counter, echo = peek(buf)
    if ftype != T_PAIR_REQ:
        raise FrameError("unsupported")
    if len(buf) != HEADER + NONCE_LEN + PUB_LEN + TAG_LEN or counter or echo:
        raise FrameError("malformed")
    if not authentic(PAIR_KEY, buf):
        raise FrameError("bad_tag")
    return fields(T_PAIR_REQ, buf)


def split_pair_response(buf, nonce_d):
    """Return (nonce_v, pub_v) of a response to our nonce_d, its tag not yet checked (the
    key it is under needs our private key: pair_key), or raise FrameError."""
    ftype, counter, echo = peek(buf)
    if ftype != T_PAIR_RESP:
        raise FrameError("unsupported")
    if len(buf) != HEADER + 2 * NONCE_LEN + PUB_LEN + TAG_LEN or counter or echo:
        raise FrameError("malformed")
    f = fields(T_PAIR_RESP, buf)
    if f[0] != bytes(nonce_d):
        raise FrameError("bad_tag")  # not an answer to this window's request
    return f[1], f[2]
