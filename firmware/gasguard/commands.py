"""Downlink commands: authenticated, validated, replay-protected; never "open valve".

A command (topic <base>/<dev>/command, JSON) is
    {"v": 1, "id": "c-17", "cmd": "set_interval", "args": {"seconds": 300},
     "ctr": 42, "ts": 1790000000, "mac": "<64 hex>"}
mac = HMAC-SHA256(device key, canonical(dev, id, ctr, ts, cmd, args)) in lowercase hex,
canonical = "gasguard-cmd/1|<dev>|<id>|<ctr>|<ts>|<cmd>|<arg>" where <arg> is the decimal
seconds for set_interval, "<lost_safety>,<dropped_events>" for ack_losses and empty for
the others (sign() builds it; the platform and the host tools do the same).

Checks, in order; the first failure rejects with that reason and changes nothing, and
handle() never raises (docs/protocol.md, "Authenticate first"):
    malformed       retained delivery / longer than MAX_BYTES / not a JSON object /
                    wrong envelope types / unknown keys / v != 1 (no argument is read)
    bad_mac         the HMAC does not match (or the device has no key)
    replay          ctr is not greater than the last accepted counter
    stale           wall time is synchronised and |ts - now| > window_s, or time is
                    unknown and the stored counter was corrupt
    forbidden       cmd would open the valve (there is no such command, ever)
    unknown_command cmd is not in the allow-list (COMMANDS)
    bad_args        arguments missing, extra or out of range
    unsupported     this device's handler has no such action (e.g. close_valve on a
                    detector without an interlock)
    store_failed    the new counter could not be persisted (so it is not executed)
    handler_error   the action raised
The accepted counter is persisted (record-framed) *before* the action runs, so a power
cut can never make a command replayable.

Parked (gasguard.lazy): the reporter keeps a Parked object; this module is loaded for
each command message and released after it. One module (the message checks and the
signing were a second one so each compiled from source in a small heap).
"""

import json
import struct
from binascii import hexlify, unhexlify

from gasguard import hmac256, record

COMMANDS = ("self_test", "hush", "report_now", "set_interval", "close_valve", "ack_losses")
FORBIDDEN = ("open_valve", "open", "reopen", "reset_valve", "valve_open")
INTERVAL_MIN_S = 10
INTERVAL_MAX_S = 86400
MAX_BYTES = 512  # a command is ~230 bytes; anything longer is refused before json.loads
# the signed arguments of each command, in canonical order (others take none)
ARGS = {"set_interval": ("seconds",), "ack_losses": ("lost_safety", "dropped_events")}
_CTR_MAX = (1 << 53) - 1
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:"
_HEX = "0123456789abcdef"
_KEYS = ("v", "id", "cmd", "ctr", "ts", "mac", "args")  # all but args required


class CommandError(Exception):
    """CommandError(reason[, detail]): the command is refused with that reason."""


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


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


def sign(key, dev, cid, ctr, ts, cmd, args=None):
    """Build a signed command dict (used by the platform side, tools and tests)."""
    m = {"v": 1, "id": cid, "cmd": cmd, "ctr": ctr, "ts": ts}
    if args is not None:
        m["args"] = args
    m["mac"] = hexlify(hmac256.digest(key, canonical(dev, cid, ctr, ts, cmd, args))).decode()
    return m


def parse(payload):
    """The command dict from payload bytes, shape-checked; raise CommandError(malformed).
    Only the envelope is checked here (keys, types of what the MAC covers; the caller
    checked the size); argument values are interpreted only after the MAC."""
    try:
        msg = json.loads(bytes(payload).decode() if not isinstance(payload, str) else payload)
    except Exception:  # ValueError, UnicodeError, RecursionError, MemoryError
        msg = None  # one reason on both interpreters: b"00" is 0 to MicroPython, an error to CPython
    if not isinstance(msg, dict):
        raise CommandError("malformed", "not a JSON object")
    for k in msg:
        if k not in _KEYS:
            raise CommandError("malformed", "unknown key %s" % k)
    for k in _KEYS[:6]:
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
    cmd = msg["cmd"]
    if not isinstance(cmd, str) or not 1 <= len(cmd) <= 32 or "|" in cmd:
        raise CommandError("malformed", "cmd must be a short string without |")
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


