"""Which config a device boots on (issue 11 item 1: fail-safe boot). Boot-only code:
released before the main loop (gasguard.lazy.BOOT_ONLY).

boot(app, given, build, fallbacks) builds the device on the first config that works: the
stored one (config.rec, written by CFG), the config given at boot (config.json), then each
fallback. The parts' constructors run the same checks as CFG (gasguard.config_write), so
what CFG accepts builds. Every config passed over is refused with its reason (app.refuse:
fault config_invalid in status, the reason in status "refused", a fault event); the last
fallback's error propagates (the board itself is broken: the watchdog resets).

Lack of heap is not a bad config: a build that raises MemoryError is retried once after
gc.collect(); failing again, that config is refused as config_nomem (not config_invalid)
and the next one is tried. A build that only fitted by making a part smaller (the CO
alarm's coarse rate table, gasguard.co_rates.table) runs, and is shown as config_nomem too.
"""

import json

from gasguard import record
from gasguard.boot import CONFIG_NAME
from gasguard.validate import ConfigError, need_int, reject_unknown

APP_DEFAULTS = {"history_period_s": 60}
# the service section (gasguard.service): key -> (default, lo, hi)
SERVICE_DEFAULTS = {
    "line_max": (256, 32, 4096),
    "chunk": (64, 1, 4096),
    "partial_timeout_ms": (10000, 100, 600000),
    "factory_timeout_ms": (900000, 1000, 86400000),
    "auth_fail_limit": (3, 1, 100),
    "auth_lockout_ms": (60000, 0, 3600000),
    "log_max": (50, 1, 500),
}


def boot(app, given, build, fallbacks):
    cands = []
    raw = app.store.read(CONFIG_NAME)
    if raw is not None:
        try:
            cands.append(("config.rec", json.loads(record.unseal(raw, 1))))
        except Exception as e:  # torn, CRC, another record version (format), not JSON
            app.refuse("config_invalid", "config.rec", e)
    if given:
        cands.append(("boot config", given))
    for cfg in fallbacks:
        cands.append(("defaults", cfg))
    for name, cfg in cands:
        try:
            try:
                _try(app, cfg, build)
            except MemoryError as e:  # the heap, not the config: once more after a collection
                import gc

                app._note_error("boot " + name, e)
                e = None
                gc.collect()
                _try(app, cfg, build)
            _lean(app, name)
            return
        except Exception as e:  # whatever a stored record provokes: the next candidate
            if cfg is fallbacks[-1]:
                raise
            app.refuse("config_nomem" if isinstance(e, MemoryError) else "config_invalid",
                       name, e)


def _try(app, cfg, build):
    if not isinstance(cfg, dict):
        raise ConfigError("not an object")
    reject_unknown(cfg, app.SECTIONS, "config")
    app._hist_period_ms = app_settings(cfg) * 1000
    app.config = cfg
    build()


def _lean(app, name):
    """What the build had to make smaller for lack of heap: shown (fault config_nomem)."""
    a = getattr(getattr(app, "detector", None), "co_alarm", None)
    if a is not None and getattr(a, "shift", 0):
        app.refuse("config_nomem", name, MemoryError(
            "no heap block for the CO rate table: 1/%d of its entries" % (1 << a.shift)))


def app_settings(cfg):
    """The app section (CFG and boot); returns history_period_s."""
    a = cfg.get("app", {})
    if not isinstance(a, dict):
        raise ConfigError("app: expected a dict")
    reject_unknown(a, APP_DEFAULTS, "app")
    return need_int(a, "history_period_s", 1, 3600, 60)


def settings(cfg):
    """The whole-config sections every CFG write checks (gasguard.config_write): app, service."""
    app_settings(cfg)
    service_config(cfg.get("service"))


def service_config(cfg):
    """The service section checked (ConfigError naming the key), as a tuple in the order
    of SERVICE_DEFAULTS."""
    cfg = cfg or {}
    if not isinstance(cfg, dict):
        raise ConfigError("service: expected a dict")
    reject_unknown(cfg, SERVICE_DEFAULTS, "service")
    out = []
    for k in ("line_max", "chunk", "partial_timeout_ms", "factory_timeout_ms",
              "auth_fail_limit", "auth_lockout_ms", "log_max"):
        d, lo, hi = SERVICE_DEFAULTS[k]
        out.append(need_int(cfg, k, lo, hi, d))
    return tuple(out)
