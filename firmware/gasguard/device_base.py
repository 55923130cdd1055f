"""What every gasguard device application shares: the event path, the main loop, the
reboot/maintenance requests and the persisted config. DetectorApp (gasguard.app) and
ValveApp (gasguard.valve_app) subclass it and add their own parts.

A subclass sets in its __init__: board, clock, store, log (EventLog), sinks, pollers,
errors, error_count, on_reboot, _pending, _up_s, refused, faults_refused; calls
_boot(given, build) for its config and parts (the service among them); and provides
SECTIONS and poll_core() (the safety path and background parts); CFG checks live in
gasguard.config_write (loaded for a write only).

Fail-safe boot (docs/architecture.md): whatever the flash holds, a device reaches its
main loop. A stored config it cannot use is refused (fault config_invalid in status and
an event) and the device runs on the config given at boot, else on its defaults.
"""

from gasguard.boot import CONFIG_NAME, KEY_NAME, MAINT_NAME, copy
from gasguard.validate import ConfigError


class DeviceApp:
    def _boot(self, given, build, fallbacks=({},)):
        from gasguard.boot_select import boot  # boot-only code (gasguard.lazy.BOOT_ONLY)

        boot(self, given, build, fallbacks)

    def attach(self, what, fn):
        """main.py: attach an optional part (link, platform, RS-485); one that fails is
        refused and the device runs on without it."""
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

    def _identity_record(self):
        """The identity record for status; a corrupt one is a fault, never a crash."""
        try:
            return self.identity.load() if self.identity is not None else None
        except ValueError as e:  # IdentityError
            if "identity_corrupt" not in self.faults_refused:
                self.refuse("identity_corrupt", "identity", e)
        except MemoryError:  # the parked identity could not load now: status still answers
            pass

    def _status_parts(self):
        """What both devices' status() report: (free_heap, outbox depth, the attached
        parts' status by name, the newest fault-on events)."""
        fh = getattr(self.board, "free_heap", None)
        if fh is None:
            try:
                import gc

                fh = gc.mem_free
            except AttributeError:
                fh = None
        outbox = None
        parts = {}
        seen = []
        for p in self.pollers + self.sinks:
            if p in seen:
                continue
            seen.append(p)
            st = getattr(p, "status", None)
            if st is None or not callable(st):
                continue
            name = getattr(p, "name", None) or type(p).__name__.lower()
            try:
                v = st()
            except Exception as e:
                v = {"error": str(e)}
            parts[name] = v
            if outbox is None and isinstance(v, dict) and "outbox" in v:
                outbox = v["outbox"]
        last = []
        for ev in self.log.recent(32):
            if ev.get("event") == "fault" and ev.get("state") == "on":
                last.append(ev)
        return fh, outbox, parts, last

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
        self.errors.append("%s: %s: %s" % (where, type(e).__name__, e))
        if len(self.errors) > 5:
            self.errors.pop(0)

    # ------------------------------------------------------------ main loop
    def poll(self):
        """One loop turn: the safety path and background work, then the console."""
        self.poll_core()
        try:
            self.service.poll()
        except Exception as e:
            self._note_error("service", e)
        if self._pending is not None:
            what = self._pending
            self._pending = None
            self._do_reboot(what)

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

    def _do_reboot(self, what):
        if what == "maintenance":
            self.store.write(MAINT_NAME, b"1")
        self.emit({"event": "reboot", "cause": what})
        if self.on_reboot is not None:
            self.on_reboot()

    # ------------------------------------------------------------ facade: log, config
    def events(self, n):
        if n <= len(self.log.recent(n)):
            return self.log.recent(n)
        return self.log.persisted()[-n:]

    def factory_key(self):
        return self.store.read(KEY_NAME)

    def config_get(self, key=None):
        return copy(self.config)

    def config_set(self, key, value):
        from gasguard.config_write import config_set

        return config_set(self, key, value)

