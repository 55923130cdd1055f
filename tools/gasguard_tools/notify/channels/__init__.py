"""Notification channels: each a small plug-in with one interface.

    ch = make(name, settings)          # settings: the config's "channels" section
    ch.send(endpoint, message)         # raises ChannelError when it did not go out

endpoint is one recipient endpoint from the config ({"channel": "webhook", "url": ...});
message is a dict: id (the delivery id, stable across retries: receivers deduplicate on
it), kind, device, lang, subject, text, short, event (the device's original message), site,
address, incident, ack_url, recipient, sent_at. A send is done when the far end accepted it
(HTTP 2xx and, for the robots, errcode 0; SMTP accepted every recipient).
"""

import importlib


class ChannelError(Exception):
    """The notification did not go out; the queue retries it with backoff."""


MODULES = {"webhook": "webhook", "wecom": "wecom", "dingtalk": "dingtalk", "email": "mail",
           "sms": "gateway", "voice": "gateway", "console": "console"}


def make(name, settings):
    mod = importlib.import_module(__name__ + "." + MODULES[name])
    return mod.Channel(name, settings or {})
