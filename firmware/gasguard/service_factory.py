"""The factory verbs and actions of the service console: AUTH (the challenge, its
construction auth_message/auth_response, documented in docs/service-protocol.md), PROV,
SELFTEST, ITEST, HUSH, REBOOT, MAINT. Loaded for a request by gasguard.service_cmds,
released once it is answered.
"""

import json

from gasguard import hmac256
from gasguard.service_proto import (
    E_ARG, E_AUTH, E_IDENTITY, E_LOCKOUT, E_STATE, E_UNSUPPORTED, ServiceError,
)
from gasguard.service_read import args, call, device_id, id_reply


def auth_message(nonce_hex, device_id):
    """The bytes the factory key signs: documented in docs/service-protocol.md."""
    return ("GGSP1-FACTORY:%s:%s" % (nonce_hex, device_id or "-")).encode()


def auth_response(key, nonce_hex, device_id):
    """What the host sends back: hex HMAC-SHA256(key, auth_message)."""
    return _hex(hmac256.digest(key, auth_message(nonce_hex, device_id)))


def _hex(b):
    return "".join("%02x" % x for x in b)


def _unhex(s):
    if len(s) % 2:
        raise ValueError("odd length")
    out = bytearray(len(s) // 2)
    for i in range(len(out)):
        out[i] = int(s[2 * i : 2 * i + 2], 16)
    return bytes(out)


def _cmd_auth(svc, rest):
    a = args(rest, 0, 1, "AUTH | AUTH <hex response> | AUTH END")
    now = svc.clock.ticks_ms()
    if a and a[0].upper() == "END":
        svc.set_factory(None)
        return {"factory": False}
    left = svc.lockout(now)
    if left:
        raise ServiceError(E_LOCKOUT, "too many wrong responses; retry in %d s" % ((left + 999) // 1000))
    key_fn = getattr(svc.device, "factory_key", None)
    key = key_fn() if key_fn is not None else None
    if not key:
        raise ServiceError(E_UNSUPPORTED, "no factory key installed: hold the button at boot")
    if not a:
        nonce = _hex(svc.rng(16))
        svc.challenge(nonce)
        return {"nonce": nonce, "id": device_id(svc), "alg": "HMAC-SHA256"}
    nonce = svc.challenge()  # a challenge answers exactly one attempt
    if nonce is None:
        raise ServiceError(E_STATE, "no challenge pending: send AUTH first")
    try:
        got = _unhex(a[0].lower())
    except ValueError:
        got = b""
    want = hmac256.digest(key, auth_message(nonce, device_id(svc)))
    if not hmac256.equal(got, want):
        svc.lockout(now, True)
        raise ServiceError(E_AUTH, "wrong response")
    svc.set_factory("auth")
    return {"factory": True, "timeout_s": svc.factory_timeout_ms // 1000}


def _cmd_prov(svc, rest):
    ident = getattr(svc.device, "identity", None)
    if ident is None:
        raise ServiceError(E_UNSUPPORTED, "this device has no identity store")
    rest = rest.strip()
    words = rest.split()
    if words and words[0].upper() == "LOCK":
        if len(words) > 2:
            raise ServiceError(E_ARG, "usage: PROV LOCK [expected identifier]")
        ident.lock(words[1] if len(words) == 2 else None)
        out = id_reply(svc, "")
        _audit(svc, "lock", out.get("id"))
        return out
    if words and words[0].upper() == "RESET":
        # erasing an identity needs physical presence, not just the factory key
        ident.factory_reset(svc.factory_via == "button")
        _audit(svc, "factory_reset", None)
        return id_reply(svc, "")
    try:
        fields = json.loads(rest)
    except Exception:
        raise ServiceError(E_ARG, "usage: PROV {json identity fields} | PROV LOCK")
    if not isinstance(fields, dict):
        raise ServiceError(E_ARG, "identity fields must be a JSON object")
    secret = fields.pop("secret", None)
    if secret is not None:
        try:
            secret = _unhex(secret)
        except (ValueError, TypeError):
            raise ServiceError(E_ARG, "secret must be hex")
    if ident.locked:
        raise ServiceError(E_IDENTITY, "identity is locked")
    ident.provision(fields, secret)
    _audit(svc, "provision", fields.get("id"))
    return id_reply(svc, "")


def _audit(svc, action, ident):
    emit = getattr(svc.device, "emit", None)
    if emit is not None:
        emit({"event": "identity", "action": action, "id": ident})


def _cmd_selftest(svc, rest):
    return call(svc, "self_test")


def _cmd_itest(svc, rest):
    return call(svc, "interlock_test")


def _cmd_hush(svc, rest):
    r = call(svc, "hush")
    return r if isinstance(r, dict) else {"hushed": True}


def _cmd_reboot(svc, rest):
    if getattr(svc.device, "reboot", None) is None:
        raise ServiceError(E_UNSUPPORTED, "this device cannot reboot")
    svc.after_reply = svc.device.reboot  # reply first, then reboot
    return {"rebooting": True}


def _cmd_maint(svc, rest):
    if getattr(svc.device, "maintenance", None) is None:
        raise ServiceError(E_UNSUPPORTED, "this device has no maintenance mode")
    svc.after_reply = svc.device.maintenance
    return {"maintenance": True, "rebooting": True}


VERBS = {"AUTH": _cmd_auth, "PROV": _cmd_prov, "SELFTEST": _cmd_selftest, "ITEST": _cmd_itest,
         "HUSH": _cmd_hush, "REBOOT": _cmd_reboot, "MAINT": _cmd_maint}
