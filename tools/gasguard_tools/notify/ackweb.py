"""Signed acknowledgement links and the small HTTP endpoint that serves them.

A link is  <base>/ack?i=<incident>&r=<recipient>&s=<sig>  with
sig = first 32 hex of HMAC-SHA256(ack secret, "gasguard-ack/1|<incident>|<recipient>").
The ack secret is generated once and kept in the database (meta "ack_secret"), so every
instance signs and checks the same links.

GET shows the alarm and a button; only the POST the button sends acknowledges. Chat apps
and mail scanners fetch links to preview them: a GET that acknowledged would stop the
escalation before any person had read the alarm.
"""

import hashlib
import hmac
import html
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import incidents


def sign(secret, incident, recipient):
    msg = ("gasguard-ack/1|%s|%s" % (incident, recipient)).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()[:32]


def link(base, secret, incident, recipient):
    q = urllib.parse.urlencode({"i": incident, "r": recipient, "s": sign(secret, incident, recipient)})
    return "%s/ack?%s" % (base.rstrip("/"), q)


def check(secret, params):
    """(incident, recipient) of a correctly signed request, else None."""
    i, r, s = (params.get(k, [""])[0] for k in ("i", "r", "s"))
    if not i or not r or not s or not hmac.compare_digest(sign(secret, i, r), s):
        return None
    return i, r


PAGE = """<!doctype html><html lang="{lang}"><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>gasguard</title>
<body style="font-family:sans-serif;max-width:32em;margin:2em auto"><h2>{title}</h2><p>{body}</p>
{form}</body></html>"""


class AckServer:
    """ThreadingHTTPServer on (host, port); port 0 picks a free one (see .port)."""

    def __init__(self, svc, host, port):
        self.svc = svc
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _params(self):
                url = urllib.parse.urlsplit(self.path)
                params = urllib.parse.parse_qs(url.query)
                if self.command == "POST":
                    n = min(int(self.headers.get("Content-Length") or 0), 4096)
                    params.update(urllib.parse.parse_qs(self.rfile.read(n).decode("utf-8", "replace")))
                return url.path, params

            def _page(self, code, title, body, form=""):
                data = PAGE.format(lang="zh", title=html.escape(title), body=body, form=form).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path, params = self._params()
                if path == "/health":
                    return self._page(200, "ok", "ok")
                if path != "/ack":
                    return self._page(404, "not found", "")
                who = check(outer.svc.ack_secret, params)
                if who is None:
                    return self._page(403, "链接无效 / invalid link", "")
                q = html.escape(urllib.parse.urlsplit(self.path).query, quote=True)
                form = ('<form method="post" action="/ack?%s"><button style="font-size:1.4em;'
                        'padding:.5em 1em">我已知晓，正在处理 / I am on it</button></form>' % q)
                self._page(200, "确认燃气报警 / Acknowledge gas alarm",
                           "报警 %s，确认后停止向其他联系人升级通知。<br>Alarm %s: acknowledging stops "
                           "the escalation to further contacts." % (html.escape(who[0]),
                                                                    html.escape(who[0])), form)

            def do_POST(self):
                path, params = self._params()
                if path != "/ack":
                    return self._page(404, "not found", "")
                who = check(outer.svc.ack_secret, params)
                if who is None:
                    return self._page(403, "链接无效 / invalid link", "")
                result, _info = incidents.acknowledge(outer.svc.store, outer.svc.directory,
                                                      who[0], who[1], time.time())
                outer.svc.wake.set()
                outer.svc.log("ack %s by %s via link: %s" % (who[0], who[1], result))
                text = {"acked": "已确认，谢谢。/ Acknowledged, thank you.",
                        "already_acked": "已有人确认。/ Already acknowledged.",
                        "cleared": "报警已解除。/ The alarm has already cleared.",
                        "unknown": "没有这个报警。/ No such alarm."}[result]
                self._page(200 if result != "unknown" else 404, text, "")

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="notify-ack",
                                       daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
