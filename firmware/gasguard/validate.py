"""Configuration checks shared by every module: one error type, clear messages.

Config is validated once, at load time; a bad value raises ConfigError naming the
key, the value and the allowed range, and nothing is applied. Boot/CFG-only code
(gasguard.lazy.BOOT_ONLY): the checks leave the heap before the loop; ConfigError itself
lives in gasguard.service_proto, which stays.
"""


from gasguard.service_proto import ConfigError  # noqa: F401  (resident: one class for ever)


def need_int(cfg, key, lo, hi, default=None):
    """Return cfg[key] as an int within [lo, hi], or raise ConfigError."""
    v = cfg.get(key, default)
    if v is None:
        raise ConfigError("%s: required" % key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError("%s: expected an integer, got %r" % (key, v))
    if v < lo or v > hi:
        raise ConfigError("%s: %d is outside %d..%d" % (key, v, lo, hi))
    return v


def need_num(cfg, key, lo, hi, default=None):
    """Return cfg[key] as a number within [lo, hi] (config time only; floats allowed)."""
    v = cfg.get(key, default)
    if v is None:
        raise ConfigError("%s: required" % key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError("%s: expected a number, got %r" % (key, v))
    if v != v or v < lo or v > hi:
        raise ConfigError("%s: %r is outside %r..%r" % (key, v, lo, hi))
    return v


def need_choice(cfg, key, choices, default=None):
    v = cfg.get(key, default)
    if v not in choices:
        raise ConfigError("%s: %r is not one of %s" % (key, v, ", ".join(choices)))
    return v


def need_bool(cfg, key, default=None):
    v = cfg.get(key, default)
    if v is not True and v is not False:
        raise ConfigError("%s: expected true or false, got %r" % (key, v))
    return v


def reject_unknown(cfg, known, where):
    """A typo in a safety config must not be silently ignored."""
    for k in cfg:
        if k not in known:
            raise ConfigError("%s: unknown key %r" % (where, k))
