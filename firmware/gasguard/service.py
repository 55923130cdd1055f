"""The serial service protocol (GGSP/1) on the device console.

Line-delimited ASCII requests, one reply line per request:

    [#tag ]VERB [args...]\\n      ->   [#tag ]OK <json>\\n   or   [#tag ]ERR <CODE> <message>\\n

The full protocol, the `device` facade it talks to and the factory-mode handshake are
documented in docs/service-protocol.md. This module only parses, authorises and
dispatches; the device does the work.

Robustness: bytes go into one preallocated line buffer of `line_max` bytes. A line that
overflows it is discarded up to its newline and answered with E_TOOLONG; a line with
bytes outside printable ASCII is answered with E_GARBAGE; a partial line that sits
without a newline for `partial_timeout_ms` is dropped silently. None of these change
any state. poll() reads at most `chunk` bytes per call and never waits, so the
application loop (and the alarm path in it) keeps running while the console is busy.
"""

import json
import os

from gasguard.lazy import BOOT_ONLY, release
from gasguard.service_proto import (  # noqa: F401  (E_STATE, PROTOCOL: re-exported)
    E_ARG, E_CAL, E_CONFIG, E_DEVICE, E_FACTORY, E_GARBAGE, E_IDENTITY, E_STATE, E_SYNTAX,
    E_TOOLONG, E_UNKNOWN, E_UNSUPPORTED, FACTORY_VERBS, PROTOCOL, ServiceError,
)
from gasguard.validate import ConfigError, need_int, reject_unknown

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_LF = const(10)
_CR = const(13)
_VERBS_IDLE_MS = const(10000)  # console idle this long: the verbs leave the heap

DEFAULTS = {
    "line_max": 256,
    "chunk": 64,
    "partial_timeout_ms": 10000,
    "factory_timeout_ms": 900000,
    "auth_fail_limit": 3,
    "auth_lockout_ms": 60000,
    "log_max": 50,
}

