"""Downlink command messages: shape check, canonical encoding and signing.

The rules are described in gasguard/commands.py (and docs/protocol.md); this half is
shared with the host tools, which sign commands with sign(). Split from commands.py so
each module compiles in a small heap.
"""


import json

from gasguard import hmac256

COMMANDS = ("self_test", "hush", "report_now", "set_interval", "close_valve", "ack_losses")
FORBIDDEN = ("open_valve", "open", "reopen", "reset_valve", "valve_open")
INTERVAL_MIN_S = 10
INTERVAL_MAX_S = 86400
_KEYS = ("v", "id", "cmd", "args", "ctr", "ts", "mac")
MAX_BYTES = 512  # a command is ~230 bytes; anything longer is refused before json.loads
# the signed arguments of each command, in canonical order (others take none)
ARGS = {"set_interval": ("seconds",), "ack_losses": ("lost_safety", "dropped_events")}
_CTR_MAX = (1 << 53) - 1
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:"
_HEX = "0123456789abcdef"


class CommandError(ValueError):
    def __init__(self, reason, detail=""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def canonical(dev, cid, ctr, ts, cmd, args):
    """The signed string. Total: any args give a string, nothing here raises (a value
    that is not an int is written "?", which no valid command has, so its MAC fails)."""
    arg = []
    if isinstance(args, dict):
        for k in ARGS.get(cmd, ()):
            if k in args:
                v = args[k]
                arg.append("%d" % v if is_int(v) else "?")
    return ("gasguard-cmd/1|%s|%s|%d|%d|%s|%s" % (dev, cid, ctr, ts, cmd, ",".join(arg))).encode()


def _hex(b):
    out = []
    for x in b:
        out.append(_HEX[x >> 4])
        out.append(_HEX[x & 15])
    return "".join(out)


def sign(key, dev, cid, ctr, ts, cmd, args=None):
    """Build a signed command dict (used by the platform side, tools and tests)."""
    m = {"v": 1, "id": cid, "cmd": cmd, "ctr": ctr, "ts": ts}
    if args is not None:
        m["args"] = args
    m["mac"] = _hex(hmac256.digest(key, canonical(dev, cid, ctr, ts, cmd, args)))
    return m


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def parse(payload):
    """The command dict from payload bytes, shape-checked; raise CommandError(malformed).
    Only the envelope is checked here (keys, types of what the MAC covers; the caller
    checked the size); argument values are interpreted only after the MAC."""
    try:
        if isinstance(payload, (bytes, bytearray, memoryview)):
            payload = bytes(payload).decode()
        msg = json.loads(payload)
    except Exception:  # ValueError, UnicodeError, RecursionError, MemoryError: all "not JSON"
        raise CommandError("malformed", "not JSON")
    if not isinstance(msg, dict):
        raise CommandError("malformed", "not a JSON object")
    for k in msg:
        if k not in _KEYS:
            raise CommandError("malformed", "unknown key %s" % k)
    for k in ("v", "id", "cmd", "ctr", "ts", "mac"):
        if k not in msg:
            raise CommandError("malformed", "missing %s" % k)
    if msg["v"] != 1 or not is_int(msg["v"]):
        raise CommandError("malformed", "unsupported version")
    cid = msg["id"]
    if not isinstance(cid, str) or not 1 <= len(cid) <= 32:
        raise CommandError("malformed", "id must be a string of 1..32 chars")
    for ch in cid:
        if ch not in _ID_CHARS:
            raise CommandError("malformed", "id has a forbidden character")
    if not isinstance(msg["cmd"], str) or not 1 <= len(msg["cmd"]) <= 32:
        raise CommandError("malformed", "cmd must be a short string")
    if "|" in msg["cmd"]:
        raise CommandError("malformed", "cmd has a forbidden character")
    if not is_int(msg["ctr"]) or not 1 <= msg["ctr"] <= _CTR_MAX:
        raise CommandError("malformed", "ctr must be a positive integer")
    if not is_int(msg["ts"]) or not 0 <= msg["ts"] <= _CTR_MAX:
        raise CommandError("malformed", "ts must be a non-negative integer")
    mac = msg["mac"]
    if not isinstance(mac, str) or len(mac) != 64:
        raise CommandError("malformed", "mac must be 64 hex digits")
    for ch in mac:
        if ch not in _HEX:
            raise CommandError("malformed", "mac must be lowercase hex")
    if "args" in msg and not isinstance(msg["args"], dict):
        raise CommandError("malformed", "args must be an object")
    return msg


def unhex(s):
    out = bytearray(len(s) // 2)
    for i in range(len(out)):
        out[i] = (_HEX.index(s[2 * i]) << 4) | _HEX.index(s[2 * i + 1])
    return bytes(out)
