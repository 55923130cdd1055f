"""What every gasguard device application shares: the event path, the main loop, the
reboot/maintenance requests and the persisted config. DetectorApp (gasguard.app) and
ValveApp (gasguard.valve_app) subclass it and add their own parts.

A subclass sets in its __init__: board, clock, store, config, log (EventLog), sinks,
pollers, errors, error_count, service, on_reboot, _pending, _up_s; and provides
poll_core() (the safety path and background parts) and _validate_config(cfg).
"""

import json

from gasguard import record
from gasguard.boot import CONFIG_NAME, KEY_NAME, MAINT_NAME, copy
from gasguard.validate import ConfigError


class DeviceApp:
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
        """Set one dotted leaf (e.g. detector.ch4_delay_s); validated, persisted, used
        after reboot."""
        new = copy(self.config)
        parts = key.split(".")
        node = new
        for p in parts[:-1]:
            if p not in node:
                node[p] = {}
            node = node[p]
            if not isinstance(node, dict):
                raise ConfigError("%s: %s is not a section" % (key, p))
        if isinstance(node.get(parts[-1]), dict) or isinstance(value, dict):
            raise ConfigError("%s: set the leaves of a section one by one" % key)
        node[parts[-1]] = value
        self._validate_config(new)
        if new.get("modbus") is not None:  # the RS-485 line: the check attach_modbus runs at boot
            from gasguard import modbus

            modbus.config(new["modbus"])
        self.store.write(CONFIG_NAME, record.seal(json.dumps(new).encode()))
        self.config = new
        self.emit({"event": "config", "key": key})
        return {"key": key, "value": value, "reboot_required": True}
