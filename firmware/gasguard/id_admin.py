"""The rare side of the identity: factory writes (provision, lock, factory_reset), the field
checks, the audit log, what ID?-style reads and the platform's remote commands (get_id,
set_attr, set_hb) need. Loaded only for such a call (gasguard.identity.IdentityStore finds
its methods here; gasguard.active_id hands a command here), then released with the identity
(gasguard.lazy); the host tools (gasguard provision, label) use the checks directly.

Functions taking `ids` are IdentityStore methods: ids.provision(fields, secret) runs
provision(ids, fields, secret).
"""

from gasguard import identifier as I, record
from gasguard.record import IdentityError  # not from gasguard.identity: it imports this


def write_json(store, name, d):
    from gasguard.canon import canon

    store.write(name, record.seal(canon(d), 1))

FACTORY_FIELDS = ("id", "serial", "model", "tier", "kind", "hw_rev", "mfg_date", "qr_template")
PLATFORM_FIELDS = ("linked_dev", "install_date", "installer", "site_ref")
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _text(s, name, lo, hi, allowed=None):
    """s: a str of lo..hi characters, each in allowed (None: printable ASCII, no spaces at
    either end)."""
    if not isinstance(s, str):
        raise IdentityError("%s must be a string" % name)
    if not lo <= len(s) <= hi:
        raise IdentityError("%s must be %d..%d characters, got %d" % (name, lo, hi, len(s)))
    for c in s:
        if not (0x20 <= ord(c) < 0x7F if allowed is None else c in allowed):
            raise IdentityError("%s: character %s is not %s" % (
                name, I.show(c), "printable ASCII" if allowed is None else "allowed"))
    if allowed is None and s and (s[0] == " " or s[-1] == " "):
        raise IdentityError("%s: no leading or trailing spaces" % name)


def check_iso_date(s, name):
    """YYYY-MM-DD, 2000..2099, a real calendar day."""
    if not isinstance(s, str) or len(s) != 10 or s[4] != "-" or s[7] != "-" or \
            not I._is_digits(s[:4] + s[5:7] + s[8:]):
        raise IdentityError("%s must be YYYY-MM-DD" % name)
    if s[:2] != "20":
        raise IdentityError("%s: year must be 2000..2099" % name)
    try:
        I._check_date(s[2:4] + s[5:7] + s[8:])
    except I.IdentifierError as e:
        raise IdentityError("%s: %s" % (name, e))


def check_qr_template(t):
    """'{id}' (bare identifier) or an https:// URL containing '{id}' exactly once."""
    _text(t, "qr_template", 4, 200)
    if " " in t:
        raise IdentityError("qr_template: no spaces")
    if t.count("{id}") != 1:
        raise IdentityError("qr_template must contain {id} exactly once")
    if t != "{id}" and not t.startswith("https://"):
        raise IdentityError("qr_template must be '{id}' or start with https://")


def _valid(v, name):
    try:
        return I.parse(v)
    except I.IdentifierError as e:
        raise IdentityError("%s: %s" % (name, e))


