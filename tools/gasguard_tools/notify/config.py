"""Who is told about which device, how, and the service settings (docs/notify.md#configuration).

A config file (JSON) is checked completely before anything is stored; `import_config()`
writes it into the database, so every instance sharing the database uses the same
recipients, sites and channel settings:

    {"lang": "zh", "emergency_phone": "96777",
     "escalate_after_s": 300, "repeat_s": 600, "rate_limit": {"max": 6, "per_s": 600},
     "channels": {"smtp": {...}, "sms": {...}, "voice": {...}},
     "recipients": {"zhang": {"lang": "zh", "endpoints": [{"channel": "sms", "to": "+86..."}]}},
     "sites": [{"name": "flat-3-501", "devices": ["88.118.8/GDM.*"], "address": "...",
                "tiers": [["zhang"], ["li", "ops"]]}]}

`--webhook URL` on the command line adds the recipient "webhook" and a catch-all site "*".
"""

import fnmatch
import json

from .store import dumps

LANGS = ("zh", "en")
KINDS = ("alarm_on", "alarm_off", "fault_on", "fault_off", "end_of_life", "valve_closed",
         "valve_open", "interlock_failed", "events_lost", "offline", "online", "acked")
CHANNELS = ("webhook", "wecom", "dingtalk", "email", "sms", "voice", "console")
DEFAULTS = {"lang": "zh", "emergency_phone": "", "escalate_after_s": 300.0, "repeat_s": 600.0,
            "rate_limit": {"max": 6, "per_s": 600.0}, "channels": {}}
TOP_KEYS = set(DEFAULTS) | {"recipients", "sites"}
SITE_KEYS = {"name", "devices", "address", "emergency_phone", "tiers", "kinds",
             "escalate_after_s", "repeat_s"}
ENDPOINT_KEYS = {
    "webhook": ({"url"}, {"secret", "kinds"}),
    "wecom": ({"url"}, {"mentioned_mobile_list", "mentioned_list", "kinds"}),
    "dingtalk": ({"url"}, {"secret", "at_mobiles", "is_at_all", "kinds"}),
    "email": ({"to"}, {"kinds"}),
    "sms": ({"to"}, {"kinds"}),
    "voice": ({"to"}, {"kinds"}),
    "console": (set(), {"kinds"}),
}
CHANNEL_SETTINGS = {
    "smtp": ({"host", "port"}, {"from", "user", "password", "starttls", "ssl", "timeout_s"}),
    "sms": ({"url"}, {"method", "headers", "body", "format", "ok_status", "ok_contains",
                      "timeout_s"}),
    "voice": ({"url"}, {"method", "headers", "body", "format", "ok_status", "ok_contains",
                        "timeout_s"}),
}


class ConfigError(Exception):
    pass


