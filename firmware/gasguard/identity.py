"""The device's identity record: written once at the factory, read back, verified, locked.

Store files (each framed with gasguard.record, payload = canonical JSON or raw key):
  id_rec    factory record {id, serial, model, tier, kind, hw_rev, mfg_date, qr_template, locked}
  id_key    per-device 32-byte secret (tiers M and H only); never printed, never returned by
            info(); diagnostics show key_id (a fingerprint) instead
  id_plat   platform-writable attributes + active-identifier state (registered, reg_ts,
            down_seq, hb_s); the only identity data that changes after the factory
  id_seq    uplink message counter reservation (see next_seq)
  id_audit  append-only log of provision / lock / factory_reset events

Provisioning: provision(fields, secret) validates everything first (bad input changes
nothing), writes key then record, reads both back and compares; lock(expect_id) makes the
record permanent. Once locked, provision() is refused until factory_reset(presence_proof)
is called with the board's physical-presence flag (docs/identity.md). A record that fails
its CRC is reported as corrupt and treated as locked (never silently as blank).
"""

import hashlib
import json
from binascii import hexlify

from gasguard import record
from gasguard.identifier import (
    ALNUM, IdentifierError, _check_date, factory_serial, parse, show, validate,
)

REC = "id_rec"
KEY = "id_key"
PLAT = "id_plat"
SEQ = "id_seq"
AUDIT = "id_audit"
AUDIT_MAX = 8192
VERSION = 1
KEY_LEN = 32
SEQ_BLOCK = 16
HB_MIN = 60
HB_MAX = 86400
HB_DEFAULT = 3600

FACTORY_FIELDS = ("id", "serial", "model", "tier", "kind", "hw_rev", "mfg_date", "qr_template")
REQUIRED_FIELDS = ("id", "model", "hw_rev")  # the others default from the identifier
PLATFORM_FIELDS = ("linked_dev", "install_date", "installer", "site_ref")
TIER_NAMES = {"L": "low", "M": "mid", "H": "high"}


class IdentityError(ValueError):
    pass


# ---- canonical encoding (shared with gasguard.active_id) -------------------------------

_HEX = "0123456789abcdef"


