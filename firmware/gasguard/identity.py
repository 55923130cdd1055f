"""The device's identity record: written once at the factory, read back, verified, locked.

Store files (each framed with gasguard.record, version 1, payload = canonical JSON or the key):
  id_rec    factory record {id, serial, model, tier, kind, hw_rev, mfg_date, qr_template, locked}
  id_key    per-device 32-byte secret (tiers M and H only); never printed, never returned by
            info(); diagnostics show key_id (a fingerprint) instead
  id_plat   platform-writable attributes + active-identifier state (registered, reg_ts,
            down_seq, hb_s); the only identity data that changes after the factory
  id_seq    uplink message counter reservation (gasguard.active_id)
  id_audit  append-only log of provision / lock / factory_reset events

This module is what a device reads often (boot: identity_info, device_key; STATUS?, ID?;
the active identifier's state): small by design. The factory and remote-update side
(provision, lock, factory_reset, info, platform_fields, update_platform, set_hb, audit and
the field checks) is gasguard.id_admin, loaded only for such a call: IdentityStore finds
those methods there (__getattr__). Provisioning validates everything first (bad input
changes nothing), writes key then record, reads both back; lock(expect_id) makes the record
permanent; once locked, provision() is refused until factory_reset(presence_proof) with the
board's physical-presence flag (docs/identity.md). A record that fails its CRC is reported
as corrupt and treated as locked (never silently as blank).
"""

import json

from gasguard import record

IdentityError = record.IdentityError  # below identity and id_admin both (no import cycle)


def read_json(store, name):
    """dict, None when missing; IdentityError when corrupt."""
    raw = store.read(name)
    if raw is None:
        return None
    try:
        d = json.loads(record.unseal(raw, 1))
    except (record.RecordError, ValueError) as e:
        raise IdentityError("%s is corrupt (%s)" % (name, e))
    if not isinstance(d, dict):
        raise IdentityError("%s is corrupt (not an object)" % name)
    return d


def write_json(store, name, d):
    from gasguard.canon import canon

    store.write(name, record.seal(canon(d), 1))


def key_fingerprint(key):
    """key_id: 16 hex characters of SHA-256("gasguard-kid:" + key). Safe to print."""
    import hashlib
    from binascii import hexlify

    return hexlify(hashlib.sha256(b"gasguard-kid:" + bytes(key)).digest()[:8]).decode()


class IdentityStore:
    def __init__(self, store):
        self.store = store
        self._rec = None  # cached record dict incl. "locked"
        self._plat = None

    def __getattr__(self, name):
        # the rare side (factory writes, checks, remote updates): gasguard.id_admin
        if name[:1] == "_":
            raise AttributeError(name)
        from gasguard import id_admin

        f = getattr(id_admin, name)
        return lambda *a: f(self, *a)

    def _load_rec(self):
        if self._rec is None:
            self._rec = read_json(self.store, "id_rec")
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
        r = dict(r)
        r.pop("locked", None)
        return r

    @property
    def locked(self):
        return self.status() in ("locked", "corrupt")

    def device_key(self):
        """The per-device secret (bytes) for M/H, None for L or when not provisioned.
        For the HMAC code only: never print it, log it or put it in a reply."""
        raw = self.store.read("id_key")
        if raw is None:
            return None
        try:
            k = record.unseal(raw, 1)
        except record.RecordError as e:
            raise IdentityError("id_key is corrupt (%s)" % e)
        if len(k) != 32:
            raise IdentityError("id_key is corrupt (length)")
        return k

    def key_id(self):
        k = self.device_key()
        return None if k is None else key_fingerprint(k)

    def active(self):
        """For gasguard.active_id: (record, device key, key_id) of a locked M/H identity."""
        if self.status() != "locked":
            raise IdentityError("active identifier needs a provisioned, locked identity")
        r = self.load()
        if r["tier"] == "L":
            raise IdentityError("tier L has no active identifier")
        k = self.device_key()
        if k is None:
            raise IdentityError("no device key")
        return r, k, key_fingerprint(k)

    def identity_info(self, fw):
        """The dict the reporter takes: device_id, fw, tier, kind (+ model, serial)."""
        r = self.load()
        if r is None:
            raise IdentityError("identity not provisioned")
        return {"device_id": r["id"], "fw": fw, "tier": r["tier"], "kind": r["kind"],
                "model": r["model"], "serial": r["serial"]}

    # -- platform-writable attributes and active-identifier state --

    def platform(self):
        if self._plat is None:
            try:
                p = read_json(self.store, "id_plat")
            except IdentityError:
                p = None  # a torn platform state is rebuilt: the platform can rewrite it
            d = {"registered": False, "reg_ts": 0, "down_seq": 0, "hb_s": 0, "linked_dev": "",
                 "install_date": "", "installer": "", "site_ref": ""}
            if p is not None:
                for k in d:
                    if k in p and type(p[k]) is type(d[k]):
                        d[k] = p[k]
            self._plat = d
        return dict(self._plat)

    def save_plat(self, changes):
        d = self.platform()
        d.update(changes)
        write_json(self.store, "id_plat", d)
        self._plat = d

    def mark_registered(self, ts):
        self.save_plat({"registered": True, "reg_ts": ts})

    def set_down_seq(self, seq):
        self.save_plat({"down_seq": seq})
