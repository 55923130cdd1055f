"""Reporter configuration, identity check and the persistent boot counter.

Kept apart from gasguard.reporter so each module compiles in a small heap.
"""

import struct

from gasguard import protocol, record
from gasguard.validate import ConfigError, need_bool, need_int, reject_unknown

DEFAULTS = {
    "base": "gasguard",
    "mqtt": None,  # dict for gasguard.mqtt.MQTTClient (host, port, keepalive_s, ...)
    "outbox_bytes": 8192,
    "outbox_reserve": 2048,
    "telemetry_slots": 8,
    "window": 4,  # outbox messages in flight at once
    "interval_s": 60,  # telemetry interval (set_interval changes it)
    "ntp_server": None,  # numeric IPv4 of an SNTP server, or None
    "ntp_resync_s": 3600,
    "ntp_port": 123,
    "cmd_window_s": 300,
    "commands": True,
    "max_per_poll": 4,  # publishes per poll() (bounded work)
}

BOOT_FILE = "rp_boot"


def check_ident(ident):
    if not isinstance(ident, dict):
        raise ConfigError("identity_info: expected a dict")
    for k in ("device_id", "fw"):
        v = ident.get(k)
        if not isinstance(v, str) or not v:
            raise ConfigError("identity_info.%s: required string" % k)
    dev = ident["device_id"]
    # identifiers have one "/" (prefix/suffix): the device id spans two topic levels
    if not protocol.valid_base(dev) or len(dev) > 128:
        raise ConfigError("identity_info.device_id: %r cannot be used in a topic" % dev)


def next_boot(store, at_least=0):
    """Increment and persist the boot counter (record-framed); return the new value
    (greater than at_least)."""
    n = 0
    try:
        data = store.read(BOOT_FILE)
        if data:
            n = struct.unpack("<I", record.unseal(data))[0]
    except (OSError, ValueError):
        n = 0
    n = max(n, at_least)
    n = (n + 1) & 0x7FFFFFFF
    try:
        store.write(BOOT_FILE, record.seal(struct.pack("<I", n)))
    except OSError:
        pass
    return n


# integer settings: name -> (lo, hi)
INT_KEYS = {
    "outbox_bytes": (1024, 1 << 20),
    "outbox_reserve": (0, 1 << 20),
    "telemetry_slots": (1, 256),
    "window": (1, 16),
    "interval_s": (10, 86400),
    "max_per_poll": (1, 64),
    "cmd_window_s": (10, 86400),
    "ntp_resync_s": (60, 7 * 86400),
    "ntp_port": (1, 65535),
}


def configure(cfg):
    """Validate a reporter config dict; return it completed with the defaults."""
    c = dict(DEFAULTS)
    if cfg:
        reject_unknown(cfg, DEFAULTS, "reporter")
        c.update(cfg)
    if not protocol.valid_base(c["base"]):
        raise ConfigError("reporter.base: %r is not a valid base topic" % (c["base"],))
    for k in INT_KEYS:
        lo, hi = INT_KEYS[k]
        need_int(c, k, lo, hi)
    need_bool(c, "commands")
    if c["mqtt"] is not None and not isinstance(c["mqtt"], dict):
        raise ConfigError("reporter.mqtt: expected a dict")
    ntp = c["ntp_server"]
    if ntp is not None and not isinstance(ntp, str):
        raise ConfigError("reporter.ntp_server: expected a numeric IPv4 string")
    return c


def platform_config(cfg):
    """The sections a device's main.py hands to gasguard.devices (net, report,
    identity), checked as they will be used (gasguard.config_write.validate)."""
    net = cfg.get("net")
    if net is not None:
        if not isinstance(net, dict):
            raise ConfigError("net: expected a dict")
        reject_unknown(net, ("ssid", "password"), "net")
        for k in net:
            if not isinstance(net[k], str):
                raise ConfigError("net.%s: expected a string" % k)
    if cfg.get("report") is not None:
        configure(cfg["report"])
    if not isinstance(cfg.get("identity", {}), dict):
        raise ConfigError("identity: expected a dict")
