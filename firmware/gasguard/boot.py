"""What every device does at boot, whatever it is: boot count, maintenance flag, config.

Shared by gasguard.device_base and the builder (gasguard.devices). Boot-only code
(gasguard.lazy.BOOT_ONLY): released before the loop; the record names are plain strings
the resident code may keep.
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


def copy(d):
    return json.loads(json.dumps(d))
