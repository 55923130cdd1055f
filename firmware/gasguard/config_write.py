"""The service command CFG: set one config leaf, validated by the device's one validator.

Loaded only when a CFG write comes (factory mode), so the code is not resident on a
device in service. validate() is the check CFG runs: every section the boot reads,
by the code the boot runs (each part's own config check, hardware untouched); a key
CFG accepts therefore boots (host_tests/settings/test_settings_boot.py).
"""

import json
import sys

from gasguard import record
from gasguard.lazy import release
from gasguard.validate import ConfigError, reject_unknown


def validate(app, cfg, section=None):
    """ConfigError naming the key, or None: cfg builds on this device as boot builds it.
    section: check only what that top-level section feeds (a CFG write changes one leaf;
    the other sections are the ones the device booted on, checked by that boot), plus the
    cheap whole-config checks; None: every section. Each part's check is loaded, run and
    released before the next one loads, as the boot builds one part at a time: a CFG write
    needs the largest check at once, not their sum (docs/heap-budget.md, "A CFG write on a
    full heap")."""
    if not isinstance(cfg, dict):
        raise ConfigError("config: expected an object")
    reject_unknown(cfg, app.SECTIONS, "config")
    _check("boot_select", "settings", cfg)  # app, service (the boot's fallback code: not held)

    def feeds(*names):
        return section is None or section in names

    if ("net" in cfg or "report" in cfg or "identity" in cfg) and feeds("net", "report",
                                                                         "identity"):
        _check("report_cfg", "platform_config", cfg)
    if cfg.get("modbus") is not None and feeds("modbus"):  # the check attach_modbus runs at boot
        _check("modbus", "config", cfg["modbus"])
    link = cfg.get("link") if feeds("link") else None
    if app.KIND == "valve":
        if feeds("valve"):
            link = _check("valve_cfg", "valve_config", cfg.get("valve"))["link"]
        if feeds("button"):
            from gasguard.button import button_config  # (resident)

            button_config(cfg.get("button"))
    elif feeds("detector"):
        v = app._validate_detector  # a detector factory's own check (tests), else the real one
        if v is not None:
            v(cfg.get("detector", {}))
        else:  # what Detector() builds, on the board's inputs, without touching an output:
            # the section's check, then the inputs on it, one module at a time as the boot
            # does (profiles.assemble() holds both)
            dcfg = _check("profiles", "load", cfg.get("detector", {}))
            _check("sensors", "inputs", app.board, dcfg, None)
    if link is not None:
        _check("link_cfg", "link_config", link)


def _check(name, fn, *args):
    """gasguard.<name>.<fn>(*args); then, returned or raised, the modules it loaded leave the
    heap (what they built is plain data or thrown away: a check keeps nothing)."""
    before = list(sys.modules)
    try:
        __import__("gasguard." + name)
        return getattr(sys.modules["gasguard." + name], fn)(*args)
    finally:
        new = [m[9:] for m in sys.modules if m not in before and m[:9] == "gasguard."]
        before = None
        release(name, *new)  # name also when its import failed (lazy.release)


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
    new = app.config_get()  # a deep copy
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
    validate(app, new, parts[0])
    app.store.write(app.CONFIG_NAME, record.seal(json.dumps(new).encode()))
    app.config = new
    app.emit({"event": "config", "key": key})
    return {"key": key, "value": value, "reboot_required": True}
