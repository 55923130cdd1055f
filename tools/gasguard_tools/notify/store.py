"""The notify database: SQLite (embedded default) or PostgreSQL (several instances).

    store = open_store("notify.db")                 # SQLite file
    store = open_store("postgresql://u@host/db")    # PostgreSQL (psycopg 3, extra `notify-pg`)
    with store.tx() as t:                           # one transaction
        t.q("SELECT ...", (a, b)).fetchall()

SQL is written once with `?` placeholders and the few dialect differences as {ID}/{REAL}/
{SKIP_LOCKED} markers. Every thread gets its own connection. Tables:

    meta         k -> v (secrets shared by all instances, config revision)
    recipients   name, lang, endpoints (JSON list)
    sites        name, devices (JSON patterns), address, emergency phone, tiers (JSON), timings
    events       (dev, boot, seq) of every message acted on: the deduplication record
    devices      last known state per device (online, relay, valve, latest gas reading)
    incidents    one per alarm episode (dev, gas): escalation step, ack, cleared
    deliveries   the queue and the delivery log: one row per (origin, recipient, endpoint)
    members      --share: which instance holds which persistent MQTT session (members.py)
"""

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recipients (name TEXT PRIMARY KEY, lang TEXT NOT NULL,
    endpoints TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sites (name TEXT PRIMARY KEY, devices TEXT NOT NULL,
    address TEXT NOT NULL, emergency_phone TEXT NOT NULL, tiers TEXT NOT NULL,
    kinds TEXT NOT NULL, escalate_after_s {REAL} NOT NULL, repeat_s {REAL} NOT NULL,
    lang TEXT, ord INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (dev TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
    kind TEXT NOT NULL, received {REAL} NOT NULL, PRIMARY KEY (dev, boot, seq));
CREATE INDEX IF NOT EXISTS events_received ON events (received);
CREATE TABLE IF NOT EXISTS devices (dev TEXT PRIMARY KEY, online INTEGER, offline_notified INTEGER
    NOT NULL DEFAULT 0, relay TEXT, valve TEXT, interlock TEXT, ch4_ppm_x10 BIGINT,
    co_ppm_x10 BIGINT, reading_at {REAL}, reading_boot BIGINT, reading_up_ms BIGINT,
    lost_safety BIGINT, events_lost BIGINT, updated {REAL} NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, dev TEXT NOT NULL, gas TEXT NOT NULL,
    site TEXT NOT NULL, levels TEXT NOT NULL, level INTEGER NOT NULL, state TEXT NOT NULL,
    step INTEGER NOT NULL, next_at {REAL} NOT NULL, opened {REAL} NOT NULL, closed {REAL},
    acked_by TEXT, event TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_due ON incidents (state, next_at);
CREATE INDEX IF NOT EXISTS incidents_dev ON incidents (dev, gas, state);
CREATE TABLE IF NOT EXISTS deliveries (id {ID}, origin TEXT NOT NULL, incident TEXT,
    dev TEXT NOT NULL, kind TEXT NOT NULL, recipient TEXT NOT NULL, endpoint TEXT NOT NULL,
    ep_key TEXT NOT NULL, first INTEGER NOT NULL, priority INTEGER NOT NULL,
    context TEXT NOT NULL, status TEXT NOT NULL, due {REAL} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_until {REAL} NOT NULL DEFAULT 0,
    last_error TEXT, created {REAL} NOT NULL, sent {REAL}, sent_by TEXT,
    UNIQUE (origin, recipient, ep_key));
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, priority, due);
CREATE INDEX IF NOT EXISTS deliveries_ep ON deliveries (ep_key, status, sent);
CREATE INDEX IF NOT EXISTS deliveries_incident ON deliveries (incident);
CREATE TABLE IF NOT EXISTS members (grp TEXT NOT NULL, slot INTEGER NOT NULL, owner TEXT NOT NULL,
    kind TEXT NOT NULL, lease_until {REAL} NOT NULL, PRIMARY KEY (grp, slot));
"""

# columns added after a release of the schema: (table, column, type), added when missing
ADDED_COLUMNS = (("deliveries", "sent_by", "TEXT"), ("devices", "reading_boot", "BIGINT"),
                 ("devices", "reading_up_ms", "BIGINT"), ("devices", "lost_safety", "BIGINT"),
                 ("devices", "events_lost", "BIGINT"))

DIALECTS = {
    "sqlite": {"ID": "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL": "REAL", "SKIP_LOCKED": "",
               "FOR_UPDATE": ""},
    "postgresql": {"ID": "BIGSERIAL PRIMARY KEY", "REAL": "DOUBLE PRECISION",
                   "SKIP_LOCKED": "FOR UPDATE SKIP LOCKED", "FOR_UPDATE": "FOR UPDATE"},
}


class StoreError(Exception):
    """The database cannot be opened or used."""


class Tx:
    """One open transaction: q() runs a statement with `?` placeholders."""

    def __init__(self, store, cur):
        self.store = store
        self.cur = cur

    def q(self, sql, params=()):
        self.cur.execute(self.store.sql(sql), params)
        return self.cur

    def one(self, sql, params=()):
        return self.q(sql, params).fetchone()

    def all(self, sql, params=()):
        return self.q(sql, params).fetchall()


class Store:
    dialect = None

    def __init__(self, url):
        self.url = url
        self._local = threading.local()
        self._all = []
        self._lock = threading.Lock()
        self._sql_cache = {}

    def sql(self, text):
        s = self._sql_cache.get(text)
        if s is None:
            s = text
            for k, v in DIALECTS[self.dialect].items():
                s = s.replace("{" + k + "}", v)
            if self.dialect == "postgresql":
                s = s.replace("?", "%s")
            self._sql_cache[text] = s
        return s

    def conn(self):
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            self._local.conn = c
            with self._lock:
                self._all.append(c)
        return c

    def init(self):
        with self.tx() as t:
            self._init_lock(t)
            for stmt in self.sql(SCHEMA).split(";"):
                if stmt.strip():
                    t.cur.execute(stmt)
            for table, column, kind in ADDED_COLUMNS:
                if column not in self._columns(t, table):
                    t.cur.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, column, kind))
        return self

    def _init_lock(self, t):
        pass  # SQLite: BEGIN IMMEDIATE already lets one process at a time create the tables

    def close(self):
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            try:
                c.close()
            except Exception:
                pass
        self._local = threading.local()

    # ------------------------------------------------------------------ meta
    def meta_get(self, key, default=None):
        with self.tx() as t:
            row = t.one("SELECT v FROM meta WHERE k=?", (key,))
        return row[0] if row else default

    def meta_setdefault(self, key, make):
        """The stored value, or make() stored now (the first instance to ask wins)."""
        with self.tx() as t:
            t.q("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING", (key, make()))
            return t.one("SELECT v FROM meta WHERE k=?", (key,))[0]

    def meta_set(self, key, value):
        with self.tx() as t:
            t.q("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v=excluded.v",
                (key, value))


class SqliteStore(Store):
    dialect = "sqlite"

    def _columns(self, t, table):
        return {r[1] for r in t.all("PRAGMA table_info(%s)" % table)}

    def _connect(self):
        try:
            c = sqlite3.connect(self.url, timeout=30, isolation_level=None,
                                check_same_thread=False)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoint, no torn db
            c.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as e:
            raise StoreError("cannot open the notify database %s: %s" % (self.url, e))
        return c

    _writer = threading.Lock()

    @contextmanager
    def tx(self):
        # one writer at a time inside this process: threads queue on a Python lock instead
        # of SQLite's busy handler, which sleeps in growing steps (a storm would crawl);
        # other processes (a CLI `ack`) still wait on the file lock with busy_timeout
        c = self.conn()
        cur = c.cursor()
        with self._writer:
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self, cur)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            else:
                c.execute("COMMIT")


class PostgresStore(Store):
    dialect = "postgresql"

    def _init_lock(self, t):
        # CREATE TABLE IF NOT EXISTS is not safe against itself: two instances starting at
        # once on a new database both try, and one fails on the catalogue's unique index
        t.q("SELECT pg_advisory_xact_lock(7146300131)")

    def _columns(self, t, table):
        return {r[0] for r in t.all("SELECT column_name FROM information_schema.columns WHERE "
                                    "table_schema=current_schema() AND table_name=?", (table,))}

    def _connect(self):
        try:
            import psycopg
        except ImportError:
            raise StoreError("PostgreSQL needs psycopg: pip install 'gasguard[notify-pg]'")
        try:
            return psycopg.connect(self.url, autocommit=False)
        except psycopg.Error as e:
            raise StoreError("cannot connect to %s: %s" % (_redact(self.url), e))

    @contextmanager
    def tx(self):
        c = self.conn()
        cur = c.cursor()
        try:
            yield Tx(self, cur)
        except BaseException:
            c.rollback()
            raise
        else:
            c.commit()
        finally:
            cur.close()


def is_database_error(e):
    """True for errors of the database itself (unreachable, locked, disk full): worth
    retrying. Anything else is a bug or a message we cannot handle."""
    if isinstance(e, (StoreError, sqlite3.Error)):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(e, psycopg.Error)


def _redact(url):
    head, at, tail = url.rpartition("@")
    return ("postgresql://…@" + tail) if at else url


def open_store(url):
    """A Store for a SQLite file path or a postgresql:// URL, with its tables created."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url).init()
    d = os.path.dirname(os.path.abspath(url))
    if not os.path.isdir(d):
        raise StoreError("no such folder for --db: %s" % d)
    return SqliteStore(url).init()


def dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def now():
    return time.time()
