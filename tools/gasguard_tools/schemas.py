"""The published message schemas (docs/schemas/*.schema.json) as validators.

    check(kind, message_dict) -> list of error strings (empty: valid)
    check_topic(topic, payload_bytes, base="gasguard") -> (kind, dev, message, errors)

Every *.schema.json in docs/schemas is loaded into one `referencing` registry under its
$id, so kind schemas can $ref "envelope.schema.json" and the identity schemas.
"""

import json
from functools import lru_cache

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from . import SCHEMAS

EXAMPLES = SCHEMAS / "examples"
BASE_URI = "https://gasguard.example/schemas/"
# message kinds with a schema of their own (topic level after the device id)
KINDS = ("telemetry", "event", "valve", "state", "identity", "command", "command_result",
         "identity_down")


@lru_cache(maxsize=None)
def _registry():
    reg = Registry()
    for p in sorted(SCHEMAS.glob("*.schema.json")):
        doc = json.loads(p.read_text())
        reg = reg.with_resource(doc.get("$id", BASE_URI + p.name), Resource.from_contents(doc))
    return reg


@lru_cache(maxsize=None)
def validator(kind):
    path = SCHEMAS / (kind + ".schema.json")
    if not path.exists():
        raise KeyError("no schema for kind %r" % kind)
    doc = json.loads(path.read_text())
    Draft202012Validator.check_schema(doc)
    return Draft202012Validator(doc, registry=_registry())


def check(kind, msg):
    try:
        v = validator(kind)
    except KeyError as e:
        return [str(e)]
    errs = sorted(v.iter_errors(msg), key=lambda e: list(e.absolute_path))
    return ["%s: %s" % ("/".join(str(x) for x in e.absolute_path) or "(root)", e.message)
            for e in errs]


def split_topic(topic, base="gasguard"):
    """(dev, kind) of <base>/<dev>/<kind>, or None if the topic is not ours."""
    prefix = base.rstrip("/") + "/"
    if not topic.startswith(prefix):
        return None
    rest = topic[len(prefix):]
    if "/" not in rest:
        return None
    dev, kind = rest.rsplit("/", 1)
    return dev, kind


def check_topic(topic, payload, base="gasguard"):
    """Decode and validate one MQTT message. Returns (kind, dev, message_or_None, errors)."""
    parts = split_topic(topic, base)
    if parts is None:
        return None, None, None, ["topic %r is not under %s/" % (topic, base)]
    dev, kind = parts
    if kind not in KINDS:
        return kind, dev, None, ["unknown message kind %r" % kind]
    if kind == "command" and not payload:
        return kind, dev, None, []  # the device clearing a retained command (protocol.md)
    try:
        msg = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        return kind, dev, None, ["not JSON: %s" % e]
    errs = check(kind, msg)
    if isinstance(msg, dict):
        mdev = msg.get("dev", msg.get("id"))
        if kind not in ("command", "identity_down") and mdev is not None and mdev != dev:
            errs.append("device %r in the message differs from the topic's %r" % (mdev, dev))
        if "dev" in msg and msg.get("kind") != kind:  # enveloped messages name their kind
            errs.append("kind %r in the message differs from the topic's %r" % (msg["kind"], kind))
    return kind, dev, msg, errs


def examples():
    """[(kind, path, message)] for docs/schemas/examples/<kind>.<variant>.json."""
    out = []
    for p in sorted(EXAMPLES.glob("*.json")):
        kind = p.name.split(".", 1)[0]
        out.append((kind, p, json.loads(p.read_text())))
    return out
