"""The published message schemas (docs/schemas/*.schema.json) as validators.

    check(kind, message_dict, strict=False) -> list of error strings (empty: valid)
    check_topic(topic, payload_bytes, base="gasguard", strict=False) -> (kind, dev, message, errors)

Every *.schema.json in docs/schemas is loaded into one `referencing` registry under its
$id (`urn:gasguard:schema:<major>:<name>`, versioned with the protocol's major version), so
kind schemas can $ref the envelope and the identity schemas.

Two modes. The published (lenient) schemas accept fields they do not name: the versioning
rules (docs/protocol.md) let a v1 device add fields, and a platform must ignore them.
strict=True is for our own tests and `monitor --strict`: every object marked
"x-strict-additionalProperties": false in the files becomes additionalProperties: false,
so a field our firmware sends that the schema does not document is caught.
"""

import json
from functools import lru_cache

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from . import SCHEMAS

EXAMPLES = SCHEMAS / "examples"
SCHEMA_MAJOR = 1
BASE_URI = "urn:gasguard:schema:%d:" % SCHEMA_MAJOR
STRICT_MARK = "x-strict-additionalProperties"
# message kinds with a schema of their own (topic level after the device id)
KINDS = ("telemetry", "event", "valve", "state", "identity", "command", "command_result",
         "identity_down")


def _strict(node):
    """A copy of a schema with every strict mark turned into additionalProperties."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == STRICT_MARK:
                out["additionalProperties"] = v
            else:
                out[k] = _strict(v)
        return out
    if isinstance(node, list):
        return [_strict(x) for x in node]
    return node


@lru_cache(maxsize=None)
def load(name, strict=False):
    doc = json.loads((SCHEMAS / (name + ".schema.json")).read_text())
    return _strict(doc) if strict else doc


def names():
    return [p.name[:-len(".schema.json")] for p in sorted(SCHEMAS.glob("*.schema.json"))]


@lru_cache(maxsize=None)
def _registry(strict=False):
    reg = Registry()
    for name in names():
        doc = load(name, strict)
        reg = reg.with_resource(doc.get("$id", BASE_URI + name), Resource.from_contents(doc))
    return reg


@lru_cache(maxsize=None)
def validator(kind, strict=False):
    path = SCHEMAS / (kind + ".schema.json")
    if not path.exists():
        raise KeyError("no schema for kind %r" % kind)
    doc = load(kind, strict)
    Draft202012Validator.check_schema(doc)
    return Draft202012Validator(doc, registry=_registry(strict))


def check(kind, msg, strict=False):
    try:
        v = validator(kind, strict)
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


def check_topic(topic, payload, base="gasguard", strict=False):
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
    errs = check(kind, msg, strict)
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
