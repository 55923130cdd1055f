"""Active identifier (tiers M and H): registration, heartbeat, remote read and update.

Messages are JSON objects authenticated with HMAC-SHA256 (gasguard.hmac256):
    mac = hex(HMAC(K_dir, canon(body)))   body = the message without "mac"
where canon() is gasguard.canon (sorted-key compact ASCII JSON) and the direction keys are
derived from the per-device secret K:
    K_up   = HMAC(K, "gasguard-id up v1")     device -> platform: reg, hb, rsp
    K_down = HMAC(K, "gasguard-id down v1")   platform -> device: reg_ack, cmd
so a device message can never be reflected back as a platform message.

Replay protection: every registration carries a fresh device nonce that the ack must
echo (a stored or replayed ack has a stale nonce); uplinks carry a strictly increasing
seq (reserved on flash in blocks of 16 before use: id_seq); commands carry a platform seq
that must exceed the last accepted one (persisted). Formats: docs/identity.md and
docs/protocol.md. The platform's side (acks, commands, opening uplinks) is
gasguard.id_platform, which no device carries.

ActiveId is a non-blocking step machine: poll() does at most one message per call and
only hands bytes to send(kind, payload) (the reporter's queue); it never waits on the
network, so registration never delays alarming or valve closing. What runs often (the
heartbeat decision, sealing a registration or a heartbeat, an acknowledgement) is this
module and gasguard.canon only: the identity store is loaded to build the object and to
record a registration; the commands (get_id, set_attr, set_hb) are gasguard.id_admin.
"""

from binascii import hexlify

from gasguard import hmac256, record
from gasguard.canon import canon

MAX_PENDING = 4  # registration attempts whose ack is still accepted (the reporter queues 4)


def direction_keys(key):
    """(K_up, K_down) from the 32-byte device secret."""
    return hmac256.digest(key, b"gasguard-id up v1"), hmac256.digest(key, b"gasguard-id down v1")


def seal(dkey, body):
    """body (dict without "mac") -> wire bytes (canonical JSON with "mac")."""
    if "mac" in body:
        raise ValueError("body already has a mac")
    msg = dict(body)
    msg["mac"] = hexlify(hmac256.digest(dkey, canon(body))).decode()
    return canon(msg)


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


def _rng(n):
    import os

    return os.urandom(n)