def qr_payload(template, identifier):
    """The QR/NFC payload: the template with {id} replaced by the identifier."""
    check_qr_template(template)
    _valid(identifier, "identifier")
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
    for k in ("id", "model", "hw_rev"):  # the others default from the identifier
        if k not in fields:
            raise IdentityError("identity field %s is missing" % k)
    p = _valid(fields["id"], "id")
    d = p["date"]
    f = {"serial": I.factory_serial(fields["id"]), "tier": p["tier"], "kind": p["kind"],
         "mfg_date": "20%s-%s-%s" % (d[:2], d[2:4], d[4:]), "qr_template": "{id}"}
    f.update(fields)  # given, the fields that follow from the identifier must agree with it
    an = I.ALNUM
    _text(f["serial"], "serial", 1, 32, an + "-")
    _text(f["model"], "model", 1, 32)
    for k, ok, mine in (("tier", ("L", "M", "H"), "tier"), ("kind", ("detector", "valve"), "category")):
        v = f[k]
        if v not in ok:
            raise IdentityError("%s must be %s" % (k, "L, M or H" if k == "tier" else
                                                   "detector or valve"))
        if v != p[k]:
            raise IdentityError("%s %s differs from the identifier's %s %s" % (
                k, v, mine, p[k if k == "tier" else "cat"]))
    _text(f["hw_rev"], "hw_rev", 1, 16, an + _LOWER + ".-")
    md = f["mfg_date"]
    check_iso_date(md, "mfg_date")
    if md[2:4] + md[5:7] + md[8:] != d:
        raise IdentityError("mfg_date %s differs from the identifier's date %s" % (md, d))
    check_qr_template(f["qr_template"])
    return {k: f[k] for k in FACTORY_FIELDS}


def check_secret(tier, secret):
    if tier == "L":
        if secret is not None:
            raise IdentityError("tier L has no active identifier: no secret")
        return None
    if secret is None:
        raise IdentityError("tier %s needs a 32-byte secret key" % tier)
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32:
        raise IdentityError("secret key must be 32 bytes")
    secret = bytes(secret)
    if secret.count(secret[:1]) == 32:
        raise IdentityError("secret key is a constant byte pattern; use a random key")
    return secret


def check_platform_updates(updates):
    """Validate a platform update; return a clean copy. Factory fields are refused by name."""
    if not isinstance(updates, dict) or not updates:
        raise IdentityError("update must be a non-empty dict")
    for k in updates:
        if k in FACTORY_FIELDS:
            raise IdentityError("factory field %s is locked" % k)
        if k not in PLATFORM_FIELDS:
            raise IdentityError("unknown field %r" % (k,))
    for k in updates:
        v = updates[k]
        if k == "linked_dev":
            if v != "":
                _valid(v, k)
        elif k == "install_date":
            if v != "":
                check_iso_date(v, k)
        else:
            _text(v, k, 0, 64)
    return dict(updates)


# ---- IdentityStore methods ----------------------------------------------------------------


def provision(ids, fields, secret=None):
    """Write the factory record and key, read both back and verify. Not allowed once locked."""
    st = ids.status()
    if st != "blank" and st != "provisioned":
        raise IdentityError("%s; a factory reset with physical presence is needed" % (
            "identity is locked" if st == "locked" else "stored identity is corrupt"))
    clean = check_fields(fields)
    key = check_secret(clean["tier"], secret)
    if key is not None:
        ids.store.write("id_key", record.seal(key, 1))
    else:
        ids.store.remove("id_key")
    rec = dict(clean)
    rec["locked"] = False
    ids._rec = None
    write_json(ids.store, "id_rec", rec)
    if ids._load_rec() != rec:
        raise IdentityError("read-back of the identity record differs from what was written")
    if ids.device_key() != key:
        raise IdentityError("read-back of the secret key differs from what was written")
    _audit(ids, "provision", clean["id"])
    return ids.load()


def lock(ids, expect_id=None):
    """Make the record permanent. expect_id: the label's identifier; refused if it differs."""
    st = ids.status()
    if st == "blank":
        raise IdentityError("nothing to lock: identity not provisioned")
    if st == "corrupt":
        raise IdentityError("stored identity is corrupt; not locked")
    r = ids._rec
    if expect_id is not None and expect_id != r["id"]:
        raise IdentityError("device identifier %s differs from the label %s; not locked"
                            % (r["id"], expect_id if isinstance(expect_id, str) else "?"))
    if st == "locked":
        return
    if r["tier"] != "L" and ids.device_key() is None:
        raise IdentityError("tier %s has no secret key; not locked" % r["tier"])
    rec = dict(r)
    rec["locked"] = True
    write_json(ids.store, "id_rec", rec)
    ids._rec = None
    if ids.status() != "locked":
        raise IdentityError("read-back after lock failed")
    _audit(ids, "lock", rec["id"])


