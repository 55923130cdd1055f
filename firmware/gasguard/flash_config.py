"""Reading the config.json that `gasguard flash --config` puts in the flash root.

Only the boards' main.py needs it, so it is its own module: the device apps do not
pay heap for it (the valve app's 112 KB test runs have little to spare).
"""

import json


def flash_config(path="config.json"):
    """The config.json that `gasguard flash --config` puts in the flash root ({} when
    missing or not JSON: the device then runs on its defaults and the CFG record)."""
    try:
        with open(path) as f:
            cfg = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}
