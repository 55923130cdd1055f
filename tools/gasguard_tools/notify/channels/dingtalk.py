"""DingTalk (钉钉) custom robot: POST {"msgtype": "text", "text": {"content"}, "at": {...}} to
https://oapi.dingtalk.com/robot/send?access_token=TOKEN.

With the robot's "加签" security setting (a secret starting SEC...), the URL gets
`&timestamp=<ms>&sign=<s>` where s = urlencode(base64(HMAC-SHA256(key=secret,
msg=timestamp + "\n" + secret))); the timestamp must be within an hour of DingTalk's clock.
Answer: {"errcode": 0, "errmsg": "ok"}. Sources in docs/notify.md.
"""

import base64
import hashlib
import hmac
import time
import urllib.parse

from .web import post_json, robot_result


def sign(secret, timestamp_ms):
    to_sign = ("%d\n%s" % (timestamp_ms, secret)).encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def signed_url(url, secret, timestamp_ms=None):
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return "%s%stimestamp=%d&sign=%s" % (url, "&" if "?" in url else "?", ts, sign(secret, ts))


class Channel:
    def __init__(self, name, settings):
        self.name = name

    def send(self, endpoint, message):
        url = endpoint["url"]
        if endpoint.get("secret"):
            url = signed_url(url, endpoint["secret"])
        body = {"msgtype": "text", "text": {"content": message["text"]},
                "at": {"atMobiles": list(endpoint.get("at_mobiles", [])),
                       "isAtAll": bool(endpoint.get("is_at_all", False))}}
        _status, answer = post_json(url, body)
        robot_result(answer, endpoint["url"])
