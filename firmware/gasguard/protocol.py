"""The platform protocol (docs/protocol.md): topics, message kinds, the common envelope.

Every message is one JSON object with the envelope
    {"v": 1, "kind": K, "dev": id, "fw": version, "boot": n, "seq": n, "up_ms": n,
     ["ts": unix_seconds,] ["q": [flags]], ...kind fields}
on topic  <base>/<dev>/<kind>.  (dev, boot, seq) is unique per message: the platform
deduplicates on it and orders by (boot, seq).
"""

import json

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


PROTOCOL_VERSION = const(1)

TELEMETRY = "telemetry"
EVENT = "event"
VALVE = "valve"
STATE = "state"
IDENTITY = "identity"
COMMAND = "command"
COMMAND_RESULT = "command_result"

KINDS = (TELEMETRY, EVENT, VALVE, STATE, IDENTITY, COMMAND, COMMAND_RESULT)

# device event name -> message kind; anything else is an "event"
_VALVE_EVENTS = ("valve", "interlock", "relay")
# safety events are never dropped by the outbox (docs/protocol.md, "Outbox")
SAFETY_EVENTS = ("alarm", "fault", "valve", "interlock", "relay")

# per-kind delivery: (qos, retain)
DELIVERY = {
    TELEMETRY: (0, False),
    EVENT: (1, False),
    VALVE: (1, False),
    STATE: (1, True),
    IDENTITY: (1, False),
    COMMAND_RESULT: (1, False),
}

# Kind codes for compact storage in the outbox
KIND_CODES = {EVENT: 1, VALVE: 2, COMMAND_RESULT: 3, IDENTITY: 4, STATE: 5, TELEMETRY: 6}
KIND_BY_CODE = {1: EVENT, 2: VALVE, 3: COMMAND_RESULT, 4: IDENTITY, 5: STATE, 6: TELEMETRY}


def topic(base, dev, kind):
    return "%s/%s/%s" % (base, dev, kind)


def kind_of_event(name):
    return VALVE if name in _VALVE_EVENTS else EVENT


def is_safety(name):
    return name in SAFETY_EVENTS


def envelope(kind, ident, boot, seq, up_ms, ts=None, q=None):
    m = {
        "v": PROTOCOL_VERSION,
        "kind": kind,
        "dev": ident["device_id"],
        "fw": ident["fw"],
        "boot": boot,
        "seq": seq,
        "up_ms": up_ms,
    }
    if ts is not None:
        m["ts"] = ts
    if q:
        m["q"] = q
    return m


def event_body(m, ev):
    """Add a detector/valve event dict to an envelope: "event" names it, "data" has the rest."""
    name = ev.get("event")
    if not isinstance(name, str) or not name:
        raise ValueError("event without a name: %r" % (ev,))
    m["event"] = name
    data = {}
    for k in ev:
        if k != "event":
            data[k] = ev[k]
    m["data"] = data
    return m


def plain(v, depth=0):
    """True if v is JSON data (None, bool, int, float, str, list/tuple, dict with str keys),
    at most 4 levels deep. MicroPython's json.dumps does not refuse other objects: it
    writes their repr, which is not JSON, so messages are checked before encoding."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if depth >= 4:
        return False
    if isinstance(v, (list, tuple)):
        for x in v:
            if not plain(x, depth + 1):
                return False
        return True
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str) or not plain(v[k], depth + 1):
                return False
        return True
    return False


def encode(m):
    """Compact JSON bytes (no spaces) for the wire and the outbox."""
    return json.dumps(m, separators=(",", ":")).encode()
