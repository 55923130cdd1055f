"""The interlock link's config section ("link" of a detector, "valve.link" of a valve):
boot/CFG-only code (lazy.BOOT_ONLY). gasguard.interlock_keys.setup() uses it when a link is
built, gasguard.config_write for a CFG check; neither keeps it."""

from gasguard.validate import ConfigError, need_int, reject_unknown

# (key, default, lo, hi); retry_max_ms must also be >= retry_initial_ms.
_LINK_INTS = (
    ("heartbeat_ms", 2000, 200, 60000),
    ("link_timeout_ms", 20000, 1000, 600000),
    ("retry_initial_ms", 100, 10, 5000),
    ("retry_max_ms", 1000, 10, 30000),
    ("retry_bound_ms", 60000, 1000, 600000),
    ("pair_window_ms", 60000, 5000, 300000),
    ("pair_retry_ms", 500, 50, 5000),
    ("counter_block", 1024, 16, 65536),
    ("sync_min_ms", 200, 10, 5000),
    ("max_frames_per_poll", 8, 1, 64),
    ("reject_report_ms", 60000, 1000, 3600000),
    ("channel", 1, 0, 14),  # Wi-Fi channel for the radio binding (0 = keep the current one)
)
LINK_DEFAULTS = {}
for _k, _d, _lo, _hi in _LINK_INTS:
    LINK_DEFAULTS[_k] = _d


def link_config(cfg):
    """Validate a link config dict (missing keys take LINK_DEFAULTS); return a full copy."""
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConfigError("link: expected a dict")
    reject_unknown(cfg, LINK_DEFAULTS, "link")
    c = {}
    for k, d, lo, hi in _LINK_INTS:
        c[k] = need_int(cfg, k, lo, hi, d)
    if c["link_timeout_ms"] < 3 * c["heartbeat_ms"]:
        raise ConfigError(
            "link_timeout_ms: %d is below 3 x heartbeat_ms (%d)" % (c["link_timeout_ms"], 3 * c["heartbeat_ms"])
        )
    if c["retry_max_ms"] < c["retry_initial_ms"]:
        raise ConfigError("retry_max_ms: %d is below retry_initial_ms %d" % (c["retry_max_ms"], c["retry_initial_ms"]))
    return c
