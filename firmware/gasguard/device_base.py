"""What every gasguard device has, whatever its core: the boot count and reset cause, the
event log, the config with fallback, the identity, the service console, a history of
readings, the main loop and its error counting, and the facade the console, the platform
downlink and the RS-485 slave talk to (docs/architecture.md).

A device (DetectorApp in gasguard.app, ValveApp in gasguard.valve_app) supplies its core:

    class XApp(DeviceApp):
        KIND = "x"; SECTIONS = (...)         # its top-level config sections
        def __init__(...):
            DeviceApp.__init__(self, board, store, identity, reset_cause, button_at_boot,
                               board_name)
            self._boot(config, build)         # build() makes the core from self.config
            self._hist_setup(names, lowest)   # history series of the core's readings
            self._booted(extra)               # the boot event
        def _core(self, now): ...             # one safety-path step + self._sample(i, v)
        def _status(self): ...                # the core's part of STATUS? (a dict)
        def _tier(self): ...                  # (tier, profile)

Fail-safe boot (gasguard.boot_select, boot-only): whatever the flash holds, a device
reaches its main loop. A stored config it cannot use is refused (fault config_invalid in
status and an event) and the device runs on the config given at boot, else on its defaults.
"""

import json
from array import array

from gasguard import VERSION
from gasguard.boot import CONFIG_NAME, KEY_NAME, MAINT_NAME  # (str: nothing of the boot-only
# module is kept)
from gasguard.eventlog import EventLog
from gasguard.service_proto import PROTOCOL

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_HIST_POINTS = const(120)
_NONE = const(-1)


