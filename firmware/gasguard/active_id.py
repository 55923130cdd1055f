"""Active identifier (tiers M and H): registration, heartbeat, remote read and update.

Messages are JSON objects authenticated with HMAC-SHA256 (gasguard.hmac256):
    mac = hex(HMAC(K_dir, canon(body)))   body = the message without "mac"
where canon() is gasguard.identity.canon (sorted-key compact ASCII JSON) and the
direction keys are derived from the per-device secret K:
    K_up   = HMAC(K, "gasguard-id up v1")     device -> platform: reg, hb, rsp
    K_down = HMAC(K, "gasguard-id down v1")   platform -> device: reg_ack, cmd
so a device message can never be reflected back as a platform message.

Replay protection: every registration carries a fresh device nonce that the ack must
echo (a stored or replayed ack has a stale nonce); uplinks carry a strictly increasing
seq (IdentityStore.next_seq); commands carry a platform seq that must exceed the last
accepted one (persisted). Formats: docs/identity.md and docs/protocol.md.

ActiveId is a non-blocking step machine: poll() does at most one message per call and
only hands bytes to send(kind, payload) (the reporter's queue); it never waits on the
network, so registration never delays alarming or valve closing.
"""

import json
from binascii import hexlify

from gasguard import hmac256
from gasguard.identity import (
    HB_DEFAULT, HB_MAX, HB_MIN, IdentityError, canon,
)
from gasguard.identifier import IdentifierError
from gasguard.validate import need_int, reject_unknown, ConfigError

PROTO = 1
UP_LABEL = b"gasguard-id up v1"
DOWN_LABEL = b"gasguard-id down v1"
OPS = ("get_id", "set_attr", "set_hb")
MAX_MSG = 2048
NONCE_BYTES = 8
MAX_PENDING = 4  # registration attempts whose ack is still accepted (the reporter queues 4)


def direction_keys(key):
    """(K_up, K_down) from the 32-byte device secret."""
    return hmac256.digest(key, UP_LABEL), hmac256.digest(key, DOWN_LABEL)


def mac_hex(dkey, body):
    return hexlify(hmac256.digest(dkey, canon(body))).decode()


def seal(dkey, body):
    """body (dict without "mac") -> wire bytes (canonical JSON with "mac")."""
    if "mac" in body:
        raise ValueError("body already has a mac")
    msg = dict(body)
    msg["mac"] = mac_hex(dkey, body)
    return canon(msg)


class MessageError(ValueError):
    pass


