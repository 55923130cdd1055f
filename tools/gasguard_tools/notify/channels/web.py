"""The HTTP request every HTTP channel makes (urllib: no extra dependency)."""

import json
import urllib.error
import urllib.request

from . import ChannelError

USER_AGENT = "gasguard-notify/1"


def request(url, body, headers=None, method="POST", timeout=10.0):
    """(status, response text) of a 2xx answer; ChannelError for anything else."""
    h = {"User-Agent": USER_AGENT}
    h.update(headers or {})
    req = urllib.request.Request(url, data=body, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        raise ChannelError("HTTP %d from %s" % (e.code, _host(url)))
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ChannelError("%s: %s" % (_host(url), getattr(e, "reason", e)))


def post_json(url, obj, headers=None, timeout=10.0):
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    h = {"Content-Type": "application/json; charset=utf-8"}
    h.update(headers or {})
    return request(url, body, h, "POST", timeout)


def robot_result(text, url):
    """WeCom and DingTalk answer HTTP 200 with {"errcode": 0, "errmsg": "ok"} on success."""
    try:
        r = json.loads(text)
    except ValueError:
        raise ChannelError("%s: answer is not JSON" % _host(url))
    if not isinstance(r, dict) or r.get("errcode") != 0:
        raise ChannelError("%s: errcode %s %s" % (_host(url), r.get("errcode") if isinstance(
            r, dict) else "?", r.get("errmsg", "") if isinstance(r, dict) else ""))


def _host(url):
    # never log the query string: robot keys and tokens live there
    return url.split("?", 1)[0]