def _num(v, what, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ConfigError("%s must be a number in %s..%s, got %r" % (what, lo, hi, v))
    return float(v)


def _keys(d, allowed, what, required=()):
    if not isinstance(d, dict):
        raise ConfigError("%s must be an object" % what)
    extra = sorted(set(d) - set(allowed))
    if extra:
        raise ConfigError("%s: unknown key(s) %s (allowed: %s)" % (what, ", ".join(extra),
                                                                   ", ".join(sorted(allowed))))
    missing = sorted(set(required) - set(d))
    if missing:
        raise ConfigError("%s: missing %s" % (what, ", ".join(missing)))


def check_endpoint(ep, what):
    if not isinstance(ep, dict) or ep.get("channel") not in CHANNELS:
        raise ConfigError("%s: channel must be one of %s" % (what, ", ".join(CHANNELS)))
    req, opt = ENDPOINT_KEYS[ep["channel"]]
    _keys(ep, req | opt | {"channel"}, what, req)
    for k in ("url", "to", "secret"):
        if k in ep and (not isinstance(ep[k], str) or not ep[k]):
            raise ConfigError("%s: %s must be a non-empty string" % (what, k))
    if "url" in ep and not ep["url"].startswith(("http://", "https://")):
        raise ConfigError("%s: url must be http:// or https://" % what)
    _kinds(ep.get("kinds", list(KINDS)), what)
    return ep


def _kinds(kinds, what):
    if not isinstance(kinds, list) or not all(k in KINDS for k in kinds):
        raise ConfigError("%s: kinds must be a list of %s" % (what, ", ".join(KINDS)))
    return kinds


def check(cfg):
    """A complete, validated config (defaults filled in), or ConfigError."""
    _keys(cfg, TOP_KEYS, "config")
    out = json.loads(json.dumps(DEFAULTS))
    out.update({k: v for k, v in cfg.items() if k not in ("recipients", "sites")})
    if out["lang"] not in LANGS:
        raise ConfigError("lang must be zh or en")
    if not isinstance(out["emergency_phone"], str):
        raise ConfigError("emergency_phone must be a string")
    out["escalate_after_s"] = _num(out["escalate_after_s"], "escalate_after_s", 1, 86400)
    out["repeat_s"] = _num(out["repeat_s"], "repeat_s", 1, 86400)
    rl = out["rate_limit"]
    _keys(rl, {"max", "per_s"}, "rate_limit", {"max", "per_s"})
    rl["max"] = int(_num(rl["max"], "rate_limit.max", 1, 10000))
    rl["per_s"] = _num(rl["per_s"], "rate_limit.per_s", 1, 86400)
    _keys(out["channels"], set(CHANNEL_SETTINGS), "channels")
    for name, settings in out["channels"].items():
        req, opt = CHANNEL_SETTINGS[name]
        _keys(settings, req | opt, "channels." + name, req)
        if name != "smtp" and settings.get("format", "json") not in ("json", "form", "raw"):
            raise ConfigError("channels.%s.format must be json, form or raw" % name)
    recipients = cfg.get("recipients", {})
    if not isinstance(recipients, dict):
        raise ConfigError("recipients must be an object name -> recipient")
    out["recipients"] = {}
    for name, r in recipients.items():
        what = "recipients.%s" % name
        _keys(r, {"lang", "endpoints"}, what, {"endpoints"})
        lang = r.get("lang", out["lang"])
        if lang not in LANGS:
            raise ConfigError("%s: lang must be zh or en" % what)
        if not isinstance(r["endpoints"], list) or not r["endpoints"]:
            raise ConfigError("%s: endpoints must be a non-empty list" % what)
        eps = [check_endpoint(e, "%s.endpoints[%d]" % (what, i)) for i, e in enumerate(r["endpoints"])]
        for e in eps:
            if e["channel"] in ("email",) and "smtp" not in out["channels"]:
                raise ConfigError("%s: e-mail needs channels.smtp" % what)
            if e["channel"] in ("sms", "voice") and e["channel"] not in out["channels"]:
                raise ConfigError("%s: %s needs channels.%s (the gateway template)"
                                  % (what, e["channel"], e["channel"]))
        out["recipients"][name] = {"lang": lang, "endpoints": eps}
    sites = cfg.get("sites", [])
    if not isinstance(sites, list):
        raise ConfigError("sites must be a list")
    out["sites"] = []
    names = set()
    for i, s in enumerate(sites):
        what = "sites[%d]" % i
        _keys(s, SITE_KEYS, what, {"name", "devices", "tiers"})
        if not isinstance(s["name"], str) or not s["name"] or s["name"] in names:
            raise ConfigError("%s: name must be a unique non-empty string" % what)
        names.add(s["name"])
        if not isinstance(s["devices"], list) or not s["devices"] or not all(
                isinstance(d, str) and d for d in s["devices"]):
            raise ConfigError("%s: devices must be a non-empty list of ids or patterns" % what)
        tiers = s["tiers"]
        if not isinstance(tiers, list) or not tiers:
            raise ConfigError("%s: tiers must be a non-empty list" % what)
        tiers = [t if isinstance(t, list) else [t] for t in tiers]
        for t in tiers:
            for r in t:
                if r not in out["recipients"]:
                    raise ConfigError("%s: tier names unknown recipient %r" % (what, r))
            if not t:
                raise ConfigError("%s: empty tier" % what)
        out["sites"].append({
            "name": s["name"], "devices": s["devices"], "address": str(s.get("address", "")),
            "emergency_phone": str(s.get("emergency_phone", out["emergency_phone"])),
            "tiers": tiers, "kinds": _kinds(s.get("kinds", list(KINDS)), what),
            "escalate_after_s": _num(s.get("escalate_after_s", out["escalate_after_s"]),
                                     what + ".escalate_after_s", 1, 86400),
            "repeat_s": _num(s.get("repeat_s", out["repeat_s"]), what + ".repeat_s", 1, 86400),
            "lang": None,
        })
    return out


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError("cannot read %s: %s" % (path, e))
    return check(cfg)


def add_webhook(cfg, url, secret=None):
    """The --webhook URL shortcut: recipient "webhook", told about every device first."""
    ep = {"channel": "webhook", "url": url}
    if secret:
        ep["secret"] = secret
    check_endpoint(ep, "--webhook")
    cfg["recipients"]["webhook"] = {"lang": cfg["lang"], "endpoints": [ep]}
    _catch_all(cfg, "webhook")
    return cfg


def add_console(cfg):
    """--print: recipient "console" writes every notification to stdout."""
    cfg["recipients"]["console"] = {"lang": cfg["lang"], "endpoints": [{"channel": "console"}]}
    _catch_all(cfg, "console")
    return cfg


def _catch_all(cfg, name):
    site = next((s for s in cfg["sites"] if s["name"] == "*"), None)
    if site is None:
        site = {"name": "*", "devices": ["*"], "address": "", "emergency_phone":
                cfg["emergency_phone"], "tiers": [[]], "kinds": list(KINDS),
                "escalate_after_s": cfg["escalate_after_s"], "repeat_s": cfg["repeat_s"],
                "lang": None}
        cfg["sites"].append(site)
    if name not in site["tiers"][0]:
        site["tiers"][0].append(name)


def import_config(store, cfg):
    """Replace recipients, sites and settings in the database with cfg (one transaction)."""
    settings = {k: cfg[k] for k in DEFAULTS}
    with store.tx() as t:
        t.q("DELETE FROM recipients")
        t.q("DELETE FROM sites")
        for name, r in sorted(cfg["recipients"].items()):
            t.q("INSERT INTO recipients (name, lang, endpoints) VALUES (?, ?, ?)",
                (name, r["lang"], dumps(r["endpoints"])))
        for i, s in enumerate(cfg["sites"]):
            t.q("INSERT INTO sites (name, devices, address, emergency_phone, tiers, kinds, "
                "escalate_after_s, repeat_s, lang, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (s["name"], dumps(s["devices"]), s["address"], s["emergency_phone"],
                 dumps(s["tiers"]), dumps(s["kinds"]), s["escalate_after_s"], s["repeat_s"],
                 s["lang"], i))
        t.q("INSERT INTO meta (k, v) VALUES ('settings', ?) ON CONFLICT (k) DO UPDATE SET "
            "v=excluded.v", (dumps(settings),))
        row = t.one("SELECT v FROM meta WHERE k='config_rev'")
        rev = str(int(row[0]) + 1 if row else 1)
        t.q("INSERT INTO meta (k, v) VALUES ('config_rev', ?) ON CONFLICT (k) DO UPDATE SET "
            "v=excluded.v", (rev,))


