"""Interlock link persistence and configuration: the shared key, the frame counter.

Split from gasguard.espnow_link so each module compiles within the ESP32 heap.
Store names: "ilk_pair" (role, peer MAC, key) and "ilk_ctr" (key fingerprint and
the counter reservation), both framed by gasguard.record.
"""

import struct

from gasguard import hmac256, record
from gasguard import interlock_frame as F
from gasguard.validate import ConfigError, need_int, reject_unknown

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


BROADCAST = b"\xff\xff\xff\xff\xff\xff"
PAIR_NAME = "ilk_pair"
COUNTER_NAME = "ilk_ctr"
_REC_VERSION = const(1)

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

REJECT_REASONS = (
    "malformed",  # too short/long, wrong length for its type, counter 0
    "version",  # another protocol version
    "foreign",  # from a MAC we are not paired with
    "bad_tag",  # HMAC does not match: forged, corrupted or another pair's key
    "unsupported",  # authentic but asks for something this end cannot do (no OPEN exists)
    "replay",  # counter not above the last accepted one
    "stale",  # authentic, but its echo predates our boot/pairing (possibly a recording)
    "unpaired",  # no key yet
    "pairing_closed",  # pairing frame outside a pairing window
)


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


def _fingerprint(key):
    return hmac256.digest(key, b"counter")[:4]


def load_pairing(store):
    """Return (role, peer_mac, key) from the store, or None when unpaired or corrupt."""
    try:
        p = record.unseal(store.read(PAIR_NAME), _REC_VERSION)
    except (record.RecordError, OSError):
        return None
    if len(p) != 1 + 6 + F.KEY_LEN:
        return None
    return chr(p[0]), bytes(p[1:7]), bytes(p[7:])


def provision(store, role, key, peer_mac):
    """Factory provisioning (or the end of a button pairing): store the shared key.

    role: "D" (detector) or "V" (valve). Raises ValueError on a bad key or MAC.
    """
    if role not in ("D", "V"):
        raise ValueError("role must be 'D' or 'V'")
    if not isinstance(key, (bytes, bytearray)) or len(key) != F.KEY_LEN:
        raise ValueError("key must be %d bytes" % F.KEY_LEN)
    if not isinstance(peer_mac, (bytes, bytearray)) or len(peer_mac) != 6:
        raise ValueError("peer MAC must be 6 bytes")
    store.write(PAIR_NAME, record.seal(role.encode() + bytes(peer_mac) + bytes(key), _REC_VERSION))


class FrameCounter:
    """Our frame counter for one key, persisted in blocks so flash writes stay rare.

    At construction the stored reservation R is read; counting resumes at R (every
    value below R may have been used before the reboot) and R + block is written
    before the first frame goes out. Then one write per `block` frames.
    """

    def __init__(self, store, key, block):
        self.store = store
        self.block = block
        self.fp = _fingerprint(key)
        self.writes = 0
        self.store_errors = 0
        start = 1
        try:
            p = record.unseal(store.read(COUNTER_NAME), _REC_VERSION)
            if len(p) == 8 and p[:4] == self.fp:
                start = struct.unpack("<I", p[4:])[0]
        except (record.RecordError, OSError):
            pass
        if start < 1:
            start = 1
        self.next_value = start
        self.reserved = start
        self._reserve()
        self.floor = start  # the first counter of this boot

    def _reserve(self):
        new = self.next_value + self.block
        if new > F.MAX_COUNTER + 1:
            new = F.MAX_COUNTER + 1
        try:
            self.store.write(COUNTER_NAME, record.seal(self.fp + struct.pack("<I", new), _REC_VERSION))
            self.writes += 1
        except OSError:
            self.store_errors += 1
        self.reserved = new

    def exhausted(self):
        return self.next_value > F.MAX_COUNTER

    def take(self):
        v = self.next_value
        if v > F.MAX_COUNTER:
            return 0
        if v >= self.reserved:
            self._reserve()
        self.next_value = v + 1
        return v
