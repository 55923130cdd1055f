"""The config write of the service console (CFG key <json value>; CFG with no argument
reads, as CFG?). Loaded for a request by gasguard.service_cmds, released once it is
answered, with the config checks the write loaded (lazy.BOOT_ONLY).
"""

import json

from gasguard.service_proto import E_ARG, E_UNSUPPORTED, ServiceError


def _config(svc, op, *args):
    # service_read.call, not imported: loading service_read would hold 2 KB while the write's
    # checks load; moving call to the resident service_proto cost 128-144 B resident on
    # every device (measured), more than these lines (docs/heap-budget.md, "A CFG write on
    # a full heap")
    fn = getattr(svc.device, op, None)
    if fn is None:
        raise ServiceError(E_UNSUPPORTED, "this device has no %s" % op)
    return fn(*args)


def _cmd_cfg(svc, rest):
    rest = rest.strip()
    if not rest:
        return {"config": _config(svc, "config_get", None)}
    parts = rest.split(None, 1)
    key = parts[0]
    if len(parts) == 1:
        raise ServiceError(E_ARG, "usage: CFG key <json value>  (read with CFG?)")
    try:
        value = json.loads(parts[1])
    except Exception:
        raise ServiceError(E_ARG, "value must be JSON (strings in double quotes)")
    r = _config(svc, "config_set", key, value)
    return r if isinstance(r, dict) else {"key": key, "value": value}


VERBS = {"CFG": _cmd_cfg}
