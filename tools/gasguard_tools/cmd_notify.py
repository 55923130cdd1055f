"""`gasguard notify`: tell people about alarms, faults, valve closures and offline devices.

    gasguard notify [serve] --broker HOST:PORT --db FILE|postgresql://... [--config FILE]
                    [--webhook URL] [--print] [--share GROUP] [--ack-listen HOST:PORT]
    gasguard notify ack INCIDENT... --db ... [--by NAME]   (or --device DEV: all its alarms)
    gasguard notify import CONFIG --db ...                 (recipients, sites, channels)
    gasguard notify status --db ... [--json]               (queue, open alarms, recent log)
    gasguard notify secret --db ...                        (the webhook signing secret)

Design and configuration: docs/notify.md. Exit codes as docs/cli.md: 2 for a refused
configuration or option (nothing is stored or started), 1 for a database that cannot be
opened, 1 from `ack` when the incident is unknown.
"""

import argparse
import json
import os
import signal
import sys
import time

from .cmd_monitor import parse_broker
from .runtime import ToolError, UsageError

ACTIONS = ("serve", "ack", "import", "status", "secret")


class _Intermixed(argparse.ArgumentParser):
    """Options may come before, between or after the words: `ack --by zhang ID` and
    `ack ID --by zhang` mean the same (plain argparse takes the first and then refuses ID)."""

    _inner = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inner:
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def add_arguments(p):
    if type(p) is argparse.ArgumentParser:
        p.__class__ = _Intermixed
    p.add_argument("action", nargs="?", choices=ACTIONS, default="serve",
                   help="serve (default): run the service; ack / import / status / secret")
    p.add_argument("target", nargs="*", metavar="ID|FILE",
                   help="ack: the incident id(s); import: the config file")
    p.add_argument("--db", default="notify.db",
                   help="SQLite file or postgresql:// URL (default %(default)s)")
    p.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT (default %(default)s)")
    p.add_argument("--base", default="gasguard", help="base topic (default %(default)s)")
    p.add_argument("--config", help="JSON config: recipients, sites, channels (docs/notify.md)")
    p.add_argument("--webhook", action="append", default=[], metavar="URL",
                   help="also POST every notification of every device to URL (signed)")
    p.add_argument("--webhook-secret", default=os.environ.get("GASGUARD_WEBHOOK_SECRET"),
                   help="HMAC key for --webhook (default: $GASGUARD_WEBHOOK_SECRET, else one "
                        "generated and kept in the database: `gasguard notify secret`)")
    p.add_argument("--print", dest="console", action="store_true",
                   help="also print every notification on stdout")
    p.add_argument("--lang", choices=("zh", "en"),
                   help="language of the --webhook/--print recipients (default: config, zh)")
    p.add_argument("--share", metavar="GROUP",
                   help="share the load with other instances: MQTT $share/GROUP/ subscription "
                        "(use one PostgreSQL --db for all of them)")
    p.add_argument("--client-id", help="MQTT client id (default: stable per host and database; "
                                       "with --share the prefix of the group's session ids)")
    p.add_argument("--takeover", type=float, default=5.0, metavar="S",
                   help="--share: seconds an instance may stay silent before another takes over "
                        "its MQTT session and what the broker holds for it (default 5)")
    p.add_argument("--workers", type=int, default=4, help="delivery threads (default 4)")
    p.add_argument("--ack-listen", metavar="HOST:PORT",
                   help="serve the signed acknowledgement links here (port 0: any free port)")
    p.add_argument("--ack-url", metavar="URL",
                   help="public base URL of the acknowledgement endpoint, as put in messages")
    p.add_argument("--lease", type=float, default=60.0,
                   help="seconds a claimed delivery stays with one worker (default 60)")
    p.add_argument("--keep-log", type=float, default=90.0, metavar="DAYS",
                   help="serve: keep finished deliveries (and cleared alarms) this many days "
                        "(default 90)")
    p.add_argument("--by", default="cli", help="ack: who acknowledges (default %(default)s)")
    p.add_argument("--device", help="ack: acknowledge every open alarm of this device")
    p.add_argument("--json", action="store_true", help="status: JSON")
    p.add_argument("--quiet", action="store_true", help="serve: do not log every delivery")


def _store(args):
    from .notify.store import StoreError, open_store

    try:
        return open_store(args.db)
    except StoreError as e:
        raise ToolError(str(e))


def _config(args, store):
    from .notify import config as cfgmod

    if not (args.config or args.webhook or args.console):
        return
    try:
        cfg = cfgmod.load(args.config) if args.config else cfgmod.check({})
        if args.lang:
            cfg["lang"] = args.lang
        for url in args.webhook:
            cfgmod.add_webhook(cfg, url)
        if args.console:
            cfgmod.add_console(cfg)
    except cfgmod.ConfigError as e:
        raise UsageError(str(e))
    cfgmod.import_config(store, cfg)


def run(args):
    words = args.target
    if args.action == "import":
        if len(words) != 1:
            raise UsageError("import: give one config file")
        args.target = args.config = words[0]
        store = _store(args)
        _config(args, store)
        print("imported %s into %s" % (args.target, args.db))
        return 0
    if args.action == "ack":
        return run_ack(args)
    if words:
        raise UsageError("%s takes no argument (got %s)" % (args.action, " ".join(words)))
    if args.action == "status":
        return run_status(args)
    if args.action == "secret":
        store = _store(args)
        import secrets

        print(store.meta_setdefault("webhook_secret", lambda: secrets.token_hex(32)))
        return 0
    return run_serve(args)


