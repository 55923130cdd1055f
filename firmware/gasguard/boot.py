"""What every device does at boot, whatever it is: boot count, maintenance flag, config.

Shared by gasguard.app (detector) and gasguard.valve_app (valve) and by the boards'
main.py; small on purpose, so a valve does not load the detector application to get it.
"""

import json

from gasguard import record

BOOT_NAME = "boot.rec"
CONFIG_NAME = "config.rec"
KEY_NAME = "factory.key"
MAINT_NAME = "maint.flag"


def boot_mode(store):
    """'maintenance' once after MAINT (the flag is consumed), else 'app'. For main.py."""
    if store.read(MAINT_NAME) is not None:
        store.remove(MAINT_NAME)
        return "maintenance"
    return "app"


def bump_boot_count(store):
    """Increment and persist the boot count; return it (1 on a fresh or corrupt store)."""
    try:
        n = json.loads(record.unseal(store.read(BOOT_NAME), 1))["boots"]
    except Exception:  # missing, torn, foreign (a list, a string, ...): count from 0
        n = 0
    if not isinstance(n, int) or not 0 <= n < 1 << 29:
        n = 0
    n += 1
    try:
        store.write(BOOT_NAME, record.seal(json.dumps({"boots": n}).encode()))
    except OSError:
        pass
    return n


def load_config(store, default):
    """The persisted config (written by the service CFG command) when valid, else a copy
    of the given default."""
    try:
        cfg = json.loads(record.unseal(store.read(CONFIG_NAME)))
        if isinstance(cfg, dict):
            return cfg
    except (record.RecordError, ValueError):
        pass
    return copy(default or {})


def copy(d):
    return json.loads(json.dumps(d))


class NullConsole:
    """For boards without a service line."""

    def read(self, n):
        return None

    def write(self, b):
        return len(b)
