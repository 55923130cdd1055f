"""Downlink commands: authenticated, validated, replay-protected; never "open valve".

A command (topic <base>/<dev>/command, JSON) is
    {"v": 1, "id": "c-17", "cmd": "set_interval", "args": {"seconds": 300},
     "ctr": 42, "ts": 1790000000, "mac": "<64 hex>"}
mac = HMAC-SHA256(device key, canonical(dev, id, ctr, ts, cmd, args)) in lowercase hex,
canonical = "gasguard-cmd/1|<dev>|<id>|<ctr>|<ts>|<cmd>|<arg>" where <arg> is the decimal
seconds for set_interval, "<lost_safety>,<dropped_events>" for ack_losses and empty for
the others (sign() builds it; the platform does the same).

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
"""

import struct

from gasguard import hmac256, record
from gasguard.command_msg import (  # noqa: F401  (sign/canonical re-exported for callers)
    _CTR_MAX, ARGS, COMMANDS, FORBIDDEN, INTERVAL_MAX_S, INTERVAL_MIN_S, MAX_BYTES, CommandError,
    is_int, unhex, canonical, parse, sign,
)


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
        self.accepted = 0
        self.rejected = 0
        self.ctr_lost = False
        self.last_ctr = self._load_ctr()

    def _load_ctr(self):
        try:
            data = self.store.read(self.CTR_FILE)
            if not data:
                return 0  # a new device: nothing was ever accepted
            return struct.unpack("<Q", record.unseal(data))[0]
        except (OSError, ValueError):
            pass
        # a corrupt counter is treated as 0, so an old command could pass the counter
        # check: until wall time is known (the ts window then bounds it) nothing runs
        self.ctr_lost = True
        return 0

    def _save_ctr(self, ctr):
        self.store.write(self.CTR_FILE, record.seal(struct.pack("<Q", ctr)))

    def handle(self, payload, retained=False):
        """Never raises: every input, however broken, gets a result dict."""
        cid = None
        cmd = None
        try:
            if payload is None or len(payload) > MAX_BYTES:  # None: the client skipped it
                raise CommandError("malformed", "too_large")
            if retained:
                # delivered from the broker's retained store: not live, never run
                raise CommandError("malformed", "retained")
            msg = parse(payload)
            cid = msg["id"]
            cmd = msg["cmd"]
            q = self._check(msg)
            self._execute(msg)
        except Exception as e:
            self.rejected += 1
            if not isinstance(e, CommandError):  # a bug here must not reach the loop
                e = CommandError("malformed", type(e).__name__)
            r = {"id": cid, "cmd": cmd, "ok": False, "reason": e.reason}
            if e.detail:
                r["detail"] = e.detail
            return r
        self.accepted += 1
        r = {"id": cid, "cmd": cmd, "ok": True, "ctr": msg["ctr"]}
        if q:
            r["q"] = q
        return r

    def _check(self, msg):
        q = []
        if not self.key:
            raise CommandError("bad_mac", "device has no key")
        args = msg.get("args")
        want = hmac256.digest(
            self.key, canonical(self.dev, msg["id"], msg["ctr"], msg["ts"], msg["cmd"], args)
        )
        if not hmac256.equal(want, unhex(msg["mac"])):
            raise CommandError("bad_mac")
        # authenticated from here on: only now are the values interpreted
        if msg["ctr"] <= self.last_ctr:
            raise CommandError("replay", "counter %d <= %d" % (msg["ctr"], self.last_ctr))
        now = self.wall.now() if self.wall is not None else None
        if now is None:
            if self.ctr_lost:
                raise CommandError("stale", "counter lost and time unknown")
            q.append("time_unverified")
        elif abs(msg["ts"] - now) > self.window_s:
            raise CommandError("stale", "ts is %d s from device time" % (msg["ts"] - now))
        cmd = msg["cmd"]
        if cmd in FORBIDDEN:
            raise CommandError("forbidden", "the valve is never opened remotely")
        if cmd not in COMMANDS:
            raise CommandError("unknown_command")
        names = ARGS.get(cmd, ())
        if len(args or ()) != len(names):
            raise CommandError("bad_args", "%s takes %s" % (cmd, ",".join(names) or "no arguments"))
        for k in names:
            v = args.get(k)
            lo, hi = (INTERVAL_MIN_S, INTERVAL_MAX_S) if cmd == "set_interval" else (0, _CTR_MAX)
            if not is_int(v) or not lo <= v <= hi:
                raise CommandError("bad_args", "%s must be %d..%d" % (k, lo, hi))
        if getattr(self.handler, cmd, None) is None and cmd not in self.builtins:
            raise CommandError("unsupported")
        return q

    def _execute(self, msg):
        cmd = msg["cmd"]
        try:
            self._save_ctr(msg["ctr"])
        except OSError:
            raise CommandError("store_failed")
        self.last_ctr = msg["ctr"]
        args = tuple(msg["args"][k] for k in ARGS.get(cmd, ()))
        try:
            fn = getattr(self.handler, cmd, None)
            if fn is not None:
                fn(*args)
            fn = self.builtins.get(cmd)
            if fn is not None:
                fn(*args)
        except Exception as e:
            raise CommandError("handler_error", type(e).__name__)
