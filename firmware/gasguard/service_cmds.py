"""The requests of the service protocol (GGSP/1): parsing, authorisation and one function
per verb. Loaded by the first request of a console session and released when the console
has been idle (gasguard.service keeps only the line framing resident: docs/heap-budget.md).

handle(svc, line) answers one request line; every verb takes (service, rest-of-line) and
returns a JSON-able dict, or raises ServiceError. Factory mode and the AUTH state belong to
the Service; the verbs change them only through its set_factory(), challenge() and
lockout(). The protocol's names come from gasguard.service_proto, never from
gasguard.service (which loads this module): no import cycle. The AUTH construction lives
here, with the verb.
"""

import json

from gasguard import hmac256
from gasguard.service_proto import (  # ConfigError: one class (validate is boot-only)
    E_ARG, E_AUTH, E_CAL, E_CONFIG, E_DEVICE, E_FACTORY, E_IDENTITY, E_LOCKOUT, E_STATE,
    E_SYNTAX, E_UNKNOWN, E_UNSUPPORTED, FACTORY_VERBS, PROTOCOL, ConfigError, ServiceError,
)


def handle(svc, line):
    """Answer one request line (without newline): OK <json> or ERR <code> <message>."""
    tag = None
    if line[0] == "#":
        sp = line.find(" ")
        if sp < 0:
            svc.error(None, E_SYNTAX, "a tag must be followed by a command")
            return
        tag = line[1:sp]
        if not tag or len(tag) > 16 or not _is_word(tag):
            svc.error(None, E_SYNTAX, "bad tag")
            return
        line = line[sp + 1 :].strip()
    parts = line.split(None, 1)
    if not parts:
        svc.error(tag, E_SYNTAX, "empty command")
        return
    verb = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    try:
        fn = VERBS.get(verb)
        if fn is None:
            extra = svc.handlers.get(verb)
            if extra is None:
                raise ServiceError(E_UNKNOWN, "unknown command %s (try HELP)" % verb)
            result = extra(svc, rest)
        else:
            if verb in FACTORY_VERBS and _writes(verb, rest) and not svc.factory:
                raise ServiceError(E_FACTORY, "%s needs factory mode (AUTH)" % verb)
            result = fn(svc, rest)
    except ServiceError as e:
        svc.error(tag, e.code, e.msg)
        return
    except ConfigError as e:
        svc.error(tag, E_CONFIG, str(e))
        return
    except ValueError as e:
        # CalibrationError, IdentifierError... are ValueErrors naming the reason
        code = E_CAL if verb == "CAL" else (E_IDENTITY if verb == "PROV" else E_ARG)
        svc.error(tag, code, str(e) or type(e).__name__)
        return
    except Exception as e:  # the console must survive any device failure
        svc.error(tag, E_DEVICE, "%s: %s" % (type(e).__name__, e))
        return
    svc.reply(tag, "OK " + json.dumps(result if result is not None else {}))
    after = svc.after_reply
    if after is not None:
        svc.after_reply = None
        after()


def _is_word(s):
    for c in s:
        if not (c.isalpha() or c.isdigit() or c in "-_."):
            return False
    return True


def _writes(verb, rest):
    """True when this request changes state (reads stay allowed without factory mode)."""
    if verb == "CFG" or verb == "CAL" or verb == "PROV":
        return bool(rest.strip())
    return True


def _call(svc, name, *args):
    fn = getattr(svc.device, name, None)
    if fn is None:
        raise ServiceError(E_UNSUPPORTED, "this device has no %s" % name)
    return fn(*args)


def _device_id(svc):
    ident = getattr(svc.device, "identity", None)
    if ident is None:
        return None
    try:
        rec = ident.load()
    except ValueError:
        return None
    return rec.get("id") if rec else None


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


def _args(rest, lo, hi, usage):
    a = rest.split()
    if len(a) < lo or len(a) > hi:
        raise ServiceError(E_ARG, "usage: " + usage)
    return a


def _channel(name):
    ch = name.lower()
    if ch not in ("ch4", "co"):
        raise ServiceError(E_ARG, "channel must be ch4 or co, not %r" % name)
    return ch


# ------------------------------------------------------------------- commands
def _cmd_hello(svc, rest):
    info = _call(svc, "info")
    d = {"proto": PROTOCOL, "factory": svc.factory}
    d.update(info)
    d["id"] = _device_id(svc)
    return d


def _cmd_help(svc, rest):
    verbs = sorted(list(VERBS.keys()) + list(svc.handlers.keys()))
    return {"proto": PROTOCOL, "commands": verbs, "factory_only": list(FACTORY_VERBS)}


def _cmd_id(svc, rest):
    ident = getattr(svc.device, "identity", None)
    if ident is None:
        return {"provisioned": False, "locked": False}
    try:
        rec = ident.load()
    except ValueError as e:
        return {"provisioned": False, "locked": True, "corrupt": str(e)}
    out = {"provisioned": rec is not None, "locked": bool(ident.locked)}
    if rec:
        for k in rec:
            if k not in ("secret", "key", "device_key"):
                out[k] = rec[k]
    return out


def _cmd_status(svc, rest):
    d = _call(svc, "status")
    d["factory"] = svc.factory
    d["console"] = {"lines": svc.lines, "errors": svc.errors, "dropped_partial": svc.dropped_partial}
    return d


def _cmd_read(svc, rest):
    return _call(svc, "readings")


def _cmd_hist(svc, rest):
    return _call(svc, "history")