def run_serve(args):
    from .notify.service import Service

    host, port = parse_broker(args.broker)
    ack_listen = None
    if args.ack_listen:
        h, _, p = args.ack_listen.rpartition(":")
        if not h or not p.isdigit():
            raise UsageError("--ack-listen: expected HOST:PORT")
        ack_listen = (h, int(p))
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if not args.keep_log >= 1:
        raise UsageError("--keep-log must be at least 1 day")
    if not 0.5 <= args.takeover <= 3600:
        raise UsageError("--takeover must be between 0.5 and 3600 seconds")
    store = _store(args)
    _config(args, store)
    svc = Service(store, (host, port), base=args.base, workers=args.workers, share=args.share,
                  client_id=args.client_id, ack_listen=ack_listen, ack_url=args.ack_url,
                  lease_s=args.lease, webhook_secret=args.webhook_secret, quiet=args.quiet,
                  takeover_s=args.takeover, keep_log_days=args.keep_log)
    if not svc.directory.recipients:
        svc.log("warning: no recipients configured (--config, --webhook or --print)")

    def stop(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    svc.start()
    svc.log("running (db %s, %d recipients, %d sites); stop with Ctrl-C" % (
        args.db if "://" not in args.db else "postgresql", len(svc.directory.recipients),
        len(svc.directory.sites)))
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        svc.stop()
        svc.log("stopped: %s" % dict(sorted(svc.stats.items())))
    return 0


def run_ack(args):
    from .notify import incidents
    from .notify.config import Directory

    if args.device and args.target:
        raise UsageError("ack: give incident ids or --device, not both")
    store = _store(args)
    directory = Directory.load(store)
    if args.device:
        with store.tx() as t:
            ids = [r[0] for r in t.all("SELECT id FROM incidents WHERE dev=? AND state='open'",
                                       (args.device,))]
        if not ids:
            print("no open alarm for %s" % args.device)
            return 1
    elif args.target:
        ids = list(args.target)
    else:
        raise UsageError("ack: give the incident id (from the message) or --device DEV")
    rc = 0
    for iid in ids:
        result, info = incidents.acknowledge(store, directory, iid, args.by, time.time())
        if result == "unknown":
            print("%s: no such alarm" % iid, file=sys.stderr)
            rc = 1
        elif result == "acked":
            print("%s: acknowledged by %s (%s %s)" % (iid, args.by, info["dev"], info["gas"]))
        elif result == "already_acked":
            print("%s: already acknowledged by %s" % (iid, info["acked_by"]))
        else:
            print("%s: the alarm has already cleared" % iid)
    return rc


def run_status(args):
    store = _store(args)
    with store.tx() as t:
        queue = dict(t.all("SELECT status, COUNT(*) FROM deliveries GROUP BY status"))
        open_ = t.all("SELECT id, dev, gas, level, state, step, opened, acked_by FROM incidents "
                      "WHERE state<>'cleared' ORDER BY opened")
        recent = t.all("SELECT id, kind, dev, recipient, status, attempts, last_error, sent FROM "
                       "deliveries ORDER BY id DESC LIMIT 20")
    from .notify.members import listing

    with store.tx() as t:
        alerts = t.all("SELECT k, v FROM meta WHERE k LIKE ? ORDER BY k DESC LIMIT 20",
                       ("alert:%",))
    out = {"queue": queue, "members": listing(store),
           "alerts": [{"t": float(k.split(":")[1]), "text": v} for k, v in alerts],
           "incidents": [dict(zip(("id", "dev", "gas", "level", "state", "step", "opened",
                                   "acked_by"), r)) for r in open_],
           "recent": [dict(zip(("id", "kind", "dev", "recipient", "status", "attempts",
                                "last_error", "sent"), r)) for r in recent]}
    if args.json:
        print(json.dumps(out, ensure_ascii=False, sort_keys=True))
        return 0
    print("queue: " + (", ".join("%s %d" % kv for kv in sorted(queue.items())) or "empty"))
    print("alarms not cleared: %d" % len(open_))
    for i in out["incidents"]:
        print("  %s  %s %s level %s  %s step %s%s" % (
            i["id"], i["dev"], i["gas"], i["level"], i["state"], i["step"],
            "  acked by " + i["acked_by"] if i["acked_by"] else ""))
    for a in out["alerts"]:
        print("ALERT %s: %s" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a["t"])),
                                a["text"]))
    for m in out["members"]:
        print("session %s/%d: %s (%s)%s" % (m["group"], m["slot"], m["owner"], m["kind"],
                                             "" if m["lease_until"] > time.time() else ", silent"))
    print("recent deliveries:")
    for d in out["recent"]:
        print("  d%-6s %-16s %-28s -> %-12s %s%s" % (
            d["id"], d["kind"], d["dev"], d["recipient"], d["status"],
            "  (%d attempts: %s)" % (d["attempts"], d["last_error"]) if d["last_error"] else ""))
    return 0