def _unhex(s):
    out = bytearray(len(s) // 2)
    for i in range(len(out)):
        hi = "0123456789abcdef".find(s[2 * i])
        lo = "0123456789abcdef".find(s[2 * i + 1])
        if hi < 0 or lo < 0:
            raise MessageError("mac must be 64 lower-case hex digits")
        out[i] = hi * 16 + lo
    return bytes(out)


def open_msg(dkey, payload):
    """Parse and authenticate wire bytes; return the body (dict without mac).
    Raises MessageError naming the reason; never anything else for any input."""
    try:
        if isinstance(payload, str):
            payload = payload.encode()
        if not isinstance(payload, (bytes, bytearray)):
            raise MessageError("payload must be bytes")
        if len(payload) > MAX_MSG:
            raise MessageError("message longer than %d bytes" % MAX_MSG)
        try:
            msg = json.loads(payload)
        except Exception:
            raise MessageError("not JSON")
        if not isinstance(msg, dict):
            raise MessageError("not a JSON object")
        tag = msg.get("mac")
        if not isinstance(tag, str) or len(tag) != 64:
            raise MessageError("mac missing or not 64 hex digits")
        body = {}
        for k in msg:
            if k != "mac":
                body[k] = msg[k]
        try:
            data = canon(body)
        except Exception:
            raise MessageError("body cannot be encoded canonically (floats?)")
        if not hmac256.equal(hmac256.digest(dkey, data), _unhex(tag)):
            raise MessageError("bad mac")
        if body.get("v") != PROTO:
            raise MessageError("protocol version is not %d" % PROTO)
        return body
    except MessageError:
        raise
    except Exception as e:  # defensive: hostile input must not crash the device
        raise MessageError("malformed message (%s)" % type(e).__name__)


def _int(v, lo, hi):
    return (not isinstance(v, bool)) and isinstance(v, int) and lo <= v <= hi


# ---- platform side helpers (host tests, the platform simulator, docs examples) -------------


def platform_ack(key, reg_payload, ts, status="registered"):
    """What the platform sends back for a registration it accepts (wire bytes)."""
    up, down = direction_keys(key)
    reg = open_msg(up, reg_payload)
    body = {"t": "reg_ack", "v": PROTO, "id": reg["id"], "nonce": reg["nonce"],
            "status": status, "ts": ts}
    return seal(down, body)


def platform_cmd(key, device_id, seq, op, args=None):
    up, down = direction_keys(key)
    body = {"t": "cmd", "v": PROTO, "id": device_id, "seq": seq, "op": op,
            "args": {} if args is None else args}
    return seal(down, body)


def platform_open(key, payload):
    """Authenticate a device uplink on the platform side; returns the body."""
    return open_msg(direction_keys(key)[0], payload)


# ---- the device side step machine -------------------------------------------------------

CFG_KEYS = ("heartbeat_s", "reg_retry_min_s", "reg_retry_max_s")


def _default_rng(n):
    try:
        import os

        return os.urandom(n)
    except (ImportError, AttributeError):
        import random

        return bytes([random.getrandbits(8) for _ in range(n)])


class ActiveId:
    """Registration / heartbeat / remote identifier access for one device.

    clock: ticks clock; ids: a locked IdentityStore of tier M or H; cfg: dict (heartbeat_s
    60..86400 default 3600, reg_retry_min_s 5..3600 default 30, reg_retry_max_s
    60..86400 default 3600); send(kind, payload_bytes) -> bool hands one uplink to the
    reporter (kind: "reg", "hb", "rsp"); fw: firmware version string; rng(n) -> n random
    bytes; status_fn() -> small dict of ints/strs put into heartbeats as "st".
    """

    def __init__(self, clock, ids, cfg, send, fw, rng=None, status_fn=None):
        if not isinstance(cfg, dict):
            raise ConfigError("active_id: config must be a dict")
        reject_unknown(cfg, CFG_KEYS, "active_id")
        self.cfg_hb_s = need_int(cfg, "heartbeat_s", HB_MIN, HB_MAX, HB_DEFAULT)
        self.retry_min_s = need_int(cfg, "reg_retry_min_s", 5, 3600, 30)
        self.retry_max_s = need_int(cfg, "reg_retry_max_s", 60, HB_MAX, 3600)
        if self.retry_max_s < self.retry_min_s:
            raise ConfigError("active_id: reg_retry_max_s %d is below reg_retry_min_s %d"
                              % (self.retry_max_s, self.retry_min_s))
        if ids.status() != "locked":
            raise IdentityError("active identifier needs a provisioned, locked identity")
        self.rec = ids.load()
        if self.rec["tier"] == "L":
            raise IdentityError("tier L has no active identifier")
        key = ids.device_key()
        if key is None:
            raise IdentityError("no device key")
        self.key_id = ids.key_id()
        self._up, self._down = direction_keys(key)
        key = None
        self.ids = ids
        self.clock = clock
        self.send = send
        self.fw = fw
        self.rng = rng or _default_rng
        self.status_fn = status_fn
        self.id = self.rec["id"]
        self.pending = []  # nonces of this boot's registrations not yet acknowledged (newest last)
        self._retry_s = self.retry_min_s
        self._next_reg = None  # ticks when the next registration attempt is due (None: now)
        self._last_hb = None   # ticks of the last heartbeat (None: send one now)
        self._last = clock.ticks_ms()
        self._up_ms = 0
        self.uptime_s = 0
        self._refresh()
        self.counters = {"reg_sent": 0, "hb_sent": 0, "rejected": 0, "cmds": 0, "send_refused": 0}
        self.last_reject = None

    # -- state --

    def _refresh(self):
        # cached: poll() runs every loop turn and must not copy dicts when nothing is due
        p = self.ids.platform()
        self.registered = p["registered"]
        self.hb_s = p["hb_s"] if p["hb_s"] else self.cfg_hb_s

    def _tick(self):
        now = self.clock.ticks_ms()
        d = self.clock.ticks_diff(now, self._last)
        if d > 0:
            self._up_ms += d
            if self._up_ms >= 1000:
                self.uptime_s += self._up_ms // 1000
                self._up_ms %= 1000
        self._last = now
        return now

    # -- messages --

    def _uplink(self, body):
        body["v"] = PROTO
        body["id"] = self.id
        body["seq"] = self.ids.next_seq()
        return seal(self._up, body)

    def build_reg(self):
        nonce = hexlify(bytes(self.rng(NONCE_BYTES))).decode()
        r = self.rec
        body = {"t": "reg", "sn": r["serial"], "model": r["model"], "tier": r["tier"],
                "kind": r["kind"], "hw": r["hw_rev"], "mfg": r["mfg_date"], "fw": self.fw,
                "kid": self.key_id, "nonce": nonce}
        return nonce, self._uplink(body)

    def build_hb(self):
        body = {"t": "hb", "fw": self.fw, "up": self.uptime_s}
        if self.status_fn is not None:
            body["st"] = self.status_fn()
        return self._uplink(body)

    def _read_data(self):
        info = self.ids.info()
        d = {}
        for k in info:
            if k not in ("status",):
                d[k] = info[k]
        d.update(self.ids.platform_fields())
        d["fw"] = self.fw
        d["hb_s"] = self.hb_s
        return d

    # -- the step machine --

    def poll(self):
        """Bounded work: at most one uplink handed to send(). Returns the kind sent or None."""
        now = self._tick()
        if not self.registered:
            if self._next_reg is not None and self.clock.ticks_diff(now, self._next_reg) < 0:
                return None
            nonce, payload = self.build_reg()
            ok = self.send("reg", payload)
            if ok is False:
                self.counters["send_refused"] += 1
            else:
                # the reporter may hold several attempts while offline and deliver them all
                # later: an ack for any of the last MAX_PENDING of this boot is fresh
                self.pending.append(nonce)
                if len(self.pending) > MAX_PENDING:
                    self.pending.pop(0)
                self.counters["reg_sent"] += 1
            self._next_reg = self.clock.ticks_add(now, self._retry_s * 1000)
            self._retry_s = min(self._retry_s * 2, self.retry_max_s)
            return "reg"
        if self._last_hb is not None and self.clock.ticks_diff(now, self._last_hb) < self.hb_s * 1000:
            return None
        ok = self.send("hb", self.build_hb())
        if ok is False:
            # the reporter could not take it: try again in a minute, not at full rate
            self.counters["send_refused"] += 1
            self._last_hb = self.clock.ticks_add(now, (HB_MIN - self.hb_s) * 1000)
            return None
        self.counters["hb_sent"] += 1
        self._last_hb = now
        return "hb"

    def _reject(self, why):
        self.counters["rejected"] += 1
        self.last_reject = why
        return (False, why)

    def on_message(self, payload):
        """Handle one downlink (wire bytes). Returns (accepted, reason). Never raises on input."""
        self._tick()
        try:
            body = open_msg(self._down, payload)
        except MessageError as e:
            return self._reject(str(e))
        if body.get("id") != self.id:
            return self._reject("addressed to another identifier")
        t = body.get("t")
        if t == "reg_ack":
            return self._on_ack(body)
        if t == "cmd":
            return self._on_cmd(body)
        return self._reject("unexpected message type")

    def _on_ack(self, b):
        if not self.pending:
            return self._reject("no registration pending")
        if b.get("nonce") not in self.pending:
            return self._reject("stale nonce (replayed acknowledgement)")
        if b.get("status") != "registered":
            return self._reject("registration refused by the platform")
        ts = b.get("ts")
        if not _int(ts, 0, 0x7FFFFFFF):
            return self._reject("ts must be an integer")
        self.pending = []
        self.ids.mark_registered(ts)
        self._refresh()
        self._retry_s = self.retry_min_s
        self._last_hb = self.clock.ticks_ms()  # first heartbeat one interval after registration
        return (True, "registered")

    def _on_cmd(self, b):
        try:
            return self._cmd(b)
        finally:
            self._refresh()

    def _cmd(self, b):
        seq = b.get("seq")
        if not _int(seq, 1, 0x3FFFFFFF):
            return self._reject("seq must be a positive integer")
        if seq <= self.ids.platform()["down_seq"]:
            return self._reject("old seq (replayed command)")
        op = b.get("op")
        args = b.get("args")
        if op not in OPS:
            return self._reject("unknown op")
        if not isinstance(args, dict):
            return self._reject("args must be an object")
        self.ids.set_down_seq(seq)  # consumed before acting: it can never run twice
        self.counters["cmds"] += 1
        rsp = {"t": "rsp", "re": seq, "op": op, "ok": True}
        try:
            if op == "get_id":
                rsp["data"] = self._read_data()
            elif op == "set_attr":
                rsp["data"] = self.ids.update_platform(args)
            elif op == "set_hb":
                for k in args:
                    if k != "seconds":
                        raise IdentityError("set_hb takes only seconds")
                self.ids.set_hb(args.get("seconds"))
                self._refresh()
                rsp["data"] = {"hb_s": self.hb_s}
        except (IdentityError, IdentifierError) as e:
            rsp["ok"] = False
            rsp["err"] = str(e)
        self.send("rsp", self._uplink(rsp))
        return (rsp["ok"], op if rsp["ok"] else rsp["err"])



# ---- wiring to the reporter (gasguard.reporter.Reporter) ------------------------------------


def attach_reporter(active, rep):
    """Connect an ActiveId to a Reporter: uplinks (reg/hb/rsp wire bytes) go to
    rep.identity_send(kind, payload), published verbatim on <base>/<dev>/identity (QoS 1;
    the message's own MAC covers it); downlinks on <base>/<dev>/identity_down reach
    active.on_message(payload) through rep.attach_identity()."""
    active.send = rep.identity_send
    rep.attach_identity(active.on_message)
