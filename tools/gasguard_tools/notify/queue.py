"""The persistent delivery queue: enqueue in the ingest transaction, workers send.

One `deliveries` row per (origin, recipient, endpoint); origin names what caused it
("ev:<dev>:<boot>:<seq>" for a device message, "inc:<id>:<step>" for an escalation step,
"ack:<id>" for the acknowledged notice), so queuing the same thing twice is impossible.

A worker claims due rows with a lease (UPDATE ... RETURNING; PostgreSQL adds FOR UPDATE
SKIP LOCKED so instances never take the same row), sends, and marks the row `sent`. On a
failure the row is retried with exponential backoff (1 s doubling, at most 30 s for
alarms and 300 s for the rest, ±20 % jitter), and every other pending row for the same
endpoint waits as long (per-endpoint backoff: a dead robot is not hammered). A worker
killed mid-send leaves its lease to expire (lease_s), and the row is sent again: at least
once, with the same delivery id for the receiver to deduplicate.
"""

import hashlib
import json
import random
import threading
import time

from . import ratelimit
from .channels import ChannelError
from .config import KINDS
from .events import PRIORITY
from .store import dumps

MAX_AGE_S = 24 * 3600  # a notification still failing after a day is marked failed
KEEP_LOG_DAYS = 90     # the delivery log keeps finished rows this long (--keep-log)
COLUMNS = ("id", "origin", "incident", "dev", "kind", "recipient", "endpoint", "ep_key",
           "first", "priority", "context", "attempts", "created")


def endpoint_key(ep):
    return "%s:%s" % (ep["channel"], hashlib.sha256(dumps(ep).encode()).hexdigest()[:16])


def enqueue(t, directory, origin, incident, dev, kind, recipients, context, now):
    """Queue kind for [(recipient, first)] on each of their endpoints that take it.

    Returns the number of rows queued (0 for all those already queued)."""
    n = 0
    ctx = dumps(context)
    for name, first in recipients:
        r = directory.recipients.get(name)
        if r is None:
            continue
        for ep in r["endpoints"]:
            if kind not in ep.get("kinds", KINDS):
                continue
            cur = t.q("INSERT INTO deliveries (origin, incident, dev, kind, recipient, endpoint, "
                      "ep_key, first, priority, context, status, due, created) VALUES "
                      "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                      (origin, incident, dev, kind, name, dumps(ep), endpoint_key(ep),
                       1 if first else 0, PRIORITY.get(kind, 4), ctx, now, now))
            n += cur.rowcount
    return n


def prune_log(t, older_than):
    """Forget finished deliveries (sent, failed, cancelled) from before older_than, and the
    cleared incidents they were about. What is still pending, and everything about an alarm
    that has not cleared (who was told decides who hears of it next), stays.

    Returns (deliveries deleted, incidents deleted)."""
    n = t.q("DELETE FROM deliveries WHERE status IN ('sent', 'failed', 'cancelled') AND "
            "COALESCE(sent, created) < ? AND (incident IS NULL OR incident IN (SELECT id FROM "
            "incidents WHERE state='cleared'))", (older_than,)).rowcount
    m = t.q("DELETE FROM incidents WHERE state='cleared' AND closed < ? AND NOT EXISTS (SELECT 1 "
            "FROM deliveries d WHERE d.incident=incidents.id)", (older_than,)).rowcount
    return n, m


def backoff(attempts, priority, rnd=random.random):
    cap = 30.0 if priority == 0 else 300.0
    return min(cap, 2.0 ** max(0, attempts - 1)) * (0.8 + 0.4 * rnd())


