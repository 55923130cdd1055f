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
gives each message to one instance of the group; all instances share one database. Each
member session is persistent too, under a slot's client id (members.py), and an instance
takes over the session of one that stops renewing its lease (`takeover_s`), so a message
in flight to an instance that dies is re-sent to a survivor, not lost.
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
from .members import Members
from .queue import KEEP_LOG_DAYS, Worker, prune_log
from .store import is_database_error
from .texts import render

KEEP_EVENTS_S = 30 * 86400


class Service:
    def __init__(self, store, broker, base="gasguard", workers=4, share=None, client_id=None,
                 ack_listen=None, ack_url=None, lease_s=60.0, poll_s=0.1, log=None,
                 webhook_secret=None, console_out=None, quiet=False, keepalive=30,
                 takeover_s=5.0, keep_log_days=KEEP_LOG_DAYS):
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
        # --share: slot -> paho client of every member session this instance holds
        self.takeover_s = takeover_s
        self.keep_log_s = keep_log_days * 86400.0
        self.members = Members(store, share, self.instance, takeover_s) if share else None
        self.clients = {}
        self.own_slot = None
        self._clients_lock = threading.Lock()
        self._mthread = threading.Thread(target=self._membership, name="notify-members",
                                         daemon=True)
        self._sched = threading.Thread(target=self._scheduler, name="notify-scheduler", daemon=True)

    def _default_client_id(self):
        if self.share:  # a member of a group: the prefix of its slots' client ids
            return "gasguard-notify-%s" % self.share
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
        present = getattr(flags, "session_present", None)
        cid = self.client_id if userdata is None else self._member_id(userdata)
        self.log("connected to %s:%d, subscribed to %s (session present: %s%s)" % (
            self.broker[0], self.broker[1], self.topic(), present,
            "" if userdata is None else ", session %s" % cid))
        self._check_session(cid, present)

    def _check_session(self, cid, present):
        """A persistent session the broker no longer has means every device message published
        for it while we were away (and what was in flight) is gone: the one loss this service
        cannot repair itself, so it is said loudly, kept for `status`, and never silent."""
        key = "mqtt_session:" + cid
        try:
            if self.store.meta_get(key) is None:
                self.store.meta_set(key, "%d" % time.time())
            elif present is False:
                self.alert("the broker had forgotten MQTT session %s (restarted without "
                           "persistence, or the session expired): device messages published "
                           "for it while it was away are lost. Run the broker with "
                           "`persistence true` (docs/notify.md)" % cid)
        except Exception as e:
            self.log("cannot check session %s: %s: %s" % (cid, type(e).__name__, e))

    def alert(self, text, now=None):
        now = time.time() if now is None else now
        self.stats["alerts"] += 1
        self.log("ALERT: " + text)
        self.store.meta_set("alert:%017.6f:%s" % (now, self.instance), text)

    def _on_disconnect(self, client, userdata, flags, rc, props=None):
        if self.stopping.is_set():
            return
        if userdata is not None:
            # a member session: another instance may have taken it (its CONNECT closed ours);
            # then let it go instead of taking it back
            try:
                mine = self.members.holds(userdata)
            except Exception:
                mine = True
            if not mine:
                client.disconnect()  # no reconnect
                with self._clients_lock:
                    if self.clients.get(userdata) is client:
                        del self.clients[userdata]
                self.log("session %s is held by another instance now; let go" %
                         self._member_id(userdata))
                return
        if userdata is None or userdata == self.own_slot:
            self.connected.clear()
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

    def _client(self, client_id, slot=None):
        import paho.mqtt.client as mqtt

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=False, manual_ack=True, userdata=slot)
        c.reconnect_delay_set(0.2, 5)
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.connect_async(self.broker[0], self.broker[1], keepalive=self.keepalive)
        c.loop_start()
        return c

    def _member_id(self, slot):
        return "%s-%d" % (self.client_id, slot)

    def _connect(self):
        if not self.share:
            self.client = self._client(self.client_id)
            return
        self.own_slot = self.members.claim()
        self._open(self.own_slot)
        self.client = self.clients[self.own_slot]
        self._mthread.start()

    def _open(self, slot):
        with self._clients_lock:
            if slot in self.clients:
                return
            self.clients[slot] = self._client(self._member_id(slot), slot)

    def _close(self, slot):
        with self._clients_lock:
            c = self.clients.pop(slot, None)
        if c is not None:
            c.disconnect()
            c.loop_stop()

    def _membership(self):
        """--share: renew our leases, let go of sessions taken from us, take over silent ones."""
        period = max(0.1, min(1.0, self.takeover_s / 5.0))
        while not self.stopping.wait(period):
            try:
                held = self.members.renew()
                for slot in list(self.clients):
                    if slot not in held:
                        self._close(slot)
                        self.log("session %s is held by another instance now; let go" %
                                 self._member_id(slot))
                if self.own_slot not in held:
                    # we were silent so long that another instance took our session over
                    self.own_slot = self.members.claim()
                    self._open(self.own_slot)
                    self.log("our session was taken over; now holding %s" %
                             self._member_id(self.own_slot))
                for slot, was in self.members.adopt_silent():
                    self.stats["takeovers"] += 1
                    self.log("taking over session %s (instance %s went silent): the broker "
                             "re-sends what it had in flight and queued for it" %
                             (self._member_id(slot), was))
                    self._open(slot)
            except Exception as e:
                self.log("members: %s: %s" % (type(e).__name__, e))

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
                    self.prune(now)
            except Exception as e:
                self.log("scheduler: %s: %s" % (type(e).__name__, e))
            self.stopping.wait(0.25)

    def prune(self, now):
        """Hourly: forget old event identities and the finished part of the delivery log."""
        ev = prune(self.store, now - KEEP_EVENTS_S)
        with self.store.tx() as t:
            dl, inc = prune_log(t, now - self.keep_log_s)
            t.q("DELETE FROM meta WHERE k LIKE ? AND k < ?",
                ("alert:%", "alert:%017.6f" % (now - self.keep_log_s)))
        if ev or dl or inc:
            self.log("pruned %d event identities, %d deliveries, %d cleared alarms" % (
                ev, dl, inc), quiet=True)
        return ev, dl, inc

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
        if self.share:
            for slot in list(self.clients):
                self._close(slot)
            if self._mthread.is_alive():
                self._mthread.join(5)
            try:
                self.members.release()  # survivors take our sessions over at once
            except Exception as e:
                self.log("members: cannot release our sessions: %s" % e)
        elif self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        for w in self.workers:
            w.join(15)
        self._sched.join(5)
        if self.ack_server:
            self.ack_server.stop()
        self.store.close()