class Service:
    def __init__(self, console, device, clock, cfg=None, rng=None, button_at_boot=False):
        cfg = dict(cfg or {})
        reject_unknown(cfg, DEFAULTS, "service")
        full = dict(DEFAULTS)
        full.update(cfg)
        self.line_max = need_int(full, "line_max", 32, 4096)
        self.chunk = need_int(full, "chunk", 1, 4096)
        self.partial_timeout_ms = need_int(full, "partial_timeout_ms", 100, 600000)
        self.factory_timeout_ms = need_int(full, "factory_timeout_ms", 1000, 86400000)
        self.auth_fail_limit = need_int(full, "auth_fail_limit", 1, 100)
        self.auth_lockout_ms = need_int(full, "auth_lockout_ms", 0, 3600000)
        self.log_max = need_int(full, "log_max", 1, 500)
        self.console = console
        self.device = device
        self.clock = clock
        self.rng = rng or os.urandom
        self._buf = bytearray(self.line_max)
        self._n = 0
        self._overflow = False
        self._garbage = False
        self._last_rx = clock.ticks_ms()
        # factory mode
        self.factory = bool(button_at_boot)
        self.factory_via = "button" if button_at_boot else None
        self._factory_seen = clock.ticks_ms()
        self._nonce = None
        self._fails = 0
        self._locked_until = None
        # counters for diagnostics and tests
        self.lines = 0
        self.errors = 0
        self.dropped_partial = 0
        self._after_reply = None
        self._verbs = None  # gasguard.service_cmds.VERBS while a session is going on
        self._verbs_at = 0
        self.handlers = {}  # extra verbs: name -> fn(service, args) -> dict (e.g. SIM)

    # ----------------------------------------------------------------- byte level
    def poll(self):
        """Read what is waiting (at most `chunk` bytes), handle complete lines; never waits."""
        now = self.clock.ticks_ms()
        data = self.console.read(self.chunk)
        if not data:
            if (self._n or self._overflow or self._garbage) and self.clock.ticks_diff(
                now, self._last_rx
            ) > self.partial_timeout_ms:
                self._reset_line()
                self.dropped_partial += 1
            self._expire_factory(now)
            if self._verbs is not None and self.clock.ticks_diff(now, self._verbs_at) > _VERBS_IDLE_MS:
                self._release_verbs()
            return 0
        self._last_rx = now
        handled = 0
        buf = self._buf
        for b in data:
            if b == _LF:
                self._end_line()
                handled += 1
            elif b == _CR:
                continue
            elif self._overflow:
                continue
            elif self._n >= self.line_max:
                self._overflow = True
            else:
                if b < 32 or b > 126:
                    if b != 9:
                        self._garbage = True
                buf[self._n] = b
                self._n += 1
        self._expire_factory(now)
        return handled

    def _release_verbs(self):
        self._verbs = None
        release("service_cmds", *BOOT_ONLY)  # a CFG check loads the boot-only code too

    def _reset_line(self):
        self._n = 0
        self._overflow = False
        self._garbage = False

    def _end_line(self):
        n = self._n
        overflow = self._overflow
        garbage = self._garbage
        self._reset_line()
        if overflow:
            self._error(None, E_TOOLONG, "line longer than %d bytes discarded" % self.line_max)
            return
        if garbage:
            self._error(None, E_GARBAGE, "non-printable bytes in line; discarded")
            return
        if n == 0:
            return
        try:
            line = bytes(self._buf[:n]).decode().strip()
        except Exception:
            self._error(None, E_GARBAGE, "undecodable line; discarded")
            return
        if line:
            self.handle_line(line)

    # ----------------------------------------------------------------- line level
    def handle_line(self, line):
        """Handle one request line (without newline). Also usable directly by tests."""
        self.lines += 1
        tag = None
        if line[0] == "#":
            sp = line.find(" ")
            if sp < 0:
                self._error(None, E_SYNTAX, "a tag must be followed by a command")
                return
            tag = line[1:sp]
            if not tag or len(tag) > 16 or not _is_word(tag):
                self._error(None, E_SYNTAX, "bad tag")
                return
            line = line[sp + 1 :].strip()
        parts = line.split(None, 1)
        if not parts:
            self._error(tag, E_SYNTAX, "empty command")
            return
        verb = parts[0].upper()
        rest = parts[1] if len(parts) > 1 else ""
        now = self.clock.ticks_ms()
        if self.factory:
            self._factory_seen = now
        try:
            # loaded by the first request of a console session, released when the console
            # has been idle for _VERBS_IDLE_MS (docs/heap-budget.md)
            verbs = self._verbs
            if verbs is None:
                verbs = self._verbs = _verbs()
            self._verbs_at = now
            fn = verbs.get(verb)
            if fn is None:
                extra = self.handlers.get(verb)
                if extra is None:
                    raise ServiceError(E_UNKNOWN, "unknown command %s (try HELP)" % verb)
                result = extra(self, rest)
            else:
                if verb in FACTORY_VERBS and _writes(verb, rest) and not self.factory:
                    raise ServiceError(E_FACTORY, "%s needs factory mode (AUTH)" % verb)
                result = fn(self, rest)
        except ServiceError as e:
            self._error(tag, e.code, e.msg)
            return
        except ConfigError as e:
            self._error(tag, E_CONFIG, str(e))
            return
        except ValueError as e:
            # CalibrationError, IdentifierError... are ValueErrors naming the reason
            code = E_CAL if verb == "CAL" else (E_IDENTITY if verb == "PROV" else E_ARG)
            self._error(tag, code, str(e) or type(e).__name__)
            return
        except Exception as e:  # the console must survive any device failure
            self._error(tag, E_DEVICE, "%s: %s" % (type(e).__name__, e))
            return
        self._reply(tag, "OK " + json.dumps(result if result is not None else {}))
        after = self._after_reply
        if after is not None:
            self._after_reply = None
            after()

    def _reply(self, tag, text):
        if tag is not None:
            text = "#" + tag + " " + text
        self.console.write(text.encode() + b"\n")

    def _error(self, tag, code, msg):
        self.errors += 1
        msg = msg.replace("\n", " ").replace("\r", " ")
        self._reply(tag, "ERR %s %s" % (code, msg))

    def _expire_factory(self, now):
        # Both ways in (button held at boot, AUTH) end after factory_timeout_ms without a
        # request; _factory_seen is a ticks value, compared with the wrap-safe ticks_diff.
        if self.factory and self.clock.ticks_diff(now, self._factory_seen) > self.factory_timeout_ms:
            self.factory = False
            self.factory_via = None

    def _device_id(self):
        ident = getattr(self.device, "identity", None)
        if ident is None:
            return None
        try:
            rec = ident.load()
        except ValueError:
            return None
        return rec.get("id") if rec else None

    def _call(self, name, *args):
        fn = getattr(self.device, name, None)
        if fn is None:
            raise ServiceError(E_UNSUPPORTED, "this device has no %s" % name)
        return fn(*args)


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


def _verbs():
    from gasguard.service_cmds import VERBS

    return VERBS
