"""The read-only verbs of the service console (HELLO, ID?, STATUS?, READ?, LOG?, HIST?,
CFG?, CAL?, FACTORY?) and the helpers the other verb groups share (call, args, device_id,
id_reply). Loaded for a request by gasguard.service_cmds, released once it is answered.
"""

from gasguard.service_proto import E_ARG, E_UNSUPPORTED, PROTOCOL, ServiceError


def call(svc, name, *args):
    fn = getattr(svc.device, name, None)
    if fn is None:
        raise ServiceError(E_UNSUPPORTED, "this device has no %s" % name)
    return fn(*args)


def args(rest, lo, hi, usage):
    a = rest.split()
    if len(a) < lo or len(a) > hi:
        raise ServiceError(E_ARG, "usage: " + usage)
    return a


def device_id(svc):
    ident = getattr(svc.device, "identity", None)
    if ident is None:
        return None
    try:
        rec = ident.load()
    except ValueError:
        return None
    return rec.get("id") if rec else None


def _cmd_hello(svc, rest):
    info = call(svc, "info")
    d = {"proto": PROTOCOL, "factory": svc.factory}
    d.update(info)
    d["id"] = device_id(svc)
    return d


def id_reply(svc, rest):
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
    d = call(svc, "status")
    d["factory"] = svc.factory
    d["console"] = {"lines": svc.lines, "errors": svc.errors, "dropped_partial": svc.dropped_partial}
    return d


def _cmd_read(svc, rest):
    return call(svc, "readings")


def _cmd_hist(svc, rest):
    return call(svc, "history")


def _cmd_log(svc, rest):
    a = args(rest, 0, 1, "LOG? [n]")
    n = 20
    if a:
        try:
            n = int(a[0])
        except ValueError:
            raise ServiceError(E_ARG, "n must be an integer")
        if n < 1 or n > svc.log_max:
            raise ServiceError(E_ARG, "n must be in 1..%d" % svc.log_max)
    return {"events": call(svc, "events", n)}


def _cmd_cfg_q(svc, rest):
    a = args(rest, 0, 1, "CFG? [key]")
    cfg = call(svc, "config_get", None)
    if a:
        if a[0] not in cfg:
            raise ServiceError(E_ARG, "no config key %r" % a[0])
        return {"key": a[0], "value": cfg[a[0]]}
    return {"config": cfg}


def _cmd_cal_q(svc, rest):
    return call(svc, "cal_get")


def _cmd_factory_q(svc, rest):
    return {"factory": svc.factory, "via": svc.factory_via}


VERBS = {"HELLO": _cmd_hello, "ID?": id_reply, "STATUS?": _cmd_status, "READ?": _cmd_read,
         "LOG?": _cmd_log, "HIST?": _cmd_hist, "CFG?": _cmd_cfg_q, "CAL?": _cmd_cal_q,
         "FACTORY?": _cmd_factory_q}
