"""A simulated RS-485 line between a controller and virtual devices, on pseudo-terminals.

    bus = Rs485Bus(link="./ttyRS485")      # the controller's end: bus.port (and the link)
    path = bus.add_device()                # a device's end, given to the virtual device as
                                           # --rs485 PATH (boards/sim/virtual_device.py)
    bus.start() ... bus.stop()

The controller (mbpoll, pymodbus, a gas alarm controller's software) opens bus.port like a
USB-RS485 adapter. A bridge thread makes it a multi-drop line: every byte the controller
sends reaches every device; every byte a device sends reaches the controller and the other
devices (they hear each other's replies and must ignore them, as on a real line). The
device ends stay open here, so a virtual device that reboots finds its line again.

Byte timing is kept to within the bridge's wake-up (a few ms): bytes that arrive together
stay together and a silence stays a silence, so the slaves frame requests by the
3.5-character rule as on a wire. Baud rate and parity are not simulated: a pty has none.
"""

import os
import select
import threading

from . import ptys
from .runtime import ToolError, UsageError


class Rs485Bus:
    def __init__(self, link=None, log=None):
        self.link = link
        self.log = log or (lambda msg: None)
        self._master = None
        self._slave = None
        self._devices = []  # (master, slave) per device end
        self._stop = threading.Event()
        self._thread = None
        self.port = None
        self.error = None
        self.bytes_from_controller = 0
        self.bytes_from_devices = 0

    def add_device(self):
        """A new device end; returns the pty path the virtual device opens."""
        m, s, path = ptys.open_raw()
        self._devices.append((m, s))
        return path

    def start(self):
        try:
            self._master, self._slave, self.port = ptys.open_raw(self.link)
        except OSError as e:
            raise ToolError("cannot make the RS-485 pty at %s: %s" % (self.link, e))
        self._thread = threading.Thread(target=self._run, name="gasguard-rs485", daemon=True)
        self._thread.start()
        return self.port

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        ptys.close([self._master, self._slave] + [f for pair in self._devices for f in pair],
                   self.link)
        self._master = self._slave = None
        self._devices = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        try:
            self._loop()
        except Exception as e:  # report, never hang the caller
            self.error = "%s: %s" % (type(e).__name__, e)
            self.log("rs485 bus bridge failed: " + self.error)

    def _loop(self):
        while not self._stop.is_set():
            ends = [m for m, _ in self._devices]
            r, _, _ = select.select([self._master] + ends, [], [], 0.05)
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    continue
                if not data:
                    continue
                if fd == self._master:
                    self.bytes_from_controller += len(data)
                    for m in ends:
                        ptys.write_quietly(m, data)
                else:
                    self.bytes_from_devices += len(data)
                    ptys.write_quietly(self._master, data)
                    for m in ends:
                        if m != fd:
                            ptys.write_quietly(m, data)


def parse_devices(spec):
    """"detector:1,detector:2,valve:3" -> [("detector", 1), ...]; ToolError names the problem."""
    out = []
    for part in (spec or "").split(","):
        kind, sep, addr = part.strip().partition(":")
        if kind not in ("detector", "valve") or not sep:
            raise UsageError("--devices: %r is not KIND:ADDRESS (kind detector or valve)" % part)
        try:
            a = int(addr)
        except ValueError:
            raise UsageError("--devices: address %r is not a number" % addr)
        if not 1 <= a <= 247:
            raise UsageError("--devices: address %d is outside 1..247" % a)
        if a in [x[1] for x in out]:
            raise UsageError("--devices: address %d is used twice on one line" % a)
        out.append((kind, a))
    if not out:
        raise UsageError("--devices: no device")
    return out
