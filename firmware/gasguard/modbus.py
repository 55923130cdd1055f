"""The `modbus` config section (the RS-485 Modbus RTU line, docs/modbus.md): defaults and
the one check, used by CFG before it stores a section and by attach_modbus at boot.

Kept apart from gasguard.modbus_rtu so checking a CFG write loads only this."""

from gasguard.validate import ConfigError, need_choice, need_int, reject_unknown

BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
PARITIES = ("even", "odd", "none")
DEFAULTS = {"enabled": True, "address": 1, "baud": 9600, "parity": "even", "stop_bits": None}


def config(cfg):
    """The `modbus` config section, checked (ConfigError) and completed with defaults.
    Stop bits default to the spec's 11-bit character: 1 with parity, 2 without."""
    if not isinstance(cfg, dict):
        raise ConfigError("modbus: expected a section, got %r" % (cfg,))
    reject_unknown(cfg, DEFAULTS, "modbus")
    c = dict(DEFAULTS)
    c.update(cfg)
    if c["enabled"] is not True and c["enabled"] is not False:
        raise ConfigError("modbus.enabled: expected true or false, got %r" % (c["enabled"],))
    need_int(c, "address", 1, 247)
    if isinstance(c["baud"], bool) or c["baud"] not in BAUDS:
        raise ConfigError("modbus.baud: %r is not one of %s" % (c["baud"], BAUDS))
    need_choice(c, "parity", PARITIES)
    if c["stop_bits"] is None:
        c["stop_bits"] = 2 if c["parity"] == "none" else 1
    need_int(c, "stop_bits", 1, 2)
    return c
