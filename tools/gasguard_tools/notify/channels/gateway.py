"""SMS and voice calls through an HTTP gateway described by a template (providers differ).

channels.sms / channels.voice:
    {"url": "https://gw.example/send?to={to}", "method": "POST",
     "headers": {"Authorization": "Bearer ..."},
     "format": "json",                       # json | form | raw
     "body": {"phone": "{to}", "message": "{text}", "ref": "{id}"},
     "ok_status": [200, 201, 202], "ok_contains": "\"code\":0"}

Placeholders: {to} {text} (the short SMS/voice text) {subject} {device} {kind} {id} {lang}.
In the URL they are percent-encoded; in a json body they are substituted inside string
values (the JSON encoder escapes them); a form body is url-encoded; a raw body is sent as
is after substitution. The call succeeded when the status is in ok_status (default any
2xx) and, if given, the answer contains ok_contains.
"""

import json
import urllib.parse

from . import ChannelError
from .web import request


def _vars(endpoint, message):
    return {"to": endpoint["to"], "text": message.get("short") or message["text"],
            "subject": message["subject"], "device": message["device"], "kind": message["kind"],
            "id": str(message["id"]), "lang": message["lang"]}


def fill(template, values, quote=None):
    out = template
    for k, v in values.items():
        out = out.replace("{%s}" % k, quote(v) if quote else v)
    return out


def _fill_json(obj, values):
    if isinstance(obj, str):
        return fill(obj, values)
    if isinstance(obj, list):
        return [_fill_json(x, values) for x in obj]
    if isinstance(obj, dict):
        return {k: _fill_json(v, values) for k, v in obj.items()}
    return obj


def build(tpl, endpoint, message):
    """(url, method, headers, body bytes) of one gateway call."""
    values = _vars(endpoint, message)
    url = fill(tpl["url"], values, lambda v: urllib.parse.quote(v, safe=""))
    headers = {k: fill(v, values) for k, v in (tpl.get("headers") or {}).items()}
    fmt = tpl.get("format", "json")
    body = tpl.get("body")
    data = None
    if body is not None:
        if fmt == "json":
            data = json.dumps(_fill_json(body, values), ensure_ascii=False).encode("utf-8")
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif fmt == "form":
            data = urllib.parse.urlencode({k: fill(str(v), values) for k, v in body.items()}).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            data = fill(body if isinstance(body, str) else json.dumps(body), values).encode("utf-8")
    return url, tpl.get("method", "POST"), headers, data


class Channel:
    def __init__(self, name, settings):
        self.name = name
        self.tpl = settings.get(name)

    def send(self, endpoint, message):
        if not self.tpl:
            raise ChannelError("%s without channels.%s" % (self.name, self.name))
        url, method, headers, data = build(self.tpl, endpoint, message)
        try:
            status, answer = request(url, data, headers, method, float(self.tpl.get("timeout_s", 10)))
        except ChannelError:
            raise
        ok = self.tpl.get("ok_status")
        if ok and status not in ok:
            raise ChannelError("%s gateway answered HTTP %d" % (self.name, status))
        want = self.tpl.get("ok_contains")
        if want and want not in answer:
            raise ChannelError("%s gateway answer lacks %r" % (self.name, want))
