"""Fixtures for the reporting integration tests: a real mosquitto, a paho collector, the
firmware runner on the MicroPython unix port, and a TCP server that accepts and stalls.

mosquitto is a Debian package (the Makefile's `broker` target installs it). When it is
missing the broker tests skip with a message, except when GASGUARD_REQUIRE_BROKER=1 (CI),
where a missing broker is a failure.
"""

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import ROOT, micropath, micropython_exe

RUNNER = ROOT / "boards" / "sim" / "report_runner.py"
DEV = "88.118.8/GDH.240915.00123F"


def mosquitto_bin():
    exe = shutil.which("mosquitto")
    if exe is None and os.path.exists("/usr/sbin/mosquitto"):
        exe = "/usr/sbin/mosquitto"
    if exe is None:
        msg = ("the mosquitto broker is not installed (Debian: apt-get install -y mosquitto, "
               "or `make broker` as root); broker integration tests skipped")
        if os.environ.get("GASGUARD_REQUIRE_BROKER") == "1":
            pytest.fail(msg + " -- but GASGUARD_REQUIRE_BROKER=1")
        pytest.skip(msg)
    return exe


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout=10.0, step=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for %s" % what)


class Mosquitto:
    """Our own mosquitto on 127.0.0.1:port (no persistence); kill() is a crash (SIGKILL)."""

    def __init__(self, tmp, port=None, tls=None):
        self.exe = mosquitto_bin()
        self.port = port or free_port()
        self.conf = os.path.join(str(tmp), "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "log_dest none\n" % self.port)
            if tls:
                f.write("cafile %s\ncertfile %s\nkeyfile %s\n" % tls)
                if hasattr(os, "geteuid") and os.geteuid() == 0:
                    f.write("user root\n")  # else mosquitto drops to a user that cannot read tmp
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.exe, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self._listening, 10, what="mosquitto to listen")
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("mosquitto exited with %s" % self.proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def mosquitto(tmp_path):
    m = Mosquitto(tmp_path).start()
    yield m
    m.stop()


class Collector:
    """A paho subscriber on <base>/#: records (topic, payload bytes, retain) in order and
    re-subscribes after every reconnect."""

    def __init__(self, port, base="gasguard"):
        import paho.mqtt.client as mqtt

        self.base = base
        self.msgs = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="collector-%d" % os.getpid())
        c.reconnect_delay_set(0.05, 0.3)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        c.on_disconnect = lambda *a: self.subscribed.clear()
        self.c = c
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("collector did not subscribe")

    def _on_connect(self, client, userdata, flags, rc, props=None):
        client.subscribe(self.base + "/#", qos=1)

    def _on_message(self, client, userdata, m):
        with self.lock:
            self.msgs.append((m.topic, bytes(m.payload), bool(m.retain)))

    def decoded(self, kind=None):
        out = []
        with self.lock:
            items = list(self.msgs)
        for t, p, r in items:
            if kind is None or t.endswith("/" + kind):
                out.append(json.loads(p))
        return out

    def events(self):
        """Event and valve messages, in arrival order."""
        return [m for m in self.decoded() if m.get("kind") in ("event", "valve")]

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class Runner:
    """boards/sim/report_runner.py on the MicroPython unix port (or CPython)."""

    def __init__(self, port, store, *args, runtime="micropython", heap=None):
        if runtime == "micropython":
            cmd = [micropython_exe()] + (["-X", "heapsize=" + heap] if heap else [])
            env = dict(os.environ, MICROPYPATH=micropath(ROOT / "boards" / "sim"))
        else:
            import sys

            cmd = [sys.executable, "-u"]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                [str(ROOT / "firmware"), str(ROOT / "boards" / "sim")]))
        cmd += [str(RUNNER), "--port", str(port), "--store", str(store)] + [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
        self.lines = queue.Queue()
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()
        self.ready = self.expect("ready")

    def _reader(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def expect(self, r, timeout=20):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("runner: no %r reply; stderr: %s" % (r, self.stderr()))
            try:
                m = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if m is None:
                raise AssertionError("runner exited (%s) waiting for %r: %s"
                                     % (self.proc.wait(), r, self.stderr()))
            if m.get("r") == r:
                return m

    def stderr(self):
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read().decode(errors="replace")

    def send(self, op, **kw):
        kw["op"] = op
        self.proc.stdin.write((json.dumps(kw) + "\n").encode())
        self.proc.stdin.flush()

    def call(self, op, reply="ok", **kw):
        self.send(op, **kw)
        return self.expect(reply)

    def event(self, ev):
        self.send("event", ev=ev)
        return self.expect("queued")

    def event_or_cut(self, ev, timeout=20):
        """Queue an event; return the reply, or None if the power went (--powercut)."""
        self.send("event", ev=ev)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                m = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if m is None or m.get("r") == "powercut":
                return None
            if m.get("r") == "queued":
                return m
        raise AssertionError("runner: no reply to an event")

    def status(self):
        return self.call("status", "status")

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(10)
            except Exception:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class StallServer:
    """Accepts TCP connections and never says a word (mode "stall"), or relays them to
    127.0.0.1:target (mode "forward"), so one address can stall and later work."""

    def __init__(self, target):
        self.target = target
        self.mode = "stall"
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.accepted = 0
        self.held = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "stall":
                self.held.append(c)  # keep it open, read nothing, answer nothing
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.target), 2)
            except OSError:
                c.close()
                continue
            for a, b in ((c, up), (up, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(4096)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.running = False
        self.srv.close()
        for c in self.held:
            c.close()


def first_occurrences(msgs):
    """Deduplicate on (dev, boot, seq) keeping the first arrival: what a platform does."""
    seen = set()
    out = []
    for m in msgs:
        k = (m["dev"], m["boot"], m["seq"])
        if k not in seen:
            seen.add(k)
            out.append(m)
    return out


class SntpServer:
    """A minimal SNTP server on 127.0.0.1 (UDP): answers every client request with
    `unix_time` (a fixed Unix second count, so the test knows what the device must say)."""

    def __init__(self, unix_time):
        import struct

        self.struct = struct
        self.unix_time = unix_time
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(128)
            except OSError:
                return
            if len(data) < 48 or data[0] & 7 != 3:
                continue
            self.requests += 1
            out = bytearray(48)
            out[0] = (4 << 3) | 4  # version 4, mode 4 (server)
            out[1] = 2  # stratum
            out[24:32] = data[40:48]  # originate = the client's transmit timestamp
            self.struct.pack_into("!II", out, 40, self.unix_time + 2208988800, 0)
            self.sock.sendto(bytes(out), addr)

    def close(self):
        self.sock.close()


def make_tls_files(tmp, name="mqtt.test"):
    """A throw-away CA and a broker certificate for `name` (openssl CLI). Returns
    (ca_pem, ca_der, server_pem, server_key); skips when openssl is missing."""
    exe = shutil.which("openssl")
    if exe is None:
        pytest.skip("openssl is not installed: TLS test skipped")
    t = str(tmp)

    def ossl(*args):
        subprocess.run([exe] + list(args), check=True, capture_output=True, cwd=t)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=gasguard test CA")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=" + name)
    with open(os.path.join(t, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % name)
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    ossl("x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der")
    return tuple(os.path.join(t, n) for n in ("ca.pem", "ca.der", "server.pem", "server.key"))
