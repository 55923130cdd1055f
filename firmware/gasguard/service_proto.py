"""The GGSP/1 vocabulary shared by the line parser (gasguard.service) and the verbs
(gasguard.service_cmds): protocol name, error codes, ServiceError.

Both import this small leaf and the verbs never import the parser: no import cycle. It is
resident (the parser needs it at every request); the verbs are parked (docs/heap-budget.md).
"""

PROTOCOL = "GGSP/1"

# Error codes (stable; host tools switch on them).
E_SYNTAX = "E_SYNTAX"  # malformed request
E_UNKNOWN = "E_UNKNOWN"  # unknown verb
E_ARG = "E_ARG"  # bad or missing argument
E_TOOLONG = "E_TOOLONG"  # line longer than line_max
E_GARBAGE = "E_GARBAGE"  # non-printable bytes in the line
E_FACTORY = "E_FACTORY"  # needs factory mode
E_AUTH = "E_AUTH"  # wrong or missing challenge response
E_LOCKOUT = "E_LOCKOUT"  # too many wrong responses: wait
E_STATE = "E_STATE"  # not possible in the current state (e.g. commit with nothing staged)
E_CAL = "E_CAL"  # calibration refused by the device (reason in the message)
E_CONFIG = "E_CONFIG"  # configuration value refused
E_IDENTITY = "E_IDENTITY"  # identity refused (locked, invalid)
E_UNSUPPORTED = "E_UNSUPPORTED"  # the device has no such function
E_DEVICE = "E_DEVICE"  # the device failed while executing the command

# Verbs that change the device's calibration, identity or configuration.
FACTORY_VERBS = ("CAL", "PROV", "CFG", "MAINT")


class ConfigError(ValueError):
    """A config value refused (gasguard.validate raises it, naming the key). Defined here,
    in a module that is never released, so it stays one class while the checks in
    gasguard.validate are loaded and released (boot-only) again and again."""


class ServiceError(Exception):
    """Raised by handlers (and may be raised by the device facade) to answer ERR code msg."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg
