"""The serial service protocol (GGSP/1) on the device console.

Line-delimited ASCII requests, one reply line per request:

    [#tag ]VERB [args...]\\n      ->   [#tag ]OK <json>\\n   or   [#tag ]ERR <CODE> <message>\\n

The full protocol, the `device` facade it talks to and the factory-mode handshake are
documented in docs/service-protocol.md. This module is what stays resident: the line
framing, the reply, factory mode with its timeout and the AUTH lockout state (issue 15).
The request parsing, authorisation and the verbs are gasguard.service_cmds and its verb
groups, loaded per request; the device does the work.

Robustness: bytes go into one preallocated line buffer of `line_max` bytes. A line that
overflows it is discarded up to its newline and answered with E_TOOLONG; a line with
bytes outside printable ASCII is answered with E_GARBAGE; a partial line that sits
without a newline for `partial_timeout_ms` is dropped silently. None of these change
any state. poll() reads at most `chunk` bytes per call and never waits, so the
application loop (and the alarm path in it) keeps running while the console is busy.
"""

import os

from gasguard.lazy import BOOT_ONLY, release
from gasguard.service_proto import E_DEVICE, E_GARBAGE, E_TOOLONG

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_LF = const(10)
_CR = const(13)
_NOMEM = b"ERR E_DEVICE MemoryError\n"  # the reply when there is no heap to build one


class Service:
    def __init__(self, console, device, clock, cfg=None, rng=None, button_at_boot=False):
        from gasguard.boot_select import service_config  # boot-only: the section's checks

        (self.line_max, self.chunk, self.partial_timeout_ms, self.factory_timeout_ms,
         self.auth_fail_limit, self.auth_lockout_ms, self.log_max) = service_config(cfg)
        self.console = console
        self.device = device
        self.clock = clock
        self.rng = rng or os.urandom
        self._buf = bytearray(self.line_max)
        self._n = 0
        self._overflow = False
        self._garbage = False
        self._last_rx = clock.ticks_ms()
        # factory mode and the AUTH challenge: this object's state, changed by the verbs
        # only through set_factory(), challenge() and lockout()
        self.set_factory("button" if button_at_boot else None)
        self._fails = 0
        self._locked_until = None
        # counters for diagnostics and tests
        self.lines = 0
        self.errors = 0
        self.dropped_partial = 0
        self.after_reply = None  # a verb's action once its reply is out (REBOOT, MAINT)
        self.handlers = {}  # extra verbs: name -> fn(service, args) -> dict (e.g. SIM)

    # ----------------------------------------------------------------- byte level
    def poll(self):
        """Read what is waiting (at most `chunk` bytes), handle complete lines; never waits."""
        now = self.clock.ticks_ms()
        con = self.console  # None: a board without a service line
        data = con.read(self.chunk) if con is not None else None
        if not data:
            if (self._n or self._overflow or self._garbage) and self.clock.ticks_diff(
                now, self._last_rx
            ) > self.partial_timeout_ms:
                self._reset_line()
                self.dropped_partial += 1
            self._expire_factory(now)
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
            self.error(None, E_TOOLONG, "line longer than %d bytes discarded" % self.line_max)
        elif garbage:
            self.error(None, E_GARBAGE, "non-printable bytes in line; discarded")
        elif n:
            line = bytes(self._buf[:n]).decode().strip()  # printable ASCII: always decodes
            if line:
                self.handle_line(line)

    def handle_line(self, line):
        """Handle one request line (without newline). Also usable directly by tests.
        The parsing (gasguard.service_cmds) and the verb group that answers the request are
        loaded for it and released when it has been answered, with the boot-only code a
        verb loaded (CAL? the calibration record, CFG the config checks): between two
        requests the console holds only this module (docs/heap-budget.md). A line is
        answered even when the verbs cannot load: released first, then the E_DEVICE reply."""
        self.lines += 1
        if self.factory:
            self._factory_seen = self.clock.ticks_ms()
        loaded = ("service_cmds",)
        failed = None
        try:
            from gasguard.service_cmds import handle

            loaded = handle(self, line)  # answers every request itself, errors included
        except Exception as e:  # the verbs could not load (MemoryError): still an answer
            failed = e
        handle = None
        try:
            release(*(loaded + BOOT_ONLY))  # the dispatch, its verb groups (MODULES)
        except MemoryError:  # no heap even for that: the next request releases them
            pass
        if failed is not None:
            try:
                msg = "%s: %s" % (type(failed).__name__, failed)
            except MemoryError:
                msg = "MemoryError"
            self.error(None, E_DEVICE, msg)

    def reply(self, tag, text):
        if tag is not None:
            text = "#" + tag + " " + text
        self.console.write(text.encode() + b"\n")

    def error(self, tag, code, msg):
        """Reply ERR code msg, counted. With no heap left even for that line, the reply is
        the constant _NOMEM (untagged): one line per request all the same."""
        self.errors += 1
        try:
            msg = msg.replace("\n", " ").replace("\r", " ")
            self.reply(tag, "ERR %s %s" % (code, msg))
        except MemoryError:
            self.console.write(_NOMEM)

    # ----------------------------------------------------------------- factory mode
    def _expire_factory(self, now):
        # Both ways in (button held at boot, AUTH) end after factory_timeout_ms without a
        # request; _factory_seen is a ticks value, compared with the wrap-safe ticks_diff.
        if self.factory and self.clock.ticks_diff(now, self._factory_seen) > self.factory_timeout_ms:
            self.factory = False
            self.factory_via = None

    def set_factory(self, via):
        """Factory mode on ("button", "auth") or off (None); a pending challenge ends, and
        a way in clears the count of wrong responses."""
        self.factory = via is not None
        self.factory_via = via
        self._factory_seen = self.clock.ticks_ms()
        self._nonce = None
        if via is not None:
            self._fails = 0

    def challenge(self, nonce=None):
        """Set a new AUTH challenge, or (None) take the pending one: it answers one try."""
        old = self._nonce
        self._nonce = nonce
        return old

    def lockout(self, now, failed=False):
        """ms the AUTH lockout still lasts (0: a response may be tried; an ended lockout
        clears the count); failed=True counts a wrong response and locks at the limit."""
        if failed:
            self._fails += 1
            if self._fails >= self.auth_fail_limit:
                self._locked_until = self.clock.ticks_add(now, self.auth_lockout_ms)
            return 0
        if self._locked_until is not None:
            left = self.clock.ticks_diff(self._locked_until, now)
            if left > 0:
                return left
            self._locked_until = None
            self._fails = 0
        return 0
