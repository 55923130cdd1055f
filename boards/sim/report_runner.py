"""Firmware-side runner for the reporting integration tests and benchmarks.

Runs a real gasguard.reporter.Reporter with REAL sockets (MicroPython unix port or
CPython) against a broker, driven by JSON lines on stdin, answering JSON lines on
stdout. The loop is the device loop in miniature: read commands, rep.poll(), sleep 1 ms.

    micropython boards/sim/report_runner.py --port 1883 --store /tmp/x [options]
      --host IP          broker address (numeric; default 127.0.0.1)
      --base TOPIC       base topic (default gasguard)
      --dev ID           device id (default 88.118.8/GDH.240915.00123F)
      --key HEX          device key for commands (default 00..1f)
      --keepalive S      MQTT keepalive seconds (default 4)
      --connect-timeout MS   TCP connect + CONNACK timeout (default 3000)
      --ntp IP:PORT      SNTP server (numeric) for wall time
      --tls-ca FILE      TLS with this pinned CA certificate (DER), CERT_REQUIRED
      --sni NAME         the broker certificate's name (server_hostname)
      --sim-clock        ticks = real ticks + jumps from "advance" (wraps at 2**30)
      --powercut N       PowerCutStore: the power goes after N more bytes written;
                         the runner then prints {"r":"powercut"} and exits at once

stdin (one JSON object per line)          stdout
  {"op":"event","ev":{...}}              {"r":"queued","seq":n,"us":t,"flush_us":f}
                                         (t: event(), f: flush() to the flash outbox)
  {"op":"telemetry","d":{...}}           {"r":"tele","seq":n}
  {"op":"state","d":{...}}               {"r":"ok"}
  {"op":"net","up":false}                {"r":"ok"}   link down: connect fails (EHOSTUNREACH),
                                                      an open connection goes silent
  {"op":"advance","ms":N}                {"r":"ok"}   (--sim-clock only)
  {"op":"status"}                        {"r":"status", ...rep.status(), "poll_max_us", "polls",
                                          "loop_max_us", "blocking_calls"}
  {"op":"reset_stats"}                   {"r":"ok"}
  {"op":"quit"}                          {"r":"bye"} after a graceful disconnect
Every socket the firmware creates is wrapped: a connect/send/recv on a socket that was not
made non-blocking first is counted in blocking_calls (the tests assert it stays 0).
"""

import json
import select
import sys
import time

try:
    import socket
except ImportError:
    import usocket as socket

from gasguard import ticks
from gasguard.reporter import Reporter
from gasguard.store import FileStore
from simboard import PowerCutStore

EHOSTUNREACH = 113
EAGAIN = 11


class RealClock:
    """time.ticks_* with the ESP32's 2**30 wrap, plus forward jumps for --sim-clock."""

    def __init__(self, jumps=False):
        self.jumps = jumps
        self.offset = ticks.ESP32_TICKS_PERIOD - 600000  # 10 min before the wrap
        self.t0 = self._raw()

    def _raw(self):
        try:
            return time.ticks_ms()
        except AttributeError:
            return int(time.monotonic() * 1000)

    def ticks_ms(self):
        return ticks.add(self.offset, self._raw() - self.t0)

    def ticks_diff(self, a, b):
        return ticks.diff(a, b)

    def ticks_add(self, t, d):
        return ticks.add(t, d)

    def advance(self, ms):
        self.offset += ms


def now_us():
    try:
        return time.ticks_us()
    except AttributeError:
        return int(time.monotonic() * 1000000)


def us_since(t0):
    try:
        return time.ticks_diff(time.ticks_us(), t0)
    except AttributeError:
        return now_us() - t0


class GatedSocket:
    def __init__(self, net, s):
        self.net = net
        self.s = s
        self.nb = False

    def _check(self):
        if not self.nb:
            self.net.blocking_calls += 1

    def setblocking(self, flag):
        self.nb = not flag
        return self.s.setblocking(flag)

    def settimeout(self, t):
        self.nb = t == 0
        return self.s.settimeout(t)

    def setsockopt(self, *a):
        return self.s.setsockopt(*a)

    def connect(self, addr):
        self._check()
        if not self.net.up:
            raise OSError(EHOSTUNREACH)
        return self.s.connect(addr)

    def send(self, b):
        self._check()
        if not self.net.up:
            raise OSError(EAGAIN)  # the frames go nowhere: the link is silent
        return self.s.send(b)

    def recv(self, n):
        self._check()
        if not self.net.up:
            raise OSError(EAGAIN)
        return self.s.recv(n)

    def readinto(self, buf):  # the MQTT client reads in place (readinto, or recv_into)
        self._check()
        if not self.net.up:
            raise OSError(EAGAIN)
        rd = getattr(self.s, "readinto", None) or self.s.recv_into
        return rd(buf)

    def sendto(self, b, addr):
        self._check()
        return self.s.sendto(b, addr)

    def close(self):
        return self.s.close()


class GatedNet:
    """The socket module as the firmware sees it, with a switchable link."""

    AF_INET = socket.AF_INET
    SOCK_STREAM = socket.SOCK_STREAM
    SOCK_DGRAM = socket.SOCK_DGRAM

    def __init__(self):
        self.up = True
        self.blocking_calls = 0

    def getaddrinfo(self, *a):
        return socket.getaddrinfo(*a)

    def socket(self, af, kind, *a):
        return GatedSocket(self, socket.socket(af, kind))


class GatedContext:
    """ssl needs the real socket (MicroPython's TLS wants a native stream): unwrap it."""

    def __init__(self, ctx):
        self.ctx = ctx

    def wrap_socket(self, sock, **kw):
        if not sock.nb:
            sock.net.blocking_calls += 1
        return self.ctx.wrap_socket(sock.s, **kw)


