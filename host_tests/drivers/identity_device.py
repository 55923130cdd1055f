"""A mid-tier device's active identifier on a real socket: IdentityStore + ActiveId + Reporter.

    micropython host_tests/drivers/identity_device.py PORT STORE_DIR KEY_HEX [JUMP_MS]

Provisions and locks the identity when the store is blank, connects to the broker on
127.0.0.1:PORT, registers, and once registered jumps its clock JUMP_MS ahead (default
61000: past the 60 s heartbeat) so a heartbeat goes out. Prints JSON lines:
  {"r": "registered", "rejected": n, "last_reject": "..."}
  {"r": "hb", "hb_sent": n}
  {"r": "bye", "counters": {...}, "registered": bool}
The clock starts 10 minutes before the 2**30 ms wrap, like the ESP32 simulation clock.
"""

import json
import sys
import time

try:
    import socket
except ImportError:
    import usocket as socket

from binascii import unhexlify

from gasguard import ticks
from gasguard.active_id import ActiveId, attach_reporter
from gasguard.identity import IdentityStore
from gasguard.reporter import Reporter
from gasguard.store import FileStore

ID = "88.118.8/GDH.240915.00123F"


class Clock:
    def __init__(self):
        self.offset = ticks.ESP32_TICKS_PERIOD - 600000
        self.t0 = self._raw()

    def _raw(self):
        try:
            return time.ticks_ms()
        except AttributeError:
            return int(time.monotonic() * 1000)

    def ticks_ms(self):
        return ticks.add(self._raw() - self.t0, self.offset)

    def ticks_diff(self, a, b):
        return ticks.diff(a, b)

    def ticks_add(self, t, d):
        return ticks.add(t, d)


def sleep_ms(n):
    try:
        time.sleep_ms(n)
    except AttributeError:
        time.sleep(n / 1000)


def out(d):
    sys.stdout.write(json.dumps(d) + "\n")
    try:
        sys.stdout.flush()
    except AttributeError:
        pass


def main():
    port = int(sys.argv[1])
    store = FileStore(sys.argv[2])
    key = unhexlify(sys.argv[3])
    jump = int(sys.argv[4]) if len(sys.argv) > 4 else 61000
    ids = IdentityStore(store)
    if ids.status() == "blank":
        ids.provision({"id": ID, "model": "GG-200", "hw_rev": "1.2"}, key)
        ids.lock(ID)
    clock = Clock()
    cfg = {"base": "gg", "commands": False,
           "mqtt": {"host": "127.0.0.1", "port": port, "keepalive_s": 600,
                    "backoff_min_ms": 100, "backoff_max_ms": 1000}}
    rep = Reporter(clock, store, ids.identity_info("0.1.0"), cfg, socket)
    act = ActiveId(clock, ids, {"heartbeat_s": 60, "reg_retry_min_s": 5}, None, "0.1.0",
                   status_fn=lambda: {"alarm": 0, "fault": 0})
    attach_reporter(act, rep)
    said_reg = False
    hb_at = None
    t_end = clock._raw() + 20000
    while ticks.diff(t_end, clock._raw()) > 0:
        act.poll()
        rep.poll()
        if act.registered and not said_reg:
            said_reg = True
            out({"r": "registered", "rejected": act.counters["rejected"],
                 "last_reject": act.last_reject})
            clock.offset = ticks.add(clock.offset, jump)
        if act.counters["hb_sent"] and hb_at is None:
            hb_at = clock._raw()
            out({"r": "hb", "hb_sent": act.counters["hb_sent"]})
        if hb_at is not None and ticks.diff(clock._raw(), hb_at) > 500:
            break
        sleep_ms(2)
    rep.close()
    for _ in range(20):
        rep.poll()
        sleep_ms(2)
    out({"r": "bye", "counters": act.counters, "registered": act.registered})


main()