def _cmd_log(svc, rest):
    a = _args(rest, 0, 1, "LOG? [n]")
    n = 20
    if a:
        try:
            n = int(a[0])
        except ValueError:
            raise ServiceError(E_ARG, "n must be an integer")
        if n < 1 or n > svc.log_max:
            raise ServiceError(E_ARG, "n must be in 1..%d" % svc.log_max)
    return {"events": _call(svc, "events", n)}


def _cmd_cfg(svc, rest):
    rest = rest.strip()
    if not rest:
        return {"config": _call(svc, "config_get", None)}
    parts = rest.split(None, 1)
    key = parts[0]
    if len(parts) == 1:
        raise ServiceError(E_ARG, "usage: CFG key <json value>  (read with CFG?)")
    try:
        value = json.loads(parts[1])
    except Exception:
        raise ServiceError(E_ARG, "value must be JSON (strings in double quotes)")
    r = _call(svc, "config_set", key, value)
    return r if isinstance(r, dict) else {"key": key, "value": value}


def _cmd_cfg_q(svc, rest):
    a = _args(rest, 0, 1, "CFG? [key]")
    cfg = _call(svc, "config_get", None)
    if a:
        if a[0] not in cfg:
            raise ServiceError(E_ARG, "no config key %r" % a[0])
        return {"key": a[0], "value": cfg[a[0]]}
    return {"config": cfg}


def _cmd_cal_q(svc, rest):
    return _call(svc, "cal_get")


def _cmd_cal(svc, rest):
    a = rest.split()
    if not a:
        return _call(svc, "cal_get")
    sub = a[0].upper()
    if sub == "ZERO":
        a = _args(rest, 2, 2, "CAL ZERO <ch4|co>")
        return _call(svc, "cal_zero", _channel(a[1]))
    if sub == "SPAN":
        a = _args(rest, 3, 3, "CAL SPAN <ch4|co> <ppm>")
        try:
            ppm = float(a[2])
        except ValueError:
            raise ServiceError(E_ARG, "ppm must be a number")
        if not (ppm > 0 and ppm < 1000000):
            raise ServiceError(E_ARG, "ppm must be in (0, 1000000)")
        return _call(svc, "cal_span", _channel(a[1]), ppm)
    if sub == "COMMIT":
        meta = {}
        if len(a) > 1:
            try:
                meta = json.loads(rest.split(None, 1)[1])
            except Exception:
                raise ServiceError(E_ARG, "usage: CAL COMMIT [json metadata]")
            if not isinstance(meta, dict):
                raise ServiceError(E_ARG, "metadata must be a JSON object")
        return _call(svc, "cal_commit", meta)
    if sub == "REVERT":
        _args(rest, 1, 1, "CAL REVERT")
        return _call(svc, "cal_revert")
    if sub == "ABORT":
        _args(rest, 1, 1, "CAL ABORT")
        _call(svc, "cal_abort")
        return {"aborted": True}
    raise ServiceError(E_ARG, "usage: CAL ZERO|SPAN|COMMIT|ABORT|REVERT ...  (read with CAL?)")


def _cmd_auth(svc, rest):
    a = _args(rest, 0, 1, "AUTH | AUTH <hex response> | AUTH END")
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
        return {"nonce": nonce, "id": _device_id(svc), "alg": "HMAC-SHA256"}
    nonce = svc.challenge()  # a challenge answers exactly one attempt
    if nonce is None:
        raise ServiceError(E_STATE, "no challenge pending: send AUTH first")
    try:
        got = _unhex(a[0].lower())
    except ValueError:
        got = b""
    want = hmac256.digest(key, auth_message(nonce, _device_id(svc)))
    if not hmac256.equal(got, want):
        svc.lockout(now, True)
        raise ServiceError(E_AUTH, "wrong response")
    svc.set_factory("auth")
    return {"factory": True, "timeout_s": svc.factory_timeout_ms // 1000}


def _cmd_factory_q(svc, rest):
    return {"factory": svc.factory, "via": svc.factory_via}


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
        out = _cmd_id(svc, "")
        _audit(svc, "lock", out.get("id"))
        return out
    if words and words[0].upper() == "RESET":
        # erasing an identity needs physical presence, not just the factory key
        ident.factory_reset(svc.factory_via == "button")
        _audit(svc, "factory_reset", None)
        return _cmd_id(svc, "")
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
    return _cmd_id(svc, "")


def _audit(svc, action, ident):
    emit = getattr(svc.device, "emit", None)
    if emit is not None:
        emit({"event": "identity", "action": action, "id": ident})


def _cmd_selftest(svc, rest):
    return _call(svc, "self_test")


def _cmd_itest(svc, rest):
    return _call(svc, "interlock_test")


def _cmd_hush(svc, rest):
    r = _call(svc, "hush")
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


VERBS = {
    "HELLO": _cmd_hello,
    "HELP": _cmd_help,
    "ID?": _cmd_id,
    "STATUS?": _cmd_status,
    "READ?": _cmd_read,
    "LOG?": _cmd_log,
    "HIST?": _cmd_hist,
    "CFG?": _cmd_cfg_q,
    "CFG": _cmd_cfg,
    "CAL?": _cmd_cal_q,
    "CAL": _cmd_cal,
    "AUTH": _cmd_auth,
    "FACTORY?": _cmd_factory_q,
    "PROV": _cmd_prov,
    "SELFTEST": _cmd_selftest,
    "ITEST": _cmd_itest,
    "HUSH": _cmd_hush,
    "REBOOT": _cmd_reboot,
    "MAINT": _cmd_maint,
}