class ActiveId:
    """Registration / heartbeat / remote identifier access for one device.

    clock: ticks clock; ids: a locked IdentityStore of tier M or H; cfg: the config's identity
    section (heartbeat_s 60..86400 default 3600, reg_retry_min_s 5..3600 default 30,
    reg_retry_max_s 60..86400 default 3600), checked by gasguard.report_cfg.identity_config,
    the check CFG runs; send(kind, payload_bytes) -> bool hands one uplink to the
    reporter (kind: "reg", "hb", "rsp"); fw: firmware version string; rng(n) -> n random
    bytes; status_fn() -> small dict of ints/strs put into heartbeats as "st"; read:
    (ids.active(), ids.platform()) already read, cfg then already checked (the device's
    boot: gasguard.devices.attach_active_id).
    """

    def __init__(self, clock, ids, cfg, send, fw, rng=None, status_fn=None, read=None):
        if read is None:
            # the identity section's one check, the one CFG runs (boot-only code)
            from gasguard.report_cfg import identity_config

            cfg = identity_config(cfg)  # ConfigError naming identity.<key>
            read = (ids.active(), ids.platform())  # IdentityError: not locked, tier L, no key
        # else (devices.attach_active_id, at boot) cfg is checked and read is (ids.active(),
        # ids.platform()) read before this module was loaded: neither the checks nor the
        # identity store's code is in the heap with this one's (docs/heap-budget.md)
        (r, key, kid), p = read
        read = None
        r["kid"] = kid
        hb = cfg["heartbeat_s"]
        self._rmin = cfg["reg_retry_min_s"]
        self._rmax = cfg["reg_retry_max_s"]
        self._up, self._down = direction_keys(key)
        key = None
        self.registered = p["registered"]
        # what a registration carries, kept only until one is acknowledged (a device that
        # registered before this boot keeps none of it)
        self.rec = None if self.registered else r
        self.hb_s = p["hb_s"] or hb
        self.ids = ids
        self.store = ids.store  # the uplink sequence reservation (id_seq) is this object's
        self._seq = None
        self._lim = 0
        self.clock = clock
        self.send = send
        self.fw = fw
        self.rng = rng or _rng
        self.status_fn = status_fn
        self.id = r["id"]
        self.pending = []  # nonces of this boot's registrations not yet acknowledged (newest last)
        self._retry_s = self._rmin
        self._next_reg = None  # ticks when the next registration attempt is due (None: now)
        self._last_hb = None   # ticks of the last heartbeat (None: send one now)
        self._last = clock.ticks_ms()
        self._up_ms = 0
        self.uptime_s = 0
        self.counters = {"reg_sent": 0, "hb_sent": 0, "rejected": 0, "cmds": 0, "send_refused": 0}
        self.last_reject = None

    def _tick(self):
        now = self.clock.ticks_ms()
        d = self.clock.ticks_diff(now, self._last)
        if d > 0:
            self._up_ms += d
            self.uptime_s += self._up_ms // 1000
            self._up_ms %= 1000
        self._last = now
        return now

    # -- messages --

    def _uplink(self, body):
        """Seal an uplink with the next sequence number: strictly increasing across reboots
        and power cuts (a block of 16 is reserved on flash before any of them is used)."""
        if self._seq is None:
            raw = self.store.read("id_seq")
            n = 0
            if raw is not None:
                try:
                    import json

                    n = json.loads(record.unseal(raw, 1))["next"]
                except Exception:
                    # unreadable reservation (writes are atomic, so only a flash fault):
                    # jump far ahead so no number already sent can be reused
                    n = 1 << 28
            self._seq = self._lim = n
        if self._seq >= self._lim:
            self._lim = self._seq + 16
            self.store.write("id_seq", record.seal(canon({"next": self._lim}), 1))
        self._seq += 1
        body["v"] = 1
        body["id"] = self.id
        body["seq"] = self._seq
        return seal(self._up, body)

    def build_reg(self):
        nonce = hexlify(bytes(self.rng(8))).decode()
        r = self.rec
        return nonce, self._uplink({
            "t": "reg", "sn": r["serial"], "model": r["model"], "tier": r["tier"],
            "kind": r["kind"], "hw": r["hw_rev"], "mfg": r["mfg_date"], "fw": self.fw,
            "kid": r["kid"], "nonce": nonce})

    def build_hb(self):
        body = {"t": "hb", "fw": self.fw, "up": self.uptime_s}
        if self.status_fn is not None:
            body["st"] = self.status_fn()
        return self._uplink(body)

    # -- the step machine --

    def poll(self):
        """Bounded work: at most one uplink handed to send(). Returns the kind sent or None."""
        now = self._tick()
        c = self.clock
        n = self.counters
        if not self.registered:
            if self._next_reg is not None and c.ticks_diff(now, self._next_reg) < 0:
                return None
            nonce, payload = self.build_reg()
            if self.send("reg", payload) is False:
                n["send_refused"] += 1
            else:
                # the reporter may hold several attempts while offline and deliver them all
                # later: an ack for any of the last MAX_PENDING of this boot is fresh
                self.pending = (self.pending + [nonce])[-MAX_PENDING:]
                n["reg_sent"] += 1
            self._next_reg = c.ticks_add(now, self._retry_s * 1000)
            self._retry_s = min(self._retry_s * 2, self._rmax)
            return "reg"
        if self._last_hb is not None and c.ticks_diff(now, self._last_hb) < self.hb_s * 1000:
            return None
        if self.send("hb", self.build_hb()) is False:
            # the reporter could not take it: try again in a minute, not at full rate
            n["send_refused"] += 1
            self._last_hb = c.ticks_add(now, (60 - self.hb_s) * 1000)
            return None
        n["hb_sent"] += 1
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
            b = open_msg(self._down, payload)
        except MessageError as e:
            return self._reject(str(e))
        if b.get("id") != self.id:
            return self._reject("addressed to another identifier")
        t = b.get("t")
        if t == "reg_ack":
            if not self.pending:
                return self._reject("no registration pending")
            if b.get("nonce") not in self.pending:
                return self._reject("stale nonce (replayed acknowledgement)")
            if b.get("status") != "registered":
                return self._reject("registration refused by the platform")
            ts = b.get("ts")
            if not _int(ts, 0x7FFFFFFF):
                return self._reject("ts must be an integer")
            self.pending = []
            self.rec = None
            self.ids.mark_registered(ts)
            self.registered = True
            self._retry_s = self._rmin
            self._last_hb = self.clock.ticks_ms()  # first heartbeat one interval after it
            return (True, "registered")
        if t != "cmd":
            return self._reject("unexpected message type")
        from gasguard.id_admin import command  # the rare side: commands (get_id, set_attr, set_hb)

        return command(self, b)


def attach_reporter(active, rep):
    """Connect an ActiveId to a Reporter: uplinks (reg/hb/rsp wire bytes) go to
    rep.identity_send(kind, payload), published verbatim on <base>/<dev>/identity (QoS 1;
    the message's own MAC covers it); downlinks on <base>/<dev>/identity_down reach
    active.on_message(payload) through rep.attach_identity()."""
    active.send = rep.identity_send
    rep.attach_identity(active.on_message)
