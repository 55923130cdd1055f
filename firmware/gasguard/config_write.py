"""The service command CFG: set one config leaf, validated by the device's one validator.

Loaded only when a CFG write comes (factory mode), so the code is not resident on a
device in service. validate() is the check CFG runs: every section the boot reads,
by the code the boot runs (each part's own config check, hardware untouched); a key
CFG accepts therefore boots (host_tests/settings/test_settings_boot.py).
"""

import json

from gasguard import record
from gasguard.boot import CONFIG_NAME, copy
from gasguard.boot_select import app_settings, service_config
from gasguard.validate import ConfigError, reject_unknown


def validate(app, cfg):
    """ConfigError naming the key, or None: cfg builds on this device as boot builds it."""
    if not isinstance(cfg, dict):
        raise ConfigError("config: expected an object")
    reject_unknown(cfg, app.SECTIONS, "config")
    app_settings(cfg)
    if "net" in cfg or "report" in cfg or "identity" in cfg:
        from gasguard.report_cfg import platform_config

        platform_config(cfg)
    if cfg.get("modbus") is not None:  # the RS-485 line: the check attach_modbus runs at boot
        from gasguard import modbus

        modbus.config(cfg["modbus"])
    link = cfg.get("link")
    if app.KIND == "valve":
        from gasguard.button import button_config
        from gasguard.valve_cfg import valve_config

        link = valve_config(cfg.get("valve"))["link"]
        button_config(cfg.get("button"))
    else:
        v = app._validate_detector  # a detector factory's own check (tests), else the real one
        if v is not None:
            v(cfg.get("detector", {}))
        else:  # what Detector() builds, on the board's inputs, without touching an output
            from gasguard import profiles

            profiles.assemble(app.board, cfg.get("detector", {}), None)
    if link is not None:
        from gasguard.link_cfg import link_config

        link_config(link)
    service_config(cfg.get("service"))


def config_set(app, key, value):
    """Set one dotted leaf (e.g. detector.ch4_delay_s); validated, persisted, used after
    reboot. A refused write changes nothing. The checks it loaded (boot-only code) leave
    the heap when it returns, refused or not, not when the console next idles."""
    try:
        return _set(app, key, value)
    finally:
        from gasguard.lazy import BOOT_ONLY, release

        release(*BOOT_ONLY)


def _set(app, key, value):
    new = copy(app.config)
    parts = key.split(".")
    node = new
    for p in parts[:-1]:
        if p not in node:
            node[p] = {}
        node = node[p]
        if not isinstance(node, dict):
            raise ConfigError("%s: %s is not a section" % (key, p))
    if isinstance(node.get(parts[-1]), dict) or isinstance(value, dict):
        raise ConfigError("%s: set the leaves of a section one by one" % key)
    node[parts[-1]] = value
    validate(app, new)
    app.store.write(CONFIG_NAME, record.seal(json.dumps(new).encode()))
    app.config = new
    app.emit({"event": "config", "key": key})
    return {"key": key, "value": value, "reboot_required": True}
