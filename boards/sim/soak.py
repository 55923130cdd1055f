"""One boot of a device in the soak: from a moment of the soak to the next reboot (or the end).

    micropython soak.py KIND TIER STORE SEED DAY MS END_DAY END_MS

Run by gasguard_tools.bench_soak on the ESP32-like interpreter (`-X heapsize=...`, the
firmware as .mpy from the device's deploy set), once per boot: a reboot is a new process
that starts from the store the last one left, as the device does. The device is assembled
by heap_day.Day exactly as its board main.py assembles it (Wi-Fi reporting through the
strict fake network and a broker that answers, ESP-NOW link, active identifier, console);
the day is soak_plan.plan(). Prints JSON lines for the host:
  {"h": [day, hour, alloc, free, block]}  heap in use after gc.collect(), once per simulated
                                   hour, with the free heap and the largest block then
  {"g": [boot, seq, name]}         an event the device stamped for the platform
  {"p": payload}                   an event or valve message the broker received
  {"x": [day, t0, what, alarm, close]}  a gas/pressure interval of the plan and what the
                                   device did during it (alarm raised, interlock closed)
  {"end": {...}}                   loss counters, outbox depth, errors at the end of the boot
Quiet time runs in 10 s steps, gas intervals, outages and sessions in 0.5-1 s steps.
"""

import gc
import json
import sys

import heap_day
import soak_plan
from soak_plan import DAY_MS, HOUR_MS

kind, tier, root, seed, day, ms, end_day, end_ms = sys.argv[1:9]
seed, day, ms, end_day, end_ms = int(seed), int(day), int(ms), int(end_day), int(end_ms)
DET = kind == "detector"


def soak_detector_config(tier, local):
    cfg = _detector_config(tier, local)
    cfg["detector"]["interlock_ch4_level"] = 1  # every leak above level 1 closes the valve
    return cfg


_detector_config = heap_day.detector_config
heap_day.detector_config = soak_detector_config
# not in factory mode: the button is released at power-up (heap_day holds it for its CFG write)
heap_day.DetectorBoard.BUTTON_AT_BOOT = 0
heap_day.ValveBoard.BUTTON_AT_BOOT = 0

NOISE = (
    b"{", b"null", b"[]", b'{"cmd":"open"}', b'{"cmd":"set_interval","seconds":[1]}',
    b'{"cmd":"set_interval","seconds":1e400,"mac":"00"}',
    b'{"cmd":"set_interval","seconds":{},"mac":"zz","t":1}',
    b'{"cmd":"ack_losses","lost_safety":99,"dropped_events":99,"mac":"' + b"0" * 64 + b'"}',
    b"\xff\xfe\x00garbage", 3000,  # an int: that many b"x", written into the frame in place
)
FRAME = 3200  # the harness's one noise frame (header, topic, the longest payload)
CHUNK = 512  # bytes the "network" hands over per loop turn, as TCP segments arrive
CONSOLE = ("HELLO", "STATUS?", "READ?", "LOG? 20", "HIST?", "CFG?", "CAL?", "ID?", "HELP",
           "FACTORY?", "CFG detector.hush_s 240", "CAL ZERO", "OPEN", "\x00\x7f??", "LOG? -1")


