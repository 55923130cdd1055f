"""Fixtures for the notify tests: local HTTP receivers, a real SMTP server (aiosmtpd), the
notify service as a child process, and device messages as the firmware frames them."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT
from reporting_fixtures import free_port, wait_for

DEV = "88.118.8/GDH.240915.00123F"
VALVE = "88.118.8/GVH.240915.00124A"


class Receiver:
    """An HTTP server on 127.0.0.1:free port recording every request.

    mode: "ok" (200 + answer), "fail" (HTTP 503), "stall" (hold the request until
    release()), "close" (drop the connection without an answer)."""

    def __init__(self, answer=b'{"errcode":0,"errmsg":"ok"}'):
        self.requests = []
        self.lock = threading.Lock()
        self.mode = "ok"
        self.answer = answer
        self.released = threading.Event()
        self.stalled = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                rec = {"path": self.path, "headers": dict(self.headers), "body": body,
                       "t": time.time()}
                mode = outer.mode
                if mode == "stall":
                    outer.stalled.set()
                    outer.released.wait(60)
                if mode == "close":
                    self.close_connection = True
                    self.connection.close()
                    return
                with outer.lock:
                    rec["answered"] = mode
                    outer.requests.append(rec)
                code = 503 if mode == "fail" else 200
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.answer)))
                self.end_headers()
                self.wfile.write(outer.answer)

            do_GET = do_POST

        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/hook" % self.port

    def ok(self):
        with self.lock:
            return [r for r in self.requests if r["answered"] == "ok"]

    def bodies(self):
        return [json.loads(r["body"]) for r in self.ok()]

    def release(self):
        self.released.set()

    def stop(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def storm_broker(tmp):
    """mosquitto as docs/notify.md asks for a storm: no limit on the messages it queues for
    one session (the default 1000 drops the rest, e.g. for an instance being taken over)."""
    from reporting_fixtures import Mosquitto

    m = Mosquitto(tmp)
    with open(m.conf, "a") as f:
        f.write("max_queued_messages 0\n")
    return m.start()


class SmtpServer:
    """aiosmtpd on 127.0.0.1:free port; .messages holds (envelope to, parsed message)."""

    def __init__(self, port=None, messages=None):
        from aiosmtpd.controller import Controller
        from email import message_from_bytes, policy

        outer = self
        self.messages = [] if messages is None else messages

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append((list(envelope.rcpt_tos),
                                       message_from_bytes(envelope.content, policy=policy.default)))
                return "250 OK"

        self.port = port or free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def restart(self):
        """The same server back on the same port (after stop()), keeping what it received."""
        return SmtpServer(self.port, self.messages)


@pytest.fixture
def smtp():
    s = SmtpServer()
    yield s
    s.stop()


def envelope(dev, boot, seq, kind, **fields):
    m = {"v": 1, "kind": kind, "dev": dev, "fw": "0.1.0", "boot": boot, "seq": seq,
         "up_ms": seq * 1000, "q": ["time_unsynced"]}
    m.update(fields)
    return m


def alarm(dev, boot, seq, state="on", gas="ch4", level=1):
    return envelope(dev, boot, seq, "event", event="alarm",
                    data={"gas": gas, "level": level, "state": state, "t": seq})


def valve(dev, boot, seq, state="closed"):
    return envelope(dev, boot, seq, "valve", event="valve",
                    data={"state": state, "cause": "interlock", "t": seq})


def state(dev, boot, seq, online=True, reason=None, lost_safety=0):
    m = envelope(dev, boot, seq, "state", online=online, tier="H", device_kind="detector",
                 interval_s=60, status={}, counters={"outbox": 0, "lost_safety": lost_safety})
    if reason:
        m["reason"] = reason
    return m


def topic(msg, base="gasguard"):
    return "%s/%s/%s" % (base, msg["dev"], msg["kind"])


class Publisher:
    """A paho client publishing device messages (QoS 1, waits for each PUBACK)."""

    def __init__(self, port):
        import paho.mqtt.client as mqtt

        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-%d" % os.getpid())
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()

    def send(self, msg, retain=None, dup_times=1):
        for _ in range(dup_times):
            info = self.c.publish(topic(msg), json.dumps(msg, separators=(",", ":")), qos=1,
                                  retain=msg["kind"] == "state" if retain is None else retain)
            info.wait_for_publish(10)

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


class NotifyProcess:
    """`gasguard notify` as a child process (so it can be SIGKILLed like a crash)."""

    def __init__(self, tmp, port, args=(), db=None):
        self.tmp = str(tmp)
        self.db = db or os.path.join(self.tmp, "notify.db")
        self.argv = [sys.executable, "-m", "gasguard_tools.cli", "notify", "--broker",
                     "127.0.0.1:%d" % port, "--db", self.db] + list(args)
        self.proc = None
        self.logs = []

    def start(self):
        log = open(os.path.join(self.tmp, "notify-%d.log" % len(self.logs)), "w+")
        self.logs.append(log.name)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT / "tools") + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.tmp)
        wait_for(lambda: "connected to" in self.log_text() or self._dead(), 20,
                 what="notify to connect")
        assert self.proc.poll() is None, self.log_text()
        time.sleep(0.2)  # the SUBSCRIBE is on its way right after the CONNACK
        return self

    def _dead(self):
        return self.proc.poll() is not None

    def log_text(self):
        return open(self.logs[-1]).read() if self.logs else ""

    def all_logs(self):
        return "".join(open(p).read() for p in self.logs)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)
        self.proc = None


def status(db):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "tools") + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "gasguard_tools.cli", "notify", "status", "--db", db,
                        "--json"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