class CutStore(PowerCutStore):
    def __init__(self, root, budget):
        PowerCutStore.__init__(self, root, budget)
        self.cut = False

    def write(self, name, data):
        try:
            PowerCutStore.write(self, name, data)
        except OSError:
            self.cut = True
            raise

    def append(self, name, data):
        try:
            PowerCutStore.append(self, name, data)
        except OSError:
            self.cut = True
            raise


# poll() duration histogram edges (µs); p99 is reported as the upper edge of its bucket
EDGES = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)


def p99(hist, n):
    need = n - n // 100
    acc = 0
    for i in range(len(hist)):
        acc += hist[i]
        if acc >= need:
            return EDGES[i] if i < len(EDGES) else -1
    return -1


def read_stdin():
    try:
        import os

        return os.read(0, 1).decode()  # CPython: unbuffered, so poll() stays truthful
    except (ImportError, AttributeError):
        return sys.stdin.read(1)


def out(d):
    sys.stdout.write(json.dumps(d) + "\n")
    try:
        sys.stdout.flush()
    except AttributeError:
        pass


def parse_args(argv):
    a = {"host": "127.0.0.1", "port": 1883, "store": None, "base": "gasguard",
         "dev": "88.118.8/GDH.240915.00123F", "key": None, "keepalive": 4,
         "sim-clock": False, "powercut": None, "connect-timeout": 3000, "ntp": None,
         "tls-ca": None, "sni": None}
    i = 0
    while i < len(argv):
        k = argv[i][2:]
        if k == "sim-clock":
            a[k] = True
        else:
            i += 1
            a[k] = argv[i]
        i += 1
    return a


class Handler:
    def __init__(self):
        self.calls = []

    def hush(self):
        self.calls.append("hush")

    def self_test(self):
        self.calls.append("self_test")

    def close_valve(self):
        self.calls.append("close_valve")


def main():
    a = parse_args(sys.argv[1:])
    clock = RealClock(a["sim-clock"])
    if a["powercut"] is not None:
        store = CutStore(a["store"], int(a["powercut"]))
    else:
        store = FileStore(a["store"])
    net = GatedNet()
    key = bytes(range(32))
    if a["key"]:
        key = bytes(int(a["key"][i:i + 2], 16) for i in range(0, len(a["key"]), 2))
    cfg = {"base": a["base"],
           "mqtt": {"host": a["host"], "port": int(a["port"]), "keepalive_s": int(a["keepalive"]),
                    "ping_timeout_ms": 2000, "connect_timeout_ms": int(a["connect-timeout"]), "retry_ms": 2000,
                    "backoff_min_ms": 200, "backoff_max_ms": 2000}}
    if a["ntp"]:
        nh, np = a["ntp"].split(":")
        cfg["ntp_server"] = nh
        cfg["ntp_port"] = int(np)
    ctx = None
    if a["tls-ca"]:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        with open(a["tls-ca"], "rb") as f:
            ctx.load_verify_locations(cadata=f.read())
        ctx = GatedContext(ctx)
        cfg["mqtt"]["server_hostname"] = a["sni"]
    ident = {"device_id": a["dev"], "fw": "0.1.0", "tier": "H", "kind": "detector"}
    handler = Handler()
    rep = Reporter(clock, store, ident, cfg, net, handler=handler, key=key, ssl_context=ctx)
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    poll_max = 0
    loop_max = 0
    polls = 0
    hist = [0] * (len(EDGES) + 1)
    last_loop = now_us()
    out({"r": "ready", "boot": rep.boot, "outbox": len(rep.outbox)})
    buf = ""
    while True:
        t = now_us()
        lm = us_since(last_loop)
        last_loop = t
        if lm > loop_max:
            loop_max = lm
        while poller.poll(0):
            chunk = read_stdin()
            if not chunk:
                return
            buf += chunk
            if "\n" not in buf:
                continue
            line, buf = buf.split("\n", 1)
            if not line.strip():
                continue
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "event":
                t0 = now_us()
                seq = rep.event(cmd["ev"])
                dt = us_since(t0)
                t0 = now_us()
                rep.flush()  # what the next poll() does; "queued" means durable
                dt2 = us_since(t0)
                if getattr(store, "cut", False):
                    out({"r": "powercut"})
                    sys.exit(0)
                out({"r": "queued", "seq": seq, "boot": rep.boot, "us": dt, "flush_us": dt2})
            elif op == "telemetry":
                out({"r": "tele", "seq": rep.telemetry(cmd["d"])})
            elif op == "state":
                rep.state(cmd["d"])
                out({"r": "ok"})
            elif op == "net":
                net.up = bool(cmd["up"])
                out({"r": "ok"})
            elif op == "advance":
                clock.advance(int(cmd["ms"]))
                out({"r": "ok"})
            elif op == "status":
                s = rep.status()
                s.update({"r": "status", "poll_max_us": poll_max, "polls": polls,
                          "poll_p99_us": p99(hist, polls),
                          "loop_max_us": loop_max, "blocking_calls": net.blocking_calls,
                          "handler": handler.calls})
                out(s)
            elif op == "reset_stats":
                poll_max = 0
                loop_max = 0
                polls = 0
                hist = [0] * (len(EDGES) + 1)
                out({"r": "ok"})
            elif op == "quit":
                rep.close()
                out({"r": "bye"})
                return
        t0 = now_us()
        rep.poll()
        dt = us_since(t0)
        polls += 1
        if dt > poll_max:
            poll_max = dt
        i = 0
        while i < len(EDGES) and dt >= EDGES[i]:
            i += 1
        hist[i] += 1
        if getattr(store, "cut", False):
            out({"r": "powercut"})
            sys.exit(0)
        time.sleep(0.001)


main()