class Directory:
    """The recipients and sites as loaded from the database, with device -> site matching."""

    def __init__(self, settings, recipients, sites, rev):
        self.settings = settings
        self.recipients = recipients
        self.sites = sites
        self.rev = rev
        self._cache = {}

    @classmethod
    def load(cls, store):
        with store.tx() as t:
            rev = t.one("SELECT v FROM meta WHERE k='config_rev'")
            srow = t.one("SELECT v FROM meta WHERE k='settings'")
            recipients = {n: {"lang": lang, "endpoints": json.loads(eps)}
                          for n, lang, eps in t.all("SELECT name, lang, endpoints FROM recipients")}
            rows = t.all("SELECT name, devices, address, emergency_phone, tiers, kinds, "
                         "escalate_after_s, repeat_s, lang FROM sites ORDER BY ord")
        settings = json.loads(json.dumps(DEFAULTS))
        if srow:
            settings.update(json.loads(srow[0]))
        sites = [{"name": r[0], "devices": json.loads(r[1]), "address": r[2],
                  "emergency_phone": r[3], "tiers": json.loads(r[4]), "kinds": json.loads(r[5]),
                  "escalate_after_s": r[6], "repeat_s": r[7], "lang": r[8]} for r in rows]
        return cls(settings, recipients, sites, rev[0] if rev else "0")

    def site_for(self, dev):
        """The first site whose device list matches dev (exact id or fnmatch pattern)."""
        if dev in self._cache:
            return self._cache[dev]
        found = None
        for s in self.sites:
            if any(p == dev or fnmatch.fnmatchcase(dev, p) for p in s["devices"]):
                found = s
                break
        if len(self._cache) < 100000:
            self._cache[dev] = found
        return found

    def site(self, name):
        return next((s for s in self.sites if s["name"] == name), None)