class DeviceApp:
    KIND = None
    SECTIONS = ()
    CONFIG_NAME = CONFIG_NAME  # the CFG record's name, for gasguard.config_write (without boot)

    def __init__(self, board, store, identity, reset_cause, button_at_boot, board_name):
        self.board = board
        self.clock = clock = board.clock
        self.store = store
        self.board_name = board_name
        from gasguard.boot import bump_boot_count  # boot-only (gasguard.lazy.BOOT_ONLY)

        self.boot_count = bump_boot_count(store)
        if reset_cause is None:
            rc = getattr(board, "reset_cause", None)
            reset_cause = rc() if rc is not None else "unknown"
        self.reset_cause = reset_cause
        self._last = clock.ticks_ms()
        self._up_s = 0
        self._up_ms = 0
        self.sinks = []  # objects with event(ev): every stamped event (reporter, ...)
        self.pollers = []  # objects with poll(): every loop turn (links, reporter, ...)
        self.errors = []  # the last few errors of pollers, sinks and the console
        self.error_count = 0
        from gasguard.lazy import _PRIMED  # a failed lazy.prime() at the start of boot

        while _PRIMED:
            self._note_error("prime", _PRIMED.pop())
        self.log = EventLog(store, boot=self.boot_count)
        self.refused = []  # what boot could not use (reasons), and its fault codes:
        self.faults_refused = []
        if identity is None:
            from gasguard.lazy import ParkedIdentity  # loaded per use: docs/heap-budget.md

            identity = ParkedIdentity(store)
        self.identity = identity
        if button_at_boot is None:
            btn = getattr(board, "button", None)
            button_at_boot = bool(btn.value()) if btn is not None else False
        self.button_at_boot = button_at_boot
        self._pending = None  # "reboot" / "maintenance" after the reply is out
        self.on_reboot = getattr(board, "reboot", None)

    def _boot(self, given, build, fallbacks=({},), rng=None):
        """Build the core on the first config that works, then the service console on it."""
        from gasguard.boot_select import boot  # boot-only code (gasguard.lazy.BOOT_ONLY)

        from gasguard.service import Service

        def make():  # a refused service section falls back like any other
            build()
            # (a board without a service line: console None, the service reads nothing)
            self.service = Service(getattr(self.board, "console", None), self, self.clock,
                                   self.config.get("service"), rng=rng,
                                   button_at_boot=self.button_at_boot)

        boot(self, given, make, fallbacks)
        boot = None
        # the fallback boot's code out of the heap before the optional parts (link, reporter)
        # load into it, not only after boot (docs/heap-budget.md)
        from gasguard.lazy import release

        release("boot_select", "boot")

    def _booted(self, extra=None):
        ev = {"event": "boot", "reset_cause": self.reset_cause, "fw": VERSION,
              "factory": bool(self.button_at_boot)}
        if extra:
            ev.update(extra)
        self.emit(ev)

    def attach(self, what, fn):
        """An optional part (link, platform, RS-485): one that fails is refused and the
        device runs on without it."""
        try:
            fn()
        except Exception as e:
            self.refuse(what + "_invalid", what, e)

    def refuse(self, code, what, e):
        """Something stored was not usable: a fault code for status (the detector shows
        it like any fault), the reason in status "refused" and a fault event (logged when
        found, so at boot before the boot event); the device runs on without it."""
        detail = "%s: %s: %s" % (what, type(e).__name__, e)
        self.refused.append(detail)
        self._note_error(what, e)
        if code not in self.faults_refused:
            self.faults_refused.append(code)
        self.emit({"event": "fault", "code": code, "state": "on", "detail": detail})

    # ------------------------------------------------------------ history
    def _hist_setup(self, names, lowest=()):
        """Series of one int per period (history_period_s): the period's highest reading,
        or its lowest for the indexes in `lowest`; -1: no reading."""
        self._hnames = names
        self._hring = [array("i", [_NONE] * _HIST_POINTS) for _ in names]
        self._hcur = array("i", [_NONE] * len(names))
        self._hlow = lowest
        self._hist_n = 0
        self._hist_t = self.clock.ticks_ms()

    def _sample(self, i, v):
        if v is not None:
            c = self._hcur[i]
            if (c == _NONE or v < c) if i in self._hlow else v > c:
                self._hcur[i] = v

    def history(self):
        n = min(self._hist_n, _HIST_POINTS)
        first = self._hist_n - n
        out = {"period_s": self._hist_period_ms // 1000, "points": n}
        k = 0
        for name in self._hnames:
            h = self._hring[k]
            out[name] = [h[(first + i) % _HIST_POINTS] for i in range(n)]
            k += 1
        return out

    # ------------------------------------------------------------ status
    def info(self):
        tier, profile = self._tier()
        return {"fw": VERSION, "proto": PROTOCOL, "kind": self.KIND, "tier": tier,
                "profile": profile, "board": self.board_name}

    def status(self):
        """STATUS?: the core's part (_status()) and what every device reports."""
        d = self._status()
        tier, profile = self._tier()
        rec = None
        try:
            rec = self.identity.load() if self.identity is not None else None
        except ValueError as e:  # IdentityError: a fault, never a crash
            if "identity_corrupt" not in self.faults_refused:
                self.refuse("identity_corrupt", "identity", e)
        except MemoryError:  # the parked identity could not load now: status still answers
            pass
        fh = getattr(self.board, "free_heap", None)
        if fh is None:
            try:
                import gc

                fh = gc.mem_free
            except AttributeError:
                fh = None
        outbox = None
        parts = {}
        for p in self.pollers + self.sinks:
            st = getattr(p, "status", None)
            if st is None or not callable(st):
                continue
            name = getattr(p, "name", None) or type(p).__name__.lower()
            if name in parts:
                continue
            try:
                v = st()
            except Exception as e:
                v = {"error": str(e)}
            parts[name] = v
            if outbox is None and isinstance(v, dict) and "outbox" in v:
                outbox = v["outbox"]
        last = [ev for ev in self.log.recent(32)
                if ev.get("event") == "fault" and ev.get("state") == "on"]
        d.update({"id": (rec or {}).get("id"), "fw": VERSION, "kind": self.KIND, "tier": tier,
                  "profile": profile, "uptime_s": self._up_s, "reset_cause": self.reset_cause,
                  "boot_count": self.boot_count, "free_heap": fh() if fh is not None else None,
                  "readings": self.readings(), "outbox_depth": outbox,
                  "last_faults": last[-5:], "last_errors": list(self.errors),
                  "refused": self.refused,
                  "log": {"seq": self.log.seq, "write_errors": self.log.write_errors},
                  "parts": parts})
        return d

    def uptime_s(self):
        return self._up_s

    # ------------------------------------------------------------ event path
    def emit(self, ev):
        """Stamp, log and forward an event (the emit callable of the device's parts)."""
        ev = self.log.add(ev, self._up_s)
        self._on_event(ev)
        for s in self.sinks:
            try:
                s.event(ev)
            except Exception as e:
                self._note_error("sink", e)
        return ev

    def _on_event(self, ev):
        pass

    def _note_error(self, where, e):
        self.error_count += 1
        try:
            self.errors.append("%s: %s: %s" % (where, type(e).__name__, e))
            if len(self.errors) > 5:
                self.errors.pop(0)
        except MemoryError:
            pass  # counted; its text needs heap there is none of (it must not leave the loop)

    # ------------------------------------------------------------ main loop
    def poll_core(self):
        """Everything except the console (also used by the simulator to jump time): the
        core's safety step, the history, then the background parts."""
        clock = self.clock
        now = clock.ticks_ms()
        d = clock.ticks_diff(now, self._last)
        self._last = now
        if d > 0:
            self._up_ms += d
            if self._up_ms >= 1000:
                self._up_s += self._up_ms // 1000
                self._up_ms %= 1000
        self._core(now)
        p = self._hist_period_ms
        if clock.ticks_diff(now, self._hist_t) >= p:
            self._hist_t = clock.ticks_add(self._hist_t, p)
            if clock.ticks_diff(now, self._hist_t) >= p:
                self._hist_t = now  # fell behind (long stall): resynchronise
            i = self._hist_n % _HIST_POINTS
            cur = self._hcur
            k = 0
            for h in self._hring:
                h[i] = cur[k]
                cur[k] = _NONE
                k += 1
            self._hist_n += 1
        for p in self.pollers:
            try:
                p.poll()
            except Exception as e:
                self._note_error("poller", e)

    def poll(self):
        """One loop turn: the safety path and background work, then the console. The
        events they emitted are written to flash after each (EventLog.flush: never inside
        emit, which runs on the alarm path)."""
        try:
            self.poll_core()
        finally:  # a detector fault resets the device: its events are on flash first
            self.log.flush()
        try:
            self.service.poll()
        except Exception as e:
            self._note_error("service", e)
        self.log.flush()
        if self._pending is not None:
            what = self._pending
            self._pending = None
            if what == "maintenance":
                self.store.write(MAINT_NAME, b"1")
            self.emit({"event": "reboot", "cause": what})
            self.log.flush()  # on flash before the reset
            if self.on_reboot is not None:
                self.on_reboot()

    def run_forever(self, sleep_ms=10, sleep=None, watchdog=None):
        """The device main loop. Ctrl-C on the console is disabled while it runs (a stray
        0x03 on the USB serial line must not stop a safety device); maintenance mode
        (service command MAINT) is the way to the REPL. Restored if the loop ever ends."""
        if sleep is None:
            import time

            sleep = time.sleep_ms
        kbd = None
        try:
            import micropython

            kbd = micropython.kbd_intr
        except (ImportError, AttributeError):
            pass
        if kbd is not None:
            kbd(-1)
        try:
            while True:
                self.poll()
                if watchdog is not None:
                    watchdog.feed()
                sleep(sleep_ms)
        finally:
            if kbd is not None:
                kbd(3)

    def reboot(self):
        self._pending = "reboot"

    def maintenance(self):
        self._pending = "maintenance"

    # ------------------------------------------------------------ facade: log, config
    def events(self, n):
        if n <= len(self.log.recent(n)):
            return self.log.recent(n)
        return self.log.persisted()[-n:]

    def factory_key(self):
        return self.store.read(KEY_NAME)

    def config_get(self, key=None):
        return json.loads(json.dumps(self.config))

    def config_set(self, key, value):
        from gasguard.config_write import config_set

        return config_set(self, key, value)


class TelemetryFeeder:
    """Hands the app's readings to the reporter whenever the reporter says it is due."""

    name = None

    def __init__(self, app, reporter):
        self.app = app
        self.reporter = reporter

    def poll(self):
        if self.reporter.telemetry_due():
            self.reporter.telemetry(self.app.telemetry())
