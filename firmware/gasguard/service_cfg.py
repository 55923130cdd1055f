"""The config write of the service console (CFG key <json value>; CFG with no argument
reads, as CFG?). Loaded for a request by gasguard.service_cmds, released once it is
answered, with the config checks the write loaded (lazy.BOOT_ONLY).
"""

import json

from gasguard.service_proto import E_ARG, ServiceError
from gasguard.service_read import call


def _cmd_cfg(svc, rest):
    rest = rest.strip()
    if not rest:
        return {"config": call(svc, "config_get", None)}
    parts = rest.split(None, 1)
    key = parts[0]
    if len(parts) == 1:
        raise ServiceError(E_ARG, "usage: CFG key <json value>  (read with CFG?)")
    try:
        value = json.loads(parts[1])
    except Exception:
        raise ServiceError(E_ARG, "value must be JSON (strings in double quotes)")
    r = call(svc, "config_set", key, value)
    return r if isinstance(r, dict) else {"key": key, "value": value}


VERBS = {"CFG": _cmd_cfg}