def _enc_str(s, out):
    out.append('"')
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif 0x20 <= o < 0x7F:
            out.append(c)
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            o -= 0x10000
            out.append("\\u%04x\\u%04x" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
    out.append('"')


def _enc(o, out, depth):
    if depth > 8:
        raise ValueError("canonical encoding: nested too deeply")
    if o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append("%d" % o)
    elif isinstance(o, str):
        _enc_str(o, out)
    elif isinstance(o, (list, tuple)):
        out.append("[")
        first = True
        for x in o:
            if not first:
                out.append(",")
            first = False
            _enc(x, out, depth + 1)
        out.append("]")
    elif isinstance(o, dict):
        keys = list(o.keys())
        for k in keys:
            if not isinstance(k, str):
                raise ValueError("canonical encoding: keys must be strings")
        keys.sort()
        out.append("{")
        first = True
        for k in keys:
            if not first:
                out.append(",")
            first = False
            _enc_str(k, out)
            out.append(":")
            _enc(o[k], out, depth + 1)
        out.append("}")
    else:
        raise ValueError("canonical encoding: %s values are not allowed" % type(o).__name__)


def canon(obj):
    """Canonical bytes of obj: compact JSON, keys sorted by code point, pure ASCII.

    Allowed: dict (str keys), list/tuple, str, int, True/False/None. Floats are refused.
    Strings escape '"' and '\\', and every character outside 0x20..0x7E as lower-case
    \\uXXXX (UTF-16 surrogate pairs above U+FFFF). Identical bytes on both interpreters.
    """
    out = []
    _enc(obj, out, 0)
    return "".join(out).encode()


def key_fingerprint(key):
    """key_id: 16 hex characters of SHA-256("gasguard-kid:" + key). Safe to print."""
    return hexlify(hashlib.sha256(b"gasguard-kid:" + bytes(key)).digest()[:8]).decode()


# ---- field checks -----------------------------------------------------------------------


def _printable(s, name, lo, hi):
    if not isinstance(s, str):
        raise IdentityError("%s must be a string" % name)
    if not lo <= len(s) <= hi:
        raise IdentityError("%s must be %d..%d characters, got %d" % (name, lo, hi, len(s)))
    for c in s:
        if not 0x20 <= ord(c) < 0x7F:
            raise IdentityError("%s: character %s is not printable ASCII" % (name, show(c)))
    if s and (s[0] == " " or s[-1] == " "):
        raise IdentityError("%s: no leading or trailing spaces" % name)


def _charset(s, name, lo, hi, allowed):
    if not isinstance(s, str):
        raise IdentityError("%s must be a string" % name)
    if not lo <= len(s) <= hi:
        raise IdentityError("%s must be %d..%d characters, got %d" % (name, lo, hi, len(s)))
    for c in s:
        if c not in allowed:
            raise IdentityError("%s: character %s is not allowed" % (name, show(c)))


def check_iso_date(s, name):
    """YYYY-MM-DD, 2000..2099, a real calendar day."""
    if not isinstance(s, str) or len(s) != 10 or s[4] != "-" or s[7] != "-":
        raise IdentityError("%s must be YYYY-MM-DD" % name)
    ds = s[0:4] + s[5:7] + s[8:10]
    for c in ds:
        if c not in "0123456789":
            raise IdentityError("%s must be YYYY-MM-DD" % name)
    if s[0:2] != "20":
        raise IdentityError("%s: year must be 2000..2099" % name)
    try:
        _check_date(ds[2:])
    except IdentifierError as e:
        raise IdentityError("%s: %s" % (name, e))


def check_qr_template(t):
    """'{id}' (bare identifier) or an https:// URL containing '{id}' exactly once."""
    _printable(t, "qr_template", 4, 200)
    if " " in t:
        raise IdentityError("qr_template: no spaces")
    n = 0
    i = t.find("{id}")
    while i >= 0:
        n += 1
        i = t.find("{id}", i + 1)
    if n != 1:
        raise IdentityError("qr_template must contain {id} exactly once")
    if t != "{id}" and not t.startswith("https://"):
        raise IdentityError("qr_template must be '{id}' or start with https://")


def qr_payload(template, identifier):
    """The QR/NFC payload: the template with {id} replaced by the identifier."""
    check_qr_template(template)
    try:
        validate(identifier)
    except IdentifierError as e:
        raise IdentityError("identifier: %s" % e)
    return template.replace("{id}", identifier)


def check_fields(fields):
    """Validate a factory record; return a complete clean copy. Raises IdentityError naming
    the field. serial, tier, kind, mfg_date and qr_template default from the identifier
    (serial = factory_serial(id), qr_template = "{id}")."""
    if not isinstance(fields, dict):
        raise IdentityError("identity fields must be a dict")
    for k in fields:
        if k not in FACTORY_FIELDS:
            raise IdentityError("unknown identity field %r" % (k,))
    for k in REQUIRED_FIELDS:
        if k not in fields:
            raise IdentityError("identity field %s is missing" % k)
    try:
        p = parse(fields["id"])
    except IdentifierError as e:
        raise IdentityError("id: %s" % e)
    # fields that follow from the identifier may be left out (short PROV lines); given, they
    # must agree with it
    d = p["date"]
    derived = {"serial": factory_serial(fields["id"]), "tier": p["tier"], "kind": p["kind"],
               "mfg_date": "20%s-%s-%s" % (d[0:2], d[2:4], d[4:6]), "qr_template": "{id}"}
    full = dict(derived)
    full.update(fields)
    fields = full
    _charset(fields["serial"], "serial", 1, 32, ALNUM + "-")
    _printable(fields["model"], "model", 1, 32)
    tier = fields["tier"]
    if tier not in ("L", "M", "H"):
        raise IdentityError("tier must be L, M or H")
    if tier != p["tier"]:
        raise IdentityError("tier %s differs from the identifier's tier %s" % (tier, p["tier"]))
    kind = fields["kind"]
    if kind not in ("detector", "valve"):
        raise IdentityError("kind must be detector or valve")
    if kind != p["kind"]:
        raise IdentityError("kind %s differs from the identifier's category %s" % (kind, p["cat"]))
    _charset(fields["hw_rev"], "hw_rev", 1, 16, ALNUM + "abcdefghijklmnopqrstuvwxyz.-")
    check_iso_date(fields["mfg_date"], "mfg_date")
    md = fields["mfg_date"]
    if md[2:4] + md[5:7] + md[8:10] != p["date"]:
        raise IdentityError("mfg_date %s differs from the identifier's date %s" % (md, p["date"]))
    check_qr_template(fields["qr_template"])
    out = {}
    for k in FACTORY_FIELDS:
        out[k] = fields[k]
    return out


def check_secret(tier, secret):
    if tier == "L":
        if secret is not None:
            raise IdentityError("tier L has no active identifier: no secret")
        return None
    if secret is None:
        raise IdentityError("tier %s needs a %d-byte secret key" % (tier, KEY_LEN))
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != KEY_LEN:
        raise IdentityError("secret key must be %d bytes" % KEY_LEN)
    first = secret[0]
    same = True
    for b in secret:
        if b != first:
            same = False
            break
    if same:
        raise IdentityError("secret key is a constant byte pattern; use a random key")
    return bytes(secret)


def check_platform_updates(updates):
    """Validate a platform update; return a clean copy. Factory fields are refused by name."""
    if not isinstance(updates, dict) or not updates:
        raise IdentityError("update must be a non-empty dict")
    for k in updates:
        if k in FACTORY_FIELDS:
            raise IdentityError("factory field %s is locked" % k)
        if k not in PLATFORM_FIELDS:
            raise IdentityError("unknown field %r" % (k,))
    out = {}
    for k in updates:
        v = updates[k]
        if k == "linked_dev":
            if v != "":
                try:
                    validate(v)
                except IdentifierError as e:
                    raise IdentityError("linked_dev: %s" % e)
        elif k == "install_date":
            if v != "":
                check_iso_date(v, "install_date")
        else:
            _printable(v, k, 0, 64)
        out[k] = v
    return out


# ---- the store -----------------------------------------------------------------------------


def _read_json(store, name):
    """dict, None when missing; raise IdentityError when corrupt."""
    raw = store.read(name)
    if raw is None:
        return None
    try:
        d = json.loads(record.unseal(raw, VERSION))
    except (record.RecordError, ValueError) as e:
        raise IdentityError("%s is corrupt (%s)" % (name, e))
    if not isinstance(d, dict):
        raise IdentityError("%s is corrupt (not an object)" % name)
    return d


def _write_json(store, name, d):
    store.write(name, record.seal(canon(d), VERSION))


class IdentityStore:
    def __init__(self, store):
        self.store = store
        self._rec = None  # cached record dict incl. "locked"
        self._plat = None
        self._seq = None
        self._seq_limit = 0

    # -- factory record --

    def _load_rec(self):
        if self._rec is None:
            self._rec = _read_json(self.store, REC)
        return self._rec

    def status(self):
        """"blank", "provisioned" (written, not locked), "locked" or "corrupt"."""
        try:
            r = self._load_rec()
        except IdentityError:
            return "corrupt"
        if r is None:
            return "blank"
        return "locked" if r.get("locked") is True else "provisioned"

    def load(self):
        """The factory record (without the key) or None when blank; IdentityError if corrupt."""
        r = self._load_rec()
        if r is None:
            return None
        out = {}
        for k in FACTORY_FIELDS:
            out[k] = r.get(k)
        return out

    @property
    def locked(self):
        return self.status() in ("locked", "corrupt")

    def provision(self, fields, secret=None):
        """Write the factory record and key, read both back and verify. Not allowed once locked."""
        st = self.status()
        if st == "locked":
            raise IdentityError("identity is locked; a factory reset with physical presence is needed")
        if st == "corrupt":
            raise IdentityError("stored identity is corrupt; a factory reset with physical presence is needed")
        clean = check_fields(fields)
        key = check_secret(clean["tier"], secret)
        if key is not None:
            self.store.write(KEY, record.seal(key, VERSION))
        else:
            self.store.remove(KEY)
        rec = dict(clean)
        rec["locked"] = False
        self._rec = None
        _write_json(self.store, REC, rec)
        got = self._load_rec()
        if got != rec:
            raise IdentityError("read-back of the identity record differs from what was written")
        if self._read_key() != key:
            raise IdentityError("read-back of the secret key differs from what was written")
        self._audit("provision", clean["id"])
        return self.load()

    def lock(self, expect_id=None):
        """Make the record permanent. expect_id: the label's identifier; refused if it differs."""
        st = self.status()
        if st == "blank":
            raise IdentityError("nothing to lock: identity not provisioned")
        if st == "corrupt":
            raise IdentityError("stored identity is corrupt; not locked")
        r = self._rec
        if expect_id is not None and expect_id != r["id"]:
            raise IdentityError("device identifier %s differs from the label %s; not locked"
                                % (r["id"], expect_id if isinstance(expect_id, str) else "?"))
        if st == "locked":
            return
        if r["tier"] != "L" and self._read_key() is None:
            raise IdentityError("tier %s has no secret key; not locked" % r["tier"])
        rec = dict(r)
        rec["locked"] = True
        _write_json(self.store, REC, rec)
        self._rec = None
        if self.status() != "locked":
            raise IdentityError("read-back after lock failed")
        self._audit("lock", rec["id"])

    def factory_reset(self, presence_proof):
        """Erase identity, key and platform state. presence_proof must be the board's
        physical-presence flag (True only when the service button was held through power-up,
        docs/identity.md); anything else is refused and nothing changes."""
        if presence_proof is not True:
            raise IdentityError("factory reset needs physical presence (hold the button at power-up)")
        old = "?"
        try:
            r = self._load_rec()
            if r is not None:
                old = r.get("id", "?")
        except IdentityError:
            old = "corrupt"
        for name in (REC, KEY, PLAT):
            self.store.remove(name)
        self._rec = None
        self._plat = None
        self._audit("factory_reset", old)

    # -- key --

    def _read_key(self):
        raw = self.store.read(KEY)
        if raw is None:
            return None
        try:
            k = record.unseal(raw, VERSION)
        except record.RecordError as e:
            raise IdentityError("%s is corrupt (%s)" % (KEY, e))
        if len(k) != KEY_LEN:
            raise IdentityError("%s is corrupt (length)" % KEY)
        return k

    def device_key(self):
        """The per-device secret (bytes) for M/H, None for L or when not provisioned.
        For the HMAC code only: never print it, log it or put it in a reply."""
        return self._read_key()

    def key_id(self):
        k = self._read_key()
        return None if k is None else key_fingerprint(k)

    # -- what diagnostics, ID? and the reporter may show --

    def info(self):
        """Safe summary: record fields, status, key_id (never the key), registration."""
        st = self.status()
        out = {"status": st}
        if st in ("blank", "corrupt"):
            return out
        rec = self.load()
        for k in FACTORY_FIELDS:
            out[k] = rec[k]
        out["locked"] = st == "locked"
        try:
            out["key_id"] = self.key_id()
        except IdentityError:
            out["key_id"] = "corrupt"
        p = self.platform()
        out["registered"] = p["registered"]
        out["reg_ts"] = p["reg_ts"]
        return out

    def identity_info(self, fw):
        """The dict the reporter takes: device_id, fw, tier, kind (+ model, serial)."""
        rec = self.load()
        if rec is None:
            raise IdentityError("identity not provisioned")
        return {"device_id": rec["id"], "fw": fw, "tier": rec["tier"], "kind": rec["kind"],
                "model": rec["model"], "serial": rec["serial"]}

    # -- platform-writable attributes and active-identifier state --

    def platform(self):
        if self._plat is None:
            try:
                p = _read_json(self.store, PLAT)
            except IdentityError:
                p = None  # a torn platform state is rebuilt: the platform can rewrite it
            d = {"registered": False, "reg_ts": 0, "down_seq": 0, "hb_s": 0}
            for k in PLATFORM_FIELDS:
                d[k] = ""
            if p is not None:
                for k in d:
                    if k in p and type(p[k]) is type(d[k]):
                        d[k] = p[k]
            self._plat = d
        return dict(self._plat)

    def _save_plat(self, changes):
        d = self.platform()
        for k in changes:
            d[k] = changes[k]
        _write_json(self.store, PLAT, d)
        self._plat = d

    def platform_fields(self):
        p = self.platform()
        out = {}
        for k in PLATFORM_FIELDS:
            out[k] = p[k]
        return out

    def update_platform(self, updates):
        """Write platform-writable attributes; factory fields and bad values are refused whole."""
        clean = check_platform_updates(updates)
        self._save_plat(clean)
        return self.platform_fields()

    def mark_registered(self, ts):
        self._save_plat({"registered": True, "reg_ts": ts})

    def set_down_seq(self, seq):
        self._save_plat({"down_seq": seq})

    def set_hb(self, seconds):
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not HB_MIN <= seconds <= HB_MAX:
            raise IdentityError("heartbeat must be an integer %d..%d s" % (HB_MIN, HB_MAX))
        self._save_plat({"hb_s": seconds})

    # -- uplink sequence numbers --

    def next_seq(self):
        """Strictly increasing across reboots and power cuts: a block of SEQ_BLOCK numbers is
        reserved on flash before any of them is used (one write per SEQ_BLOCK messages)."""
        if self._seq is None:
            raw = self.store.read(SEQ)
            base = 0
            if raw is not None:
                try:
                    d = json.loads(record.unseal(raw, VERSION))
                    base = d["next"]
                except Exception:
                    # unreadable reservation (writes are atomic, so only a flash fault):
                    # jump far ahead so no number already sent can be reused
                    base = 1 << 28
            self._seq = base
            self._seq_limit = base
        if self._seq >= self._seq_limit:
            self._seq_limit = self._seq + SEQ_BLOCK
            _write_json(self.store, SEQ, {"next": self._seq_limit})
        self._seq += 1
        return self._seq

    def _audit(self, ev, ident):
        if self.store.size(AUDIT) > AUDIT_MAX:
            return
        self.store.append(AUDIT, record.seal(canon({"ev": ev, "id": ident}), VERSION))

    def audit(self):
        payloads, _n = record.scan(self.store.read(AUDIT))
        out = []
        for p in payloads:
            try:
                out.append(json.loads(p))
            except ValueError:
                break
        return out
