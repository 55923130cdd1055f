"""The long-running notify service: subscribe, ingest, escalate, deliver.

    svc = Service(store, broker=("127.0.0.1", 1883), base="gasguard", workers=4, ...)
    svc.start(); ...; svc.stop()

Threads: paho's network loop (ingest runs in its message callback, so the PUBACK follows
the commit), N delivery workers (queue.Worker), one scheduler (escalation steps, config
reload, pruning old event identities), and optionally the acknowledgement endpoint.

MQTT session: a persistent session (clean_session=False) under a stable client id, so
QoS 1 messages published while the service is down wait at the broker, and manual PUBACKs
after the ingest transaction, so a crash before the commit means the broker redelivers.
On every (re)connect it subscribes again (a broker restarted without persistence forgot
the session). With --share GROUP the subscription is $share/GROUP/<base>/#: the broker
gives each message to one instance of the group; all instances share one database.
"""

import collections
import os
import secrets
import socket
import sys
import threading
import time

from . import ackweb, incidents
from .channels import make as make_channel
from .config import Directory
from .dedup import prune
from .ingest import Ingestor
from .queue import Worker
from .store import is_database_error
from .texts import render

KEEP_EVENTS_S = 30 * 86400


class Service:
    def __init__(self, store, broker, base="gasguard", workers=4, share=None, client_id=None,
                 ack_listen=None, ack_url=None, lease_s=60.0, poll_s=0.1, log=None,
                 webhook_secret=None, console_out=None, quiet=False, keepalive=30):
        self.store = store
        self.broker = broker
        self.base = base.rstrip("/")
        self.share = share
        self.instance = "%s-%d-%s" % (socket.gethostname(), os.getpid(), secrets.token_hex(2))
        self.client_id = client_id or self._default_client_id()
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.keepalive = keepalive
        self.quiet = quiet
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.stats = collections.Counter()
        self.directory = Directory.load(store)
        self.ack_secret = store.meta_setdefault("ack_secret", lambda: secrets.token_hex(32))
        self.webhook_secret = webhook_secret or store.meta_setdefault(
            "webhook_secret", lambda: secrets.token_hex(32))
        self.console_out = console_out
        self._channels = {}
        self._chan_lock = threading.Lock()
        self.ingestor = Ingestor(store, lambda: self.directory, self.base, self.log)
        self.workers = [Worker(self, i) for i in range(workers)]
        self.ack_server = None
        self.ack_url = ack_url
        if ack_listen is not None:
            self.ack_server = ackweb.AckServer(self, ack_listen[0], ack_listen[1])
            if not self.ack_url:
                self.ack_url = "http://%s:%d" % (ack_listen[0], self.ack_server.port)
        self.connected = threading.Event()
        self.client = None
        self._sched = threading.Thread(target=self._scheduler, name="notify-scheduler", daemon=True)

    def _default_client_id(self):
        if self.share:  # a member of a group: its own session, gone when it goes
            return "gasguard-notify-%s" % self.instance
        url = getattr(self.store, "url", "")
        import hashlib

        tag = hashlib.sha256(("%s|%s" % (socket.gethostname(), os.path.abspath(url) if
                                         "://" not in url else url)).encode()).hexdigest()[:10]
        return "gasguard-notify-%s" % tag

    def log(self, line, quiet=False):
        if quiet and self.quiet:
            return
        self._log("notify: " + line)

    # ------------------------------------------------------------ delivery helpers
    def channel(self, name):
        with self._chan_lock:
            ch = self._channels.get(name)
            if ch is None:
                settings = dict(self.directory.settings.get("channels") or {})
                settings["webhook_secret"] = self.webhook_secret
                settings["_console_out"] = self.console_out
                ch = self._channels[name] = make_channel(name, settings)
            return ch

    def incident_state(self, iid):
        with self.store.tx() as t:
            row = t.one("SELECT state FROM incidents WHERE id=?", (iid,))
        return row[0] if row else "unknown"

    def ack_hint(self, incident, recipient):
        if self.ack_url:
            return ackweb.link(self.ack_url, self.ack_secret, incident, recipient)
        return "gasguard notify ack %s" % incident

    def message(self, row, ctx):
        r = self.directory.recipients.get(row["recipient"]) or {}
        lang = r.get("lang") or self.directory.settings.get("lang", "zh")
        ack = None
        if row["kind"] == "alarm_on" and row["incident"]:
            ack = self.ack_hint(row["incident"], row["recipient"])
        t = render(ctx, lang, ack)
        return {"id": "d%s" % row["id"], "kind": row["kind"], "device": row["dev"], "lang": lang,
                "subject": t["subject"], "text": t["text"], "short": t["short"],
                "event": ctx.get("event"), "site": ctx.get("site"), "address": ctx.get("address"),
                "incident": row["incident"], "ack_url": ack if ack and "://" in ack else None,
                "recipient": row["recipient"], "sent_at": int(time.time())}

    # ------------------------------------------------------------ MQTT
    def topic(self):
        t = self.base + "/#"
        return "$share/%s/%s" % (self.share, t) if self.share else t

    def _on_connect(self, client, userdata, flags, rc, props=None):
        if getattr(rc, "is_failure", False):
            self.log("broker refused the connection: %s" % rc)
            return
        client.subscribe(self.topic(), qos=1)
        self.stats["connects"] += 1
        self.connected.set()
        self.log("connected to %s:%d, subscribed to %s (session present: %s)" % (
            self.broker[0], self.broker[1], self.topic(), getattr(flags, "session_present", "?")))

    def _on_disconnect(self, client, userdata, flags, rc, props=None):
        self.connected.clear()
        if not self.stopping.is_set():
            self.log("broker connection lost (%s); reconnecting" % rc)

    def _on_message(self, client, userdata, m):
        payload = bytes(m.payload)
        delay = 0.2
        while True:
            try:
                outcome = self.ingestor.handle(m.topic, payload)
                break
            except Exception as e:
                if not is_database_error(e):
                    # a message this code cannot handle must not block every alarm behind
                    # it: logged with its payload, acknowledged, counted
                    import traceback

                    self.stats["ingest_errors"] += 1
                    self.log("BUG: message on %s not handled (%s: %s), dropped: %r\n%s" % (
                        m.topic, type(e).__name__, e, payload[:300], traceback.format_exc()))
                    outcome = "error"
                    break
                if self.stopping.is_set():
                    return  # not acknowledged: the broker sends it again next session
                # the database is away: hold the PUBACK and try again
                self.stats["store_errors"] += 1
                self.log("cannot record %s (%s); retrying in %.1f s" % (m.topic, e, delay))
                time.sleep(delay)
                delay = min(5.0, delay * 2)
        self.stats[outcome] += 1
        if m.qos:
            client.ack(m.mid, m.qos)
        if outcome == "queued":
            self.wake.set()

    def _connect(self):
        import paho.mqtt.client as mqtt

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        clean_session=bool(self.share), manual_ack=True)
        c.reconnect_delay_set(0.2, 5)
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.connect_async(self.broker[0], self.broker[1], keepalive=self.keepalive)
        c.loop_start()
        self.client = c

    # ------------------------------------------------------------ scheduler
    def _scheduler(self):
        last_reload = last_prune = 0.0
        while not self.stopping.is_set():
            now = time.time()
            try:
                if incidents.escalate_due(self.store, self.directory, now):
                    self.wake.set()
                if now - last_reload > 2.0:
                    last_reload = now
                    rev = self.store.meta_get("config_rev", "0")
                    if rev != self.directory.rev:
                        self.directory = Directory.load(self.store)
                        with self._chan_lock:
                            self._channels = {}
                        self.log("configuration reloaded (revision %s)" % rev)
                if now - last_prune > 3600:
                    last_prune = now
                    prune(self.store, now - KEEP_EVENTS_S)
            except Exception as e:
                self.log("scheduler: %s: %s" % (type(e).__name__, e))
            self.stopping.wait(0.25)

    # ------------------------------------------------------------ lifecycle
    def start(self, connect=True):
        """Start the threads; connect=False leaves MQTT out (tests feed ingestor.handle)."""
        for w in self.workers:
            w.start()
        self._sched.start()
        if self.ack_server:
            self.ack_server.start()
            self.log("acknowledgement links: %s/ack" % self.ack_url)
        if connect:
            self._connect()
        return self

    def stop(self):
        self.stopping.set()
        self.wake.set()
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        for w in self.workers:
            w.join(15)
        self._sched.join(5)
        if self.ack_server:
            self.ack_server.stop()
        self.store.close()