class Worker(threading.Thread):
    """Claims and sends due deliveries until svc.stopping is set."""

    def __init__(self, svc, index, batch=4):
        super().__init__(name="notify-worker-%d" % index, daemon=True)
        self.svc = svc
        self.batch = batch
        self.owner = "%s/%d" % (svc.instance, index)

    def run(self):
        svc = self.svc
        while not svc.stopping.is_set():
            try:
                rows = self.claim()
            except Exception as e:  # database away: log, wait, go on
                svc.log("worker: cannot claim deliveries: %s" % e)
                svc.stopping.wait(1.0)
                continue
            if not rows:
                svc.wake.wait(svc.poll_s)
                svc.wake.clear()
                continue
            for row in rows:
                if svc.stopping.is_set():
                    break  # the lease expires; another worker or the next start sends it
                try:
                    self.process(dict(zip(COLUMNS, row)))
                except Exception as e:
                    svc.log("worker: delivery %s: %s: %s" % (row[0], type(e).__name__, e))

    def claim(self):
        now = time.time()
        with self.svc.store.tx() as t:
            return t.all(
                "UPDATE deliveries SET lease_owner=?, lease_until=? WHERE id IN (SELECT id FROM "
                "deliveries WHERE status='pending' AND due<=? AND lease_until<? ORDER BY "
                "priority, due, id LIMIT ? {SKIP_LOCKED}) RETURNING " + ", ".join(COLUMNS),
                (self.owner, now + self.svc.lease_s, now, now, self.batch))

    def _finish(self, row, sql, params):
        with self.svc.store.tx() as t:
            return t.q(sql + " WHERE id=? AND lease_owner=?", params + (row["id"], self.owner)).rowcount

    def process(self, row):
        svc = self.svc
        now = time.time()
        ctx = json.loads(row["context"])
        if row["kind"] == "alarm_on" and not row["first"] and row["incident"]:
            state = svc.incident_state(row["incident"])
            if state != "open":  # a reminder for an alarm someone acknowledged or that cleared
                self._finish(row, "UPDATE deliveries SET status='cancelled', lease_owner=NULL, "
                             "last_error=?", ("incident %s" % state,))
                return
        if not row["first"]:
            rl = svc.directory.settings["rate_limit"]
            with svc.store.tx() as t:
                sent = [r[0] for r in t.all(
                    "SELECT sent FROM deliveries WHERE ep_key=? AND status='sent' AND sent>?",
                    (row["ep_key"], now - rl["per_s"]))]
            hold = ratelimit.hold_until(False, sent, now, rl["max"], rl["per_s"])
            if hold is not None:
                self._finish(row, "UPDATE deliveries SET due=?, lease_owner=NULL, lease_until=0",
                             (hold,))
                svc.stats["held"] += 1
                return
        message = svc.message(row, ctx)
        ep = json.loads(row["endpoint"])
        try:
            svc.channel(ep["channel"]).send(ep, message)
        except ChannelError as e:
            self.failed(row, str(e))
            return
        n = self._finish(row, "UPDATE deliveries SET status='sent', sent=?, sent_by=?, "
                         "attempts=attempts+1, lease_owner=NULL, last_error=NULL",
                         (time.time(), self.owner))
        svc.stats["sent"] += 1
        svc.log("sent d%s %s %s -> %s (%s)" % (row["id"], row["kind"], row["dev"], row["recipient"],
                                               ep["channel"]), quiet=True)
        if n == 0:
            svc.log("delivery d%s was sent after its lease ran out (it may be sent twice)"
                    % row["id"])

    def failed(self, row, error):
        svc = self.svc
        now = time.time()
        svc.stats["failed_attempts"] += 1
        attempts = row["attempts"] + 1
        if now - row["created"] > MAX_AGE_S:
            self._finish(row, "UPDATE deliveries SET status='failed', attempts=?, last_error=?, "
                         "lease_owner=NULL", (attempts, error))
            svc.log("GAVE UP d%s %s -> %s after %d attempts: %s" % (
                row["id"], row["kind"], row["recipient"], attempts, error))
            return
        due = now + backoff(attempts, row["priority"])
        self._finish(row, "UPDATE deliveries SET attempts=?, due=?, last_error=?, lease_owner=NULL, "
                     "lease_until=0", (attempts, due, error))
        with svc.store.tx() as t:  # the whole endpoint waits: retries do not hammer it
            t.q("UPDATE deliveries SET due=? WHERE ep_key=? AND status='pending' AND due<? AND "
                "lease_until<?", (due, row["ep_key"], due, now))
        svc.log("retry d%s %s -> %s in %.1f s (attempt %d): %s" % (
            row["id"], row["kind"], row["recipient"], due - now, attempts, error))
