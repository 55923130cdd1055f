"""The published identity message schemas: examples are genuine (MACs verify with the
documented example key) and every message the device and platform helpers emit validates."""

import json

import jsonschema
import pytest

from conftest import ROOT
from gasguard.active_id import ActiveId, direction_keys, open_msg
from gasguard.id_platform import platform_ack, platform_cmd, platform_open
from gasguard.canon import canon
from gasguard.identity import IdentityStore
from gasguard.store import FileStore
from simboard import SimClock

SCHEMAS = ROOT / "docs" / "schemas"
KINDS = ["reg", "reg_ack", "hb", "cmd", "rsp"]
EXAMPLE_KEY = bytes(range(32))  # docs/identity.md, "Worked example"


def schema(kind):
    """The strict form (our own tests): unknown fields are errors here; the published
    schemas accept them (gasguard_tools.schemas, docs/protocol.md versioning)."""
    from gasguard_tools import schemas

    s = schemas.load("identity_" + kind, strict=True)
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


@pytest.mark.parametrize("kind", KINDS)
def test_examples_validate_and_their_macs_verify(kind):
    ex = json.loads((SCHEMAS / ("identity_%s.example.json" % kind)).read_text())
    v = schema(kind)
    v.validate(ex)
    assert v.schema["examples"] == [ex]
    up, down = direction_keys(EXAMPLE_KEY)
    k = down if kind in ("reg_ack", "cmd") else up
    body = open_msg(k, canon(ex))
    assert body["t"] == kind


def test_schemas_reject_a_missing_mac_and_unknown_fields():
    ex = json.loads((SCHEMAS / "identity_hb.example.json").read_text())
    v = schema("hb")
    bad = dict(ex)
    del bad["mac"]
    assert not v.is_valid(bad)
    assert not v.is_valid(dict(ex, extra=1))
    assert not v.is_valid(dict(ex, id="88.118.8/gdh.240915.00123F"))


def test_everything_the_device_sends_validates(tmp_path):
    key = bytes(range(1, 33))
    ids = IdentityStore(FileStore(str(tmp_path)))
    ident = "88.118.8/GVM.240915.00077G"
    ids.provision({"id": ident, "serial": "GVM24091500077", "model": "GV-50", "tier": "M",
                   "kind": "valve", "hw_rev": "2.0", "mfg_date": "2024-09-15",
                   "qr_template": "https://id.example.com/id/{id}"}, key)
    ids.lock()
    clock = SimClock()
    sent = []
    a = ActiveId(clock, ids, {"heartbeat_s": 60}, lambda k, p: sent.append((k, p)) or True, "0.1.0",
                 status_fn=lambda: {"valve": "open", "fault": 0})
    a.poll()
    ack = platform_ack(key, sent[-1][1], 1726400002)
    schema("reg_ack").validate(json.loads(ack))
    a.on_message(ack)
    clock.advance(61000)
    a.poll()
    cmds = [platform_cmd(key, ident, 1, "get_id"),
            platform_cmd(key, ident, 2, "set_attr", {"installer": "ACME Gas Service"}),
            platform_cmd(key, ident, 3, "set_attr", {"serial": "X"}),
            platform_cmd(key, ident, 4, "set_hb", {"seconds": 120})]
    for c in cmds:
        schema("cmd").validate(json.loads(c))
        a.on_message(c)
    kinds = [k for k, _ in sent]
    assert kinds == ["reg", "hb", "rsp", "rsp", "rsp", "rsp"]
    for k, p in sent:
        schema(k).validate(json.loads(p))
        assert platform_open(key, p)["t"] == k
