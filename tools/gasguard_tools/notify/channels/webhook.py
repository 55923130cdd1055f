"""Generic webhook: JSON POST signed with HMAC-SHA256 (also how an app backend gets push requests).

Body: {"id", "device", "kind", "lang", "subject", "text", "site", "address", "incident",
"ack_url", "recipient", "sent_at", "event": <the device's original message>}.
Headers: X-Gasguard-Delivery (= id; the same on every retry), X-Gasguard-Timestamp (Unix
seconds) and X-Gasguard-Signature: "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body).
"""

import hashlib
import hmac
import json
import time

from . import ChannelError
from .web import request

FIELDS = ("id", "device", "kind", "lang", "subject", "text", "site", "address", "incident",
          "ack_url", "recipient", "sent_at", "event")


def signature(secret, timestamp, body):
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret, headers, body, max_age_s=300, now=None):
    """Receiver side: True when the signature is right and the timestamp is fresh."""
    ts = headers.get("X-Gasguard-Timestamp", "")
    if not ts.isdigit() or abs((now or time.time()) - int(ts)) > max_age_s:
        return False
    return hmac.compare_digest(signature(secret, ts, body), headers.get("X-Gasguard-Signature", ""))


class Channel:
    def __init__(self, name, settings):
        self.name = name
        self.default_secret = settings.get("webhook_secret")

    def send(self, endpoint, message):
        secret = endpoint.get("secret") or self.default_secret
        if not secret:
            raise ChannelError("webhook without a signing secret")
        body = json.dumps({k: message.get(k) for k in FIELDS}, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
        ts = str(int(time.time()))
        request(endpoint["url"], body, {
            "Content-Type": "application/json; charset=utf-8",
            "X-Gasguard-Delivery": str(message["id"]),
            "X-Gasguard-Timestamp": ts,
            "X-Gasguard-Signature": signature(secret, ts, body)})
