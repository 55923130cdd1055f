"""Interlock link configuration and key provisioning: parked code (docs/heap-budget.md).

Loaded when a link is built (its config check), by a CFG check and at the end of a
pairing (provision); released again by gasguard.link_core, so none of it stays in the heap
while the device runs. The resident side (the frame counter, the stored pairing's reader,
the close path) is gasguard.link_core.

Store names: "ilk_pair" (role, peer MAC, key) and "ilk_ctr" (key fingerprint and the
counter reservation), both framed by gasguard.record.
"""

from gasguard import record
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


def provision(store, role, key, peer_mac):
    """Factory provisioning (or the end of a button pairing): store the shared key.

    role: "D" (detector) or "V" (valve). Raises ValueError on a bad key or MAC.
    """
    if role not in ("D", "V"):
        raise ValueError("role must be 'D' or 'V'")
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise ValueError("key must be 32 bytes")
    if not isinstance(peer_mac, (bytes, bytearray)) or len(peer_mac) != 6:
        raise ValueError("peer MAC must be 6 bytes")
    store.write("ilk_pair", record.seal(role.encode() + bytes(peer_mac) + bytes(key), 1))
