"""The contract integrators build on (issue 14 item 6): the AsyncAPI 3 document is
generated from the firmware's topic table and the schemas and is valid AsyncAPI 3.0; the
mosquitto ACL lets each device write only its own topics and the platform only the
downlinks (against a real mosquitto); monitor --strict; no doc links outside the repository."""

import json
import os
import re
import subprocess
import threading
import time

import pytest

from conftest import ROOT
from fixtures.dut import make_virtual_device  # noqa: F401
from gasguard_tools import asyncapi, schemas

SPECS = ROOT / "build" / "asyncapi-specs" / "package" / "schemas" / "3.0.0-without-$id.json"
REQUIRE = bool(os.environ.get("CI")) or os.environ.get("GASGUARD_REQUIRE_DOCS") == "1"


def test_asyncapi_document_is_generated_from_the_sources():
    assert asyncapi.main(["--check"]) == 0, "run: python -m gasguard_tools.asyncapi"
    doc = asyncapi.document()
    from gasguard import reporter

    # every topic kind is a channel, with the firmware's QoS and retain flag
    assert set(doc["channels"]) == set(reporter.KINDS) | {"identity_down"}
    for name, op in doc["operations"].items():
        kind = op["channel"]["$ref"].rsplit("/", 1)[1]
        qos, retain, action = asyncapi.delivery()[kind]
        assert op["bindings"]["mqtt"] == {"qos": qos, "retain": retain, "bindingVersion": "0.2.0"}
        assert op["action"] == action
    # the payloads are the published schemas (lenient), with their versioned $id
    msg = doc["components"]["messages"]["eventMessage"]["payload"]
    assert msg["schema"]["$id"] == schemas.BASE_URI + "event"


def test_the_device_subscribes_to_what_the_document_says():
    srcs = "".join(p.read_text() for p in (ROOT / "firmware" / "gasguard").glob("*.py"))
    subs = set(re.findall(r'subscribe\(self\.topic\((?:protocol\.)?"?([A-Za-z_]+)"?\), (\d)\)', srcs))
    named = {"COMMAND": "command"}
    got = {(named.get(k, k), int(q)) for k, q in subs}
    assert got == {(k, q) for k, (q, _r) in asyncapi.SUBSCRIPTIONS.items()}


@pytest.fixture(scope="module")
def asyncapi_meta():
    if not SPECS.exists():
        msg = "AsyncAPI 3.0 meta-schema missing (make asyncapi-spec: npm pack @asyncapi/specs)"
        if REQUIRE:
            pytest.fail(msg)
        pytest.skip(msg)
    return json.loads(SPECS.read_text())


def test_asyncapi_document_is_valid_asyncapi_3(asyncapi_meta):
    import jsonschema

    v = jsonschema.Draft7Validator(asyncapi_meta)
    doc = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert [e.message for e in v.iter_errors(doc)] == []
    # and the meta-schema is really looking: a QoS MQTT does not have is refused
    bad = json.loads(json.dumps(doc))
    next(iter(bad["operations"].values()))["bindings"]["mqtt"]["qos"] = 3
    assert list(v.iter_errors(bad))
    bad = json.loads(json.dumps(doc))
    bad["operations"]["publish_event"]["action"] = "publish"  # AsyncAPI 2 wording
    assert list(v.iter_errors(bad))


def test_monitor_strict_flags_undocumented_fields():
    import io

    from gasguard_tools.cmd_monitor import Printer

    m = json.loads((schemas.EXAMPLES / "event.alarm_on.json").read_text())
    m["x_new"] = 1
    topic = "gasguard/%s/event" % m["dev"]
    lenient, strict = Printer("gasguard", out=io.StringIO()), Printer("gasguard", out=io.StringIO(),
                                                                       strict=True)
    lenient.handle(topic, json.dumps(m).encode())
    strict.handle(topic, json.dumps(m).encode())
    assert lenient.invalid == 0 and strict.invalid == 1


def test_docs_link_nothing_outside_the_repository():
    """No doc sends a reader into ../shared (the team's notes, not part of the repository).
    Naming the interpreter's default location where a tool looks for it is not a link."""
    bad = []
    for p in list((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]:
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\]\((\.\./)+shared/|\.\./shared/reference", line):
                bad.append("%s:%d" % (p.relative_to(ROOT), n))
    assert bad == []


# ------------------------------------------------------------------ broker ACL
DEV_A = "88.118.8/GDH.240915.00123F"
DEV_B = "88.118.8/GDM.240915.00124D"


@pytest.fixture
def acl_broker(tmp_path):
    from fixtures.reporting import Mosquitto, mosquitto_bin

    try:
        mosquitto_bin()
    except Exception as e:  # noqa: BLE001 - the fixture module says why
        pytest.skip(str(e))
    pwfile = tmp_path / "passwd"
    pwfile.write_text("")
    for user in (DEV_A, DEV_B, "platform"):
        subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, "pw-" + user.replace("/", "-")],
                       check=True, capture_output=True)
    m = Mosquitto(tmp_path)
    with open(m.conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous false\npersistence false\nlog_dest none\n"
                "password_file %s\nacl_file %s\n" % (m.port, pwfile, ROOT / "docs" / "broker" / "gasguard.acl"))
        if os.geteuid() == 0:
            f.write("user root\n")
    m.start()
    yield m
    m.stop()