def factory_reset(ids, presence_proof):
    """Erase identity, key and platform state. presence_proof must be the board's
    physical-presence flag (True only when the service button was held through power-up,
    docs/identity.md); anything else is refused and nothing changes."""
    if presence_proof is not True:
        raise IdentityError("factory reset needs physical presence (hold the button at power-up)")
    try:
        old = (ids._load_rec() or {}).get("id", "?")
    except IdentityError:
        old = "corrupt"
    for name in ("id_rec", "id_key", "id_plat"):
        ids.store.remove(name)
    ids._rec = None
    ids._plat = None
    _audit(ids, "factory_reset", old)


def _audit(ids, ev, ident):
    from gasguard.canon import canon

    if ids.store.size("id_audit") <= 8192:
        ids.store.append("id_audit", record.seal(canon({"ev": ev, "id": ident}), 1))


def audit(ids):
    import json

    out = []
    for p in record.scan(ids.store.read("id_audit"))[0]:
        try:
            out.append(json.loads(p))
        except ValueError:
            break
    return out


def info(ids):
    """Safe summary: record fields, status, key_id (never the key), registration."""
    st = ids.status()
    out = {"status": st}
    if st == "blank" or st == "corrupt":
        return out
    out.update(ids.load())
    out["locked"] = st == "locked"
    try:
        out["key_id"] = ids.key_id()
    except IdentityError:
        out["key_id"] = "corrupt"
    p = ids.platform()
    out["registered"] = p["registered"]
    out["reg_ts"] = p["reg_ts"]
    return out


def platform_fields(ids):
    p = ids.platform()
    return {k: p[k] for k in PLATFORM_FIELDS}


def update_platform(ids, updates):
    """Write platform-writable attributes; factory fields and bad values are refused whole."""
    ids.save_plat(check_platform_updates(updates))
    return platform_fields(ids)


def set_hb(ids, seconds):
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 60 <= seconds <= 86400:
        raise IdentityError("heartbeat must be an integer 60..86400 s")
    ids.save_plat({"hb_s": seconds})


# ---- the platform's remote commands (gasguard.active_id hands them here) -------------------


def command(act, b):
    """One authenticated downlink command for act (an ActiveId): refused when stale or
    malformed, else run and answered with a sealed rsp. Returns (accepted, reason)."""
    seq = b.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= 0x3FFFFFFF:
        return act._reject("seq must be a positive integer")
    ids = act.ids
    if seq <= ids.platform()["down_seq"]:
        return act._reject("old seq (replayed command)")
    op = b.get("op")
    args = b.get("args")
    if op not in ("get_id", "set_attr", "set_hb"):
        return act._reject("unknown op")
    if not isinstance(args, dict):
        return act._reject("args must be an object")
    ids.set_down_seq(seq)  # consumed before acting: it can never run twice
    act.counters["cmds"] += 1
    rsp = {"t": "rsp", "re": seq, "op": op, "ok": True}
    try:
        if op == "get_id":
            d = info(ids)
            del d["status"]
            d.update(platform_fields(ids))
            d["fw"] = act.fw
            d["hb_s"] = act.hb_s
            rsp["data"] = d
        elif op == "set_attr":
            rsp["data"] = update_platform(ids, args)
        else:  # set_hb
            for k in args:
                if k != "seconds":
                    raise IdentityError("set_hb takes only seconds")
            set_hb(ids, args.get("seconds"))
            act.hb_s = args["seconds"]
            rsp["data"] = {"hb_s": act.hb_s}
    except ValueError as e:  # IdentityError, IdentifierError
        rsp["ok"] = False
        rsp["err"] = str(e)
    act.send("rsp", act._uplink(rsp))
    return (rsp["ok"], op if rsp["ok"] else rsp["err"])