class Soak(heap_day.Day):
    def __init__(self, kind, tier, root):
        # The harness's buffers exist before the device boots (counted in the harness figure
        # and added on top of the device's heap by bench_soak): a noise message is written
        # into this frame in place and handed to the socket in CHUNK pieces, so the 3 KB
        # message never asks the device's (fragmented) heap for a 3 KB block that on the
        # ESP32 would sit in the network stack's buffers, not in the MicroPython heap.
        self.frame = bytearray(FRAME)
        self.view = memoryview(self.frame)
        # True while a noise message is being handed over: the broker answers nothing until
        # its last piece is in, as one TCP stream would (its replies after the message, not
        # inside it). Answering between the pieces put a PUBACK inside a 3000-byte PUBLISH:
        # the client skipped the message's length, lost step with the stream (every later
        # PUBACK read as part of a packet that never ended) and retransmitted its 8 events
        # every 10 s for hours (the low detector's day 21 22:50 -> MemoryError on day 22).
        self.feeding = False
        heap_day.Day.__init__(self, kind, tier, root)

    def point(self, at, extra=None):
        pass  # the soak samples once per hour (sample()), not at heap_day's checkpoints

    def start(self):
        app = self.app
        self.rep = None
        for s in app.sinks:
            if hasattr(s, "outbox"):
                self.rep = s
        rep = self.rep
        if rep is not None:
            self.cmd_topic = rep.topic("command").encode()
            stamp = rep.event

            def event(ev):
                seq = stamp(ev)
                print(json.dumps({"g": [rep.boot, seq, ev.get("event")]}))
                return seq

            rep.event = event  # the app calls sink.event(ev): every stamped event is seen
        self.det = app.detector if DET else None
        self.unsent = 0
        # harness: heap_day's figure (the firmware modules the harness loaded that the device
        # keeps are the device's); pre: what was allocated before heap_day's baseline (the
        # interpreter, this module's and heap_day's code): bench_soak adds the part of it
        # bench_heap's runner does not have (its baseline is taken before heap_day's import)
        print(json.dumps({"harness": self.harness, "pre": heap_day._BASE}))

    def run(self, ms, step=100):
        app = self.app
        board = self.board
        broker = self.broker
        for _ in range(ms // step):
            self.clock.advance(step)
            if not DET:
                board.step()
            app.poll()
            if not self.feeding:
                broker.service()
            if broker.published:
                for topic, payload, _q, _r, _d in broker.published:
                    if topic.endswith("/event") or topic.endswith("/valve"):
                        print('{"p": %s}' % payload.decode())
                broker.published = []
        net = self.net
        net.lookups = []  # the fake network's own log: not the device's heap
        # Sockets the device closed: the fake network keeps the last 8 it made, each with
        # its buffers (up to 3.5 KB of a noise message the device stopped reading when it
        # dropped the connection, measured on the low detector's day 3). On the chip those
        # bytes would be the network stack's and gone with the connection: the harness
        # drops them so they do not sit in the device's heap until 8 reconnects later.
        socks = net.sockets
        for i in range(len(socks) - 1, -1, -1):
            if socks[i].closed:
                socks.pop(i)

    def noise(self):
        s = self.net.last
        if s is None or s.closed or not s.connected:
            return
        t = self.cmd_topic
        f = self.frame
        for p in NOISE:
            m = p if isinstance(p, int) else len(p)
            n = 2 + len(t) + m
            i = 1
            f[0] = 0x30
            while True:  # remaining length
                b = n & 127
                n >>= 7
                f[i] = b | 128 if n else b
                i += 1
                if not n:
                    break
            f[i] = len(t) >> 8
            f[i + 1] = len(t) & 255
            i += 2
            f[i : i + len(t)] = t
            i += len(t)
            if isinstance(p, int):
                for k in range(i, i + m):
                    f[k] = 120
            else:
                f[i : i + m] = p
            end = i + m
            i = 0
            self.feeding = True
            while i < end:  # as the segments arrive: one loop turn each
                if s.closed:  # the device dropped the connection: the rest goes nowhere
                    self.feeding = False
                    return
                k = min(end, i + CHUNK)
                try:
                    s.feed(self.view[i:k])
                except MemoryError:  # the fake socket's buffer: the harness, not the device
                    self.unsent += 1
                    break
                i = k
                self.run(100, 100)
            self.feeding = False
            self.run(500, 100)

    def console(self):
        con = self.board.console
        for line in CONSOLE:
            con.feed(line + "\n")
            self.run(300)
            con.take_output()
        self.run(15000, 500)  # the console verbs are released after 10 s idle

    def outage(self, on):
        if on:
            self.net.mode = "unreachable"
            if self.net.last is not None:
                self.net.last.peer_closed = True
        else:
            self.net.mode = "ok"


def sample(d, hour):
    gc.collect()
    a = gc.mem_alloc() - heap_day._BASE
    f = gc.mem_free()
    print(json.dumps({"h": [d, hour, a, f, heap_day.max_block()]}))


WATCHED = ("ch4", "co", "pressure")
TAIL_MS = 180000  # an interval's alarm (or its absence) is judged until 3 min after its end


def report(dev, w):
    it = w[0]
    close = (dev.det.interlock_count > w[2]) if DET else w[1]
    print(json.dumps({"x": [w[3], it[0], it[2], w[1], close]}))


def run_boot():
    dev = Soak(kind, tier, root)
    dev.start()
    env = dev.env
    board = dev.board
    d, t = day, ms
    while True:
        items = soak_plan.plan(d, seed, kind, tier != "low")
        stop = end_ms if d == end_day else DAY_MS
        for it in items:
            if it[2] == "reboot" and t < it[0] < stop:
                stop = it[0]  # the next boot starts there
        done = [it for it in items if it[0] < t]  # before this boot
        watch = []  # [item, alarm seen, interlock closes at its start, day]
        while t < stop:
            gas = {"ch4": 0, "co": 0}
            out = False
            over = False
            fine = False
            nxt = stop
            for it in items:
                t0, t1, what, v = it
                if t0 > t:
                    nxt = min(nxt, t0)
                elif it not in done:
                    done.append(it)
                    if what == "console":
                        dev.console()
                    elif what == "noise":
                        dev.noise()
                    elif what in WATCHED:
                        watch.append([it, False, dev.det.interlock_count if DET else 0, d])
                if t0 <= t < t1:
                    if what in gas:
                        gas[what] = max(gas[what], v)
                    elif what == "outage":
                        out = True
                    elif what == "pressure":
                        over = True
                if what in WATCHED and t0 <= t < t1 + TAIL_MS:
                    fine = True
            env.ppm_x10["ch4"] = gas["ch4"]
            env.ppm_x10["co"] = gas["co"]
            if not DET:
                board.pressure_uv = dev.levels["p_over" if over else "p_ok"]
            dev.outage(out)
            step = min(500 if fine else 10000, nxt - t)
            h = t // HOUR_MS
            dev.run(step, step)
            t += step
            for w in watch:
                if DET:
                    if dev.det.alarm_level(w[0][2]) >= 1:
                        w[1] = True
                elif not board.is_open:
                    w[1] = True
            for w in list(watch):
                if t >= w[0][1] + TAIL_MS:
                    report(dev, w)
                    watch.remove(w)
                    if not DET and not board.is_open:
                        board.is_open = True  # reopened by hand after the trip
                        board.switch.level = 0
            if t // HOUR_MS != h:
                sample(d, t // HOUR_MS)
        for w in watch:  # the boot ends inside an interval's tail
            report(dev, w)
        if t >= DAY_MS and d < end_day:
            d += 1
            t = 0
        else:
            break
    rep = dev.rep
    ob = rep.outbox
    print(json.dumps({"end": {
        "day": d, "ms": t, "boot": rep.boot, "outbox": len(ob) + len(rep._pending),
        "unacked_lost": ob.unacked_lost, "unacked_dropped": ob.unacked_dropped,
        "ram_dropped": rep.rq_dropped, "bad_events": rep.bad_events,
        "cmd_rejected": rep.commands.rejected if rep.commands is not None else None,
        "errors": dev.app.error_count, "connects": dev.broker.connects,
        "noise_unsent": dev.unsent, "last_errors": dev.app.errors}}))


run_boot()