class Client:
    def __init__(self, port, user):
        import paho.mqtt.client as mqtt

        self.got = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="acl-" + user.replace("/", "-"))
        self.c.username_pw_set(user, "pw-" + user.replace("/", "-"))
        self.c.on_message = self._msg
        ok = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p=None: ok.set() if rc == 0 else None
        self.c.connect("127.0.0.1", port, 10)
        self.c.loop_start()
        assert ok.wait(10), "%s could not log in" % user

    def _msg(self, c, u, m):
        with self.lock:
            self.got.append(m.topic)

    def sub(self, topic):
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, 1)
        assert done.wait(10)

    def pub(self, topic):
        self.c.publish(topic, b"{}", 1).wait_for_publish(10)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def test_acl_each_device_writes_only_its_own_topics_and_the_platform_only_downlinks(acl_broker):
    port = acl_broker.port
    platform, a, b = Client(port, "platform"), Client(port, DEV_A), Client(port, DEV_B)
    try:
        platform.sub("gasguard/#")
        a.sub("gasguard/%s/command" % DEV_A)
        a.sub("gasguard/%s/identity_down" % DEV_A)
        a.sub("gasguard/%s/command" % DEV_B)  # another device's commands: never delivered
        a.sub("gasguard/%s/event" % DEV_B)  # nor its events
        for kind in ("telemetry", "event", "valve", "state", "identity", "command_result"):
            a.pub("gasguard/%s/%s" % (DEV_A, kind))  # allowed
        a.pub("gasguard/%s/event" % DEV_B)  # forging another device's alarm
        a.pub("gasguard/%s/command" % DEV_A)  # its own command topic (clearing a retained one)
        a.pub("gasguard/%s/command" % DEV_B)  # another device's commands: refused
        b.pub("gasguard/%s/event" % DEV_B)  # b's own event (a must not see it)
        platform.pub("gasguard/%s/command" % DEV_A)  # allowed
        platform.pub("gasguard/%s/identity_down" % DEV_A)  # allowed
        platform.pub("gasguard/%s/event" % DEV_A)  # the platform forging a device's event
        platform.pub("gasguard/%s/state" % DEV_B)
        time.sleep(1.0)
        with platform.lock:
            seen = list(platform.got)
        with a.lock:
            a_got = list(a.got)
        want = ["gasguard/%s/%s" % (DEV_A, k) for k in ("telemetry", "event", "valve", "state",
                                                         "identity", "command_result")]
        want += ["gasguard/%s/event" % DEV_B, "gasguard/%s/command" % DEV_A,
                 "gasguard/%s/command" % DEV_A, "gasguard/%s/identity_down" % DEV_A]
        assert sorted(seen) == sorted(want)
        assert sorted(a_got) == sorted(["gasguard/%s/command" % DEV_A,
                                        "gasguard/%s/command" % DEV_A,
                                        "gasguard/%s/identity_down" % DEV_A])
    finally:
        for c in (platform, a, b):
            c.close()


# ------------------------------------------------------------------ mip
def test_mip_installs_a_deploy_set_from_a_local_path(make_virtual_device, tmp_path):
    """package.json names its files relative to itself, so `mpremote mip install PATH` works
    from a checkout, and github:ORG/REPO/... from any repository (docs/mip.md)."""
    import argparse
    import sys

    from gasguard_tools.cmd_flash import enter_maintenance

    pkg = json.loads((ROOT / "firmware" / "package-valve-M.json").read_text())
    assert all(not u.startswith(("github:", "http")) and u == dest for dest, u in pkg["urls"])
    dev = make_virtual_device()
    from fixtures.dut import Dut, _wait_ready

    _wait_ready(Dut(dev.port, device=dev)).close()
    enter_maintenance(argparse.Namespace(port=dev.port, dry_run=False, factory_key=None), print)
    deadline = time.monotonic() + 10
    while dev.mode != "repl" and time.monotonic() < deadline:
        time.sleep(0.1)
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", dev.port, "resume", "mip",
                        "install", "--target", "lib", "firmware/package-valve-M.json"],
                       capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout + r.stderr
    for dest, _url in pkg["urls"]:
        on_board = dev.state / "lib" / dest
        assert on_board.read_bytes() == (ROOT / "firmware" / dest).read_bytes(), dest


def test_protocol_doc_lists_the_command_checks_in_the_codes_order():
    """docs/protocol.md tells integrators which reason a bad command gets; the order is the
    order the firmware raises them in (commands.py parses, checks and runs)."""
    code = []
    for name in ("commands.py",):
        src = (ROOT / "firmware" / "gasguard" / name).read_text()
        for reason in re.findall(r'CommandError\(\s*"([a-z_]+)"', src):
            if reason not in code:
                code.append(reason)
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    para = text[text.index("Checks run in this order"):]
    listed = para.find("\n1. ")  # the checks as a numbered list, or one paragraph
    para = para[:para.index("\n\n", listed if 0 <= listed < para.index("\n\n") + 3 else 0)]
    doc = []
    for w in re.findall(r"`([a-z_]+)`", para):
        if w in code and w not in doc:
            doc.append(w)
    assert doc == code
    # and commands.py's own docstring table says the same
    head = (ROOT / "firmware" / "gasguard" / "commands.py").read_text().split('"""')[1]
    table = [m for m in re.findall(r"^    ([a-z_]+) ", head, re.M) if m in code]
    assert table == code
