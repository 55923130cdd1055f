"""The requests of the service protocol (GGSP/1): parsing, tags, authorisation and the
dispatch to the verb groups. Loaded for each request and released with its group once it
is answered (gasguard.service keeps only the line framing resident: docs/heap-budget.md).

handle(svc, line) answers one request line. The verbs are in four groups, each loaded only
for a request it answers: service_read (the read-only verbs, and the helpers the other
groups share), service_cal (CAL), service_cfg (CFG) and service_factory (AUTH, PROV, the
actions). Every verb takes (service, rest-of-line) and returns a JSON-able dict, or raises
ServiceError. Factory mode and the AUTH state belong to the Service; the verbs change them
only through its set_factory(), challenge() and lockout(). The protocol's names come from
gasguard.service_proto, never from gasguard.service (which loads this module), and the
groups never import this module: no import cycle.
"""

import json

from gasguard.lazy import BOOT_ONLY, release
from gasguard.service_proto import (  # ConfigError: one class (validate is boot-only)
    E_ARG, E_CAL, E_CONFIG, E_DEVICE, E_FACTORY, E_IDENTITY, E_SYNTAX, E_UNKNOWN,
    FACTORY_VERBS, PROTOCOL, ConfigError, ServiceError,
)

# verb -> its group (0 read, 1 CAL, 2 CFG, 3 factory and actions); HELP is answered here
GROUPS = {"HELLO": 0, "ID?": 0, "STATUS?": 0, "READ?": 0, "LOG?": 0, "HIST?": 0, "CFG?": 0,
          "CAL?": 0, "FACTORY?": 0, "CAL": 1, "CFG": 2, "AUTH": 3, "PROV": 3, "SELFTEST": 3,
          "ITEST": 3, "HUSH": 3, "REBOOT": 3, "MAINT": 3, "HELP": None}


# what a request may have loaded: gasguard.service releases these once it is answered
MODULES = ("service_cmds", "service_read", "service_cal", "service_cfg", "service_factory")


def handle(svc, line):
    """Answer one request line (without newline): OK <json> or ERR <code> <message>.
    Returns the names of the console's modules to release (MODULES)."""
    _answer(svc, line)
    return MODULES


def _answer(svc, line):
    tag = None
    if line[0] == "#":
        sp = line.find(" ")
        if sp < 0:
            svc.error(None, E_SYNTAX, "a tag must be followed by a command")
            return
        tag = line[1:sp]
        if not tag or len(tag) > 16 or not _is_word(tag):
            svc.error(None, E_SYNTAX, "bad tag")
            return
        line = line[sp + 1 :].strip()
    parts = line.split(None, 1)
    if not parts:
        svc.error(tag, E_SYNTAX, "empty command")
        return
    verb = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    try:
        if verb == "HELP":
            result = _help(svc)
        elif verb not in GROUPS:
            extra = svc.handlers.get(verb)
            if extra is None:
                raise ServiceError(E_UNKNOWN, "unknown command %s (try HELP)" % verb)
            result = extra(svc, rest)
        else:
            if verb in FACTORY_VERBS and _writes(verb, rest) and not svc.factory:
                raise ServiceError(E_FACTORY, "%s needs factory mode (AUTH)" % verb)
            result = _group(GROUPS[verb]).VERBS[verb](svc, rest)
    except ServiceError as e:
        svc.error(tag, e.code, e.msg)
        return
    except ConfigError as e:
        svc.error(tag, E_CONFIG, str(e))
        return
    except ValueError as e:
        # CalibrationError, IdentifierError... are ValueErrors naming the reason
        code = E_CAL if verb == "CAL" else (E_IDENTITY if verb == "PROV" else E_ARG)
        svc.error(tag, code, str(e) or type(e).__name__)
        return
    except Exception as e:  # the console must survive any device failure
        if isinstance(e, MemoryError):  # e.g. a verb group that could not load: room first
            try:
                release(*(MODULES[1:] + BOOT_ONLY))
            except MemoryError:
                pass
        svc.error(tag, E_DEVICE, "%s: %s" % (type(e).__name__, e))
        return
    svc.reply(tag, "OK " + json.dumps(result if result is not None else {}))
    after = svc.after_reply
    if after is not None:
        svc.after_reply = None
        after()


def _group(g):
    """The module of verb group g, imported for this request (gasguard.service releases it)."""
    if g == 0:
        from gasguard import service_read as m
    elif g == 1:
        from gasguard import service_cal as m
    elif g == 2:
        from gasguard import service_cfg as m
    else:
        from gasguard import service_factory as m
    return m


def _help(svc):
    verbs = sorted(list(GROUPS.keys()) + list(svc.handlers.keys()))
    return {"proto": PROTOCOL, "commands": verbs, "factory_only": list(FACTORY_VERBS)}


def _is_word(s):
    for c in s:
        if not (c.isalpha() or c.isdigit() or c in "-_."):
            return False
    return True


def _writes(verb, rest):
    """True when this request changes state (reads stay allowed without factory mode)."""
    if verb == "CFG" or verb == "CAL" or verb == "PROV":
        return bool(rest.strip())
    return True
