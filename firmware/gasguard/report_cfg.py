"""Boot-only reporting code: the reporter's and the MQTT client's config checks, the
identity checks (the device id, the active identifier's section), the persistent boot counter and the outbox's loading.

In gasguard.lazy.BOOT_ONLY: loaded to build the reporter (and for a CFG check), released
by lazy.after_boot() before the loop (docs/heap-budget.md). Nothing here outlives the call.
"""

import struct

from gasguard import record
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

# gasguard.mqtt.MQTTClient settings
MQTT = {
    "host": "127.0.0.1",
    "port": 1883,
    "client_id": "",
    "user": None,
    "password": None,
    "keepalive_s": 60,
    "connect_timeout_ms": 10000,  # TCP connect + TLS + CONNACK
    "ping_timeout_ms": 10000,
    "retry_ms": 5000,  # QoS 1 retransmission with DUP while connected
    "backoff_min_ms": 1000,
    "backoff_max_ms": 60000,
    "max_packet": 2048,  # largest packet we accept from the broker
    "max_inflight": 8,
    "tx_buffer": 4096,  # bytes queued for sending at most
    "allow_dns": False,
    "server_hostname": None,  # TLS SNI / certificate check name
}

# integer settings: name -> (lo, hi); backoff_max_ms is also checked >= backoff_min_ms
MQTT_INTS = {
    "port": (1, 65535),
    "keepalive_s": (0, 65535),
    "connect_timeout_ms": (100, 600000),
    "ping_timeout_ms": (100, 600000),
    "retry_ms": (100, 600000),
    "backoff_min_ms": (10, 3600000),
    "backoff_max_ms": (10, 3600000),
    "max_packet": (64, 65536),
    "max_inflight": (1, 64),
    "tx_buffer": (256, 65536),
}


def is_ipv4(host):
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p or not p.isdigit() or int(p) > 255:
            return False
    return True


def mqtt_config(cfg, will=None):
    """Check an MQTT config dict against MQTT; return the complete dict."""
    c = dict(MQTT)
    if cfg:
        reject_unknown(cfg, MQTT, "mqtt")
        c.update(cfg)
    host = c["host"]
    if not isinstance(host, str) or not host:
        raise ConfigError("mqtt.host: expected a host string, got %r" % (host,))
    need_bool(c, "allow_dns")
    if not is_ipv4(host) and not c["allow_dns"]:
        raise ConfigError(
            "mqtt.host: %r is not a numeric IPv4 address; DNS blocks on the ESP32 "
            "(set allow_dns to accept the bounded wait, see docs/mqtt.md)" % host
        )
    for k in MQTT_INTS:
        lo, hi = MQTT_INTS[k]
        need_int(c, k, lo, hi)
    if c["backoff_max_ms"] < c["backoff_min_ms"]:
        raise ConfigError("mqtt.backoff_max_ms: must be >= backoff_min_ms")
    cid = c["client_id"]
    if not isinstance(cid, str) or len(cid) > 128:
        raise ConfigError("mqtt.client_id: expected a string of at most 128 chars")
    if will is not None:
        if len(will) != 4 or will[2] not in (0, 1):
            raise ConfigError("mqtt will: (topic, payload, qos 0/1, retain)")
    return c


def valid_base(base):
    """A base topic: non-empty, no wildcard, no leading/trailing slash, no empty level."""
    if not isinstance(base, str) or not base or len(base) > 128:
        return False
    if "+" in base or "#" in base or "\x00" in base:
        return False
    for level in base.split("/"):
        if not level:
            return False
    return True


def check_ident(ident):
    if not isinstance(ident, dict):
        raise ConfigError("identity_info: expected a dict")
    for k in ("device_id", "fw"):
        v = ident.get(k)
        if not isinstance(v, str) or not v:
            raise ConfigError("identity_info.%s: required string" % k)
    dev = ident["device_id"]
    # identifiers have one "/" (prefix/suffix): the device id spans two topic levels
    if not valid_base(dev) or len(dev) > 128:
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
    if not valid_base(c["base"]):
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


# the active identifier's settings (gasguard.active_id.ActiveId): name -> (default, lo, hi)
IDENTITY = {"heartbeat_s": (3600, 60, 86400), "reg_retry_min_s": (30, 5, 3600),
            "reg_retry_max_s": (3600, 60, 86400)}


def identity_config(cfg):
    """The config's identity section (the active identifier's timing) checked as ActiveId
    uses it: the one check, run by ActiveId() and by CFG. ConfigError naming
    identity.<key>, else the complete section (defaults filled in)."""
    if not isinstance(cfg, dict):
        raise ConfigError("identity: expected a dict")
    reject_unknown(cfg, IDENTITY, "identity")
    c = {}
    try:
        for k in ("heartbeat_s", "reg_retry_min_s", "reg_retry_max_s"):
            d, lo, hi = IDENTITY[k]
            c[k] = need_int(cfg, k, lo, hi, d)
    except ConfigError as e:
        raise ConfigError("identity.%s" % e)
    if c["reg_retry_max_s"] < c["reg_retry_min_s"]:
        raise ConfigError("identity.reg_retry_max_s: %d is below reg_retry_min_s %d"
                          % (c["reg_retry_max_s"], c["reg_retry_min_s"]))
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
    if "identity" in cfg:
        identity_config(cfg["identity"])


def outbox_open(ob):
    """Load an Outbox's log (gasguard.outbox, at boot): the live messages and the loss
    counters; a torn tail (power cut) is dropped by an atomic rewrite of the good prefix."""
    try:
        data = ob.store.read(ob.name)
    except OSError:
        data = None
        ob.store_errors += 1
    if not data:
        return
    payloads, good = record.scan(data)
    data_len = len(data)
    data = None
    live = []
    pos = 0  # each record's offset in the log: the index keeps it, not the message
    for p in payloads:
        at = pos
        pos += len(p) + 8
        if len(p) >= 11 and p[0] == 0x4D:  # "M"
            boot, seq, kind, prio = struct.unpack_from("<IIBB", p, 1)
            live.append([boot, seq, kind, prio, at, len(p) + 8])
        elif len(p) == 9 and p[0] == 0x41:  # "A"
            boot, seq = struct.unpack_from("<II", p, 1)
            for i in range(len(live)):
                if live[i][0] == boot and live[i][1] == seq:
                    live.pop(i)
                    break
        elif len(p) == 9 and p[0] == 0x4C:  # "L"
            ob.unacked_lost, ob.unacked_dropped = struct.unpack_from("<II", p, 1)
    payloads = None
    ob.entries = live
    for e in live:
        ob.live_bytes += e[5]
    ob.file_bytes = good
    if good < data_len:
        ob.repaired = data_len - good
        ob._rewrite()
