"""The active identifier's downlink side (tiers M and H): a platform message
authenticated (open_msg) and handled (a registration acknowledgement here; the commands
get_id, set_attr, set_hb in gasguard.id_admin). Formats and keys: gasguard.active_id.

Loaded with gasguard.active_id only when a downlink arrives (ActiveId.on_message), and
released with it (gasguard.lazy): a heartbeat or a registration, the calls that come every
hour, load gasguard.active_id alone (docs/heap-budget.md). The platform's side
(gasguard.id_platform, host only) opens uplinks with open_msg too.
"""

from gasguard import hmac256
from gasguard.canon import canon


class MessageError(ValueError):
    pass


def open_msg(dkey, payload):
    """Parse and authenticate wire bytes; return the body (dict without mac).
    Raises MessageError naming the reason; never anything else for any input."""
    import json
    from binascii import unhexlify

    try:
        if isinstance(payload, str):
            payload = payload.encode()
        if not isinstance(payload, (bytes, bytearray)):
            raise MessageError("payload must be bytes")
        if len(payload) > 2048:
            raise MessageError("message longer than 2048 bytes")
        try:
            body = json.loads(payload)
        except Exception:  # (one reason for both: b"00" is 0 on MicroPython, an error on CPython)
            body = None
        if not isinstance(body, dict):
            raise MessageError("not a JSON object")
        tag = body.pop("mac", None)
        if not isinstance(tag, str) or len(tag) != 64:
            raise MessageError("mac missing or not 64 hex digits")
        try:
            if tag.lower() != tag:
                raise ValueError
            tag = unhexlify(tag)
        except Exception:
            raise MessageError("mac must be 64 lower-case hex digits")
        try:
            data = canon(body)
        except Exception:
            raise MessageError("body cannot be encoded canonically (floats?)")
        if not hmac256.equal(hmac256.digest(dkey, data), tag):
            raise MessageError("bad mac")
        if body.get("v") != 1:
            raise MessageError("protocol version is not 1")
        return body
    except MessageError:
        raise
    except Exception as e:  # defensive: hostile input must not crash the device
        raise MessageError("malformed message (%s)" % type(e).__name__)


def _int(v, hi):
    return (not isinstance(v, bool)) and isinstance(v, int) and 0 <= v <= hi


def reject(act, why):
    act.counters["rejected"] += 1
    act.last_reject = why
    return (False, why)


def on_message(act, payload):
    """ActiveId.on_message(payload): one downlink (wire bytes). Returns (accepted, reason).
    Never raises on input."""
    act._tick()
    try:
        b = open_msg(act._down, payload)
    except MessageError as e:
        return reject(act, str(e))
    if b.get("id") != act.id:
        return reject(act, "addressed to another identifier")
    t = b.get("t")
    if t == "reg_ack":
        if not act.pending:
            return reject(act, "no registration pending")
        if b.get("nonce") not in act.pending:
            return reject(act, "stale nonce (replayed acknowledgement)")
        if b.get("status") != "registered":
            return reject(act, "registration refused by the platform")
        ts = b.get("ts")
        if not _int(ts, 0x7FFFFFFF):
            return reject(act, "ts must be an integer")
        act.pending = []
        act.rec = None
        act.ids.mark_registered(ts)
        act.registered = True
        act._retry_s = act._rmin
        act._last_hb = act.clock.ticks_ms()  # first heartbeat one interval after it
        return (True, "registered")
    if t != "cmd":
        return reject(act, "unexpected message type")
    from gasguard.id_admin import command  # the rare side: commands (get_id, set_attr, set_hb)

    return command(act, b, reject)