class Commands:
    """Commands(dev, key, store, handler, wall=None, window_s=300, builtins=None)

    handle(payload_bytes) -> result dict for the command_result message:
        {"id", "cmd", "ok", "reason"?, "detail"?, "ctr"?, "q"?}
    """

    CTR_FILE = "rp_cmdctr"

    def __init__(self, dev, key, store, handler, wall=None, window_s=300, builtins=None):
        self.dev = dev
        self.key = key
        self.store = store
        self.handler = handler
        self.wall = wall
        self.window_s = window_s
        self.builtins = builtins or {}  # cmd -> fn(*args): actions the reporter does itself
        self.accepted = self.rejected = 0
        self.ctr_lost = False
        try:
            data = store.read(self.CTR_FILE)
            # a new device (no file): nothing was ever accepted
            self.last_ctr = struct.unpack("<Q", record.unseal(data))[0] if data else 0
        except (OSError, ValueError):
            # a corrupt counter is treated as 0, so an old command could pass the counter
            # check: until wall time is known (the ts window then bounds it) nothing runs
            self.ctr_lost = True
            self.last_ctr = 0

    def _check(self, msg, cmd):
        if not self.key:
            raise CommandError("bad_mac", "device has no key")
        args = msg.get("args")
        want = hmac256.digest(self.key, canonical(self.dev, msg["id"], msg["ctr"], msg["ts"],
                                                  cmd, args))
        if not hmac256.equal(want, unhexlify(msg["mac"])):
            raise CommandError("bad_mac")
        # authenticated from here on: only now are the values interpreted
        if msg["ctr"] <= self.last_ctr:
            raise CommandError("replay", "counter %d <= %d" % (msg["ctr"], self.last_ctr))
        q = []
        now = self.wall.now() if self.wall is not None else None
        if now is None:
            if self.ctr_lost:
                raise CommandError("stale", "counter lost and time unknown")
            q.append("time_unverified")
        elif abs(msg["ts"] - now) > self.window_s:
            raise CommandError("stale", "ts is %d s from device time" % (msg["ts"] - now))
        if cmd in FORBIDDEN:
            raise CommandError("forbidden", "the valve is never opened remotely")
        if cmd not in COMMANDS:
            raise CommandError("unknown_command")
        names = ARGS.get(cmd, ())
        if len(args or ()) != len(names):
            raise CommandError("bad_args", "%s takes %s" % (cmd, ",".join(names) or "no arguments"))
        lo, hi = (INTERVAL_MIN_S, INTERVAL_MAX_S) if cmd == "set_interval" else (0, _CTR_MAX)
        for k in names:
            v = args.get(k)
            if not is_int(v) or not lo <= v <= hi:
                raise CommandError("bad_args", "%s must be %d..%d" % (k, lo, hi))
        if getattr(self.handler, cmd, None) is None and cmd not in self.builtins:
            raise CommandError("unsupported")
        return q

    def handle(self, payload, retained=False):
        """Never raises: every input, however broken, gets a result dict."""
        r = {"id": None, "cmd": None, "ok": False}
        try:
            if payload is None or len(payload) > MAX_BYTES:  # None: the client skipped it
                raise CommandError("malformed", "too_large")
            if retained:
                # delivered from the broker's retained store: not live, never run
                raise CommandError("malformed", "retained")
            msg = parse(payload)
            r["id"] = msg["id"]
            r["cmd"] = cmd = msg["cmd"]
            q = self._check(msg, cmd)
            try:
                self.store.write(self.CTR_FILE, record.seal(struct.pack("<Q", msg["ctr"])))
            except OSError:
                raise CommandError("store_failed")
            self.last_ctr = msg["ctr"]
            args = tuple(msg["args"][k] for k in ARGS.get(cmd, ()))
            try:
                for fn in (getattr(self.handler, cmd, None), self.builtins.get(cmd)):
                    if fn is not None:
                        fn(*args)
            except Exception as e:
                raise CommandError("handler_error", type(e).__name__)
        except Exception as e:
            self.rejected += 1
            a = e.args if isinstance(e, CommandError) else ("malformed", type(e).__name__)
            # a bug here must not reach the loop: answered malformed with its name
            r["reason"] = a[0]
            if len(a) > 1 and a[1]:
                r["detail"] = a[1]
            return r
        self.accepted += 1
        r["ok"] = True
        r["ctr"] = msg["ctr"]
        if q:
            r["q"] = q
        return r
