"""The notify service in-process (no broker: messages fed to the ingestor as paho would),
with real channels against local HTTP receivers and a real SMTP server: message formats,
escalation, acknowledgement by signed link and by CLI, the alarm clearing, rate limits."""

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gasguard_tools.notify import config as cfgmod
from gasguard_tools.notify.channels import ChannelError, gateway
from gasguard_tools.notify.channels import make as make_channel
from gasguard_tools.notify.service import Service
from gasguard_tools.notify.store import open_store
from gasguard_tools.notify.texts import render
from fixtures.notify import (DEV, VALVE, Receiver, alarm, envelope, smtp, state,  # noqa: F401
                             topic, valve)
from fixtures.reporting import wait_for


@pytest.fixture
def receivers():
    rs = [Receiver() for _ in range(4)]
    yield rs
    for r in rs:
        r.stop()


def service(tmp_path, cfg, **kw):
    store = open_store(str(tmp_path / "n.db"))
    cfgmod.import_config(store, cfgmod.check(cfg))
    kw.setdefault("ack_listen", ("127.0.0.1", 0))
    kw.setdefault("log", lambda line: None)
    svc = Service(store, ("127.0.0.1", 1), workers=2, webhook_secret="s", poll_s=0.05, **kw)
    return svc.start(connect=False)


def feed(svc, msg):
    return svc.ingestor.handle(topic(msg), json.dumps(msg).encode())


def hook(r, **extra):
    ep = {"channel": "webhook", "url": r.url}
    ep.update(extra)
    return {"endpoints": [ep]}


def test_escalation_goes_tier_by_tier_until_the_signed_link_acknowledges(tmp_path, receivers):
    a, b, c, _ = receivers
    svc = service(tmp_path, {
        "escalate_after_s": 1, "repeat_s": 1, "emergency_phone": "96777",
        "recipients": {"a": hook(a), "b": hook(b), "c": hook(c, secret="c-secret")},
        "sites": [{"name": "flat", "devices": [DEV], "address": "幸福路 12 号 3-501",
                   "tiers": ["a", ["b", "c"]]}]})
    try:
        assert feed(svc, alarm(DEV, 1, 4)) == "queued"
        wait_for(lambda: a.ok(), 5, what="tier 0")
        assert not b.ok() and not c.ok()
        wait_for(lambda: b.ok() and c.ok(), 5, what="tier 1 after escalate_after_s")
        body = b.bodies()[0]
        assert body["kind"] == "alarm_on" and "第 1 次提醒" in body["text"]
        assert "幸福路 12 号 3-501" in body["text"] and "96777" in body["text"]
        # repeats to everyone until acknowledged
        wait_for(lambda: len(a.ok()) >= 2, 5, what="a reminder to tier 0")
        link = b.bodies()[0]["ack_url"]
        assert link and link.startswith("http://127.0.0.1:%d/ack?" % svc.ack_server.port)
        # GET (a link preview) does not acknowledge; a forged signature is refused
        page = urllib.request.urlopen(link, timeout=5).read().decode()
        assert "<form" in page and svc.incident_state(body["incident"]) == "open"
        forged = link[:-4] + "0000"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(forged, data=b"", method="POST"), timeout=5)
        assert e.value.code == 403
        urllib.request.urlopen(urllib.request.Request(link, data=b"", method="POST"), timeout=5)
        assert svc.incident_state(body["incident"]) == "acked"
        # everyone else hears who is on it; then nothing more
        wait_for(lambda: all(any(x["kind"] == "acked" for x in r.bodies()) for r in (a, c)), 5,
                 what="acked notice")
        acked = [x["text"] for x in a.bodies() if x["kind"] == "acked"]
        assert any("b 已确认" in t for t in acked), acked
        assert not any(x["kind"] == "acked" for x in b.bodies())
        counts = (len(a.ok()), len(b.ok()), len(c.ok()))
        time.sleep(2.5)
        assert (len(a.ok()), len(b.ok()), len(c.ok())) == counts
    finally:
        svc.stop()


def test_the_alarm_clearing_stops_escalation_and_tells_everyone_told(tmp_path, receivers):
    a, b, _, _ = receivers
    svc = service(tmp_path, {
        "escalate_after_s": 1, "repeat_s": 60,
        "recipients": {"a": hook(a), "b": hook(b)},
        "sites": [{"name": "flat", "devices": ["88.118.8/*"], "tiers": ["a", "b", "a"]}]})
    try:
        feed(svc, alarm(DEV, 1, 4, level=1))
        feed(svc, alarm(DEV, 1, 5, level=2))          # a higher level: a new first notice
        wait_for(lambda: len(a.ok()) == 2, 5, what="both levels to a")
        wait_for(lambda: b.ok(), 5, what="escalation to b")
        feed(svc, alarm(DEV, 1, 8, state="off", level=2))
        feed(svc, alarm(DEV, 1, 9, state="off", level=1))
        wait_for(lambda: any(x["kind"] == "alarm_off" for x in b.bodies()), 5, what="cleared")
        assert [x["kind"] for x in a.bodies()] == ["alarm_on", "alarm_on", "alarm_off"]
        n = len(a.ok()) + len(b.ok())
        time.sleep(2.0)
        assert len(a.ok()) + len(b.ok()) == n     # the third tier never came
    finally:
        svc.stop()


def test_cli_ack_by_device(tmp_path, receivers, capsys):
    a, b, _, _ = receivers
    svc = service(tmp_path, {
        "escalate_after_s": 2, "recipients": {"a": hook(a), "b": hook(b)},
        "sites": [{"name": "flat", "devices": [DEV], "tiers": ["a", "b"]}]}, ack_listen=None)
    try:
        feed(svc, alarm(DEV, 1, 4))
        wait_for(lambda: a.ok(), 5, what="tier 0")
        assert "gasguard notify ack " in a.bodies()[0]["text"]
        from gasguard_tools.cli import main

        assert main(["notify", "ack", "--db", str(tmp_path / "n.db"), "--device", DEV,
                     "--by", "zhang"]) == 0
        assert "acknowledged by zhang" in capsys.readouterr().out
        time.sleep(3.0)
        assert not b.ok()                              # no escalation after the ack
        assert main(["notify", "ack", "nope", "--db", str(tmp_path / "n.db")]) == 1
    finally:
        svc.stop()


def test_rate_limit_holds_followups_never_the_first_alarm_notice(tmp_path, receivers):
    a, _, _, _ = receivers
    svc = service(tmp_path, {
        "rate_limit": {"max": 2, "per_s": 3},
        "recipients": {"a": hook(a)},
        "sites": [{"name": "flat", "devices": ["*"], "tiers": ["a"]}]})
    try:
        for i in range(4):                            # a flapping device: offline notices
            feed(svc, state(VALVE, 1, 10 + i, online=False, reason="connection_lost"))
        wait_for(lambda: len(a.ok()) == 2, 5, what="two within the limit")
        feed(svc, alarm(DEV, 1, 4))                   # an alarm now: at once despite the limit
        wait_for(lambda: len(a.ok()) == 3, 3, what="the alarm")
        assert a.bodies()[-1]["kind"] == "alarm_on"
        time.sleep(1.0)
        assert len(a.ok()) == 3                        # the rest waits for the window
        wait_for(lambda: len(a.ok()) == 5, 10, what="held notices after the window")
    finally:
        svc.stop()


def test_wecom_and_dingtalk_robots_in_their_published_formats(tmp_path, receivers):
    w, d, _, _ = receivers
    svc = service(tmp_path, {
        "recipients": {"group": {"endpoints": [
            {"channel": "wecom", "url": w.url + "?key=KEY", "mentioned_mobile_list": ["13800001111"]},
            {"channel": "dingtalk", "url": d.url + "?access_token=TOK", "secret": "SECabc",
             "at_mobiles": ["13900002222"]}]}},
        "sites": [{"name": "s", "devices": ["*"], "tiers": ["group"]}]})
    try:
        feed(svc, valve(VALVE, 1, 3))
        wait_for(lambda: w.ok() and d.ok(), 5, what="both robots")
        wb = w.bodies()[0]
        assert wb["msgtype"] == "text" and "切断阀已关闭" in wb["text"]["content"]
        assert wb["text"]["mentioned_mobile_list"] == ["13800001111"]
        assert w.ok()[0]["path"] == "/hook?key=KEY"
        req = d.ok()[0]
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(req["path"]).query)
        assert q["access_token"] == ["TOK"]
        ts = q["timestamp"][0]
        assert abs(int(ts) / 1000 - time.time()) < 60
        want = base64.b64encode(hmac.new(b"SECabc", ("%s\nSECabc" % ts).encode(),
                                         hashlib.sha256).digest()).decode()
        assert q["sign"] == [want]                     # parse_qs undid the URL encoding
        db = json.loads(req["body"])
        assert db["msgtype"] == "text" and db["at"] == {"atMobiles": ["13900002222"],
                                                        "isAtAll": False}
    finally:
        svc.stop()


def test_robot_errcode_is_a_failure():
    r = Receiver(answer=b'{"errcode":45009,"errmsg":"api freq out of limit"}')
    try:
        ch = make_channel("wecom", {})
        with pytest.raises(ChannelError, match="45009"):
            ch.send({"channel": "wecom", "url": r.url + "?key=K"},
                    {"text": "x", "id": "d1"})
    finally:
        r.stop()


def test_email_over_real_smtp_and_sms_voice_gateway_templates(tmp_path, smtp, receivers):
    sms, voice, _, _ = receivers
    svc = service(tmp_path, {
        "lang": "en",
        "channels": {
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "from": "alarm@gasguard.test"},
            "sms": {"url": sms.url + "?to={to}", "format": "json",
                    "headers": {"Authorization": "Bearer T"},
                    "body": {"phone": "{to}", "msg": "{text}", "ref": "{id}"}, "ok_status": [200]},
            "voice": {"url": voice.url, "format": "form", "body": {"callee": "{to}",
                                                                   "tts": "{text}"}}},
        "recipients": {"li": {"lang": "en", "endpoints": [
            {"channel": "email", "to": "li@example.test"},
            {"channel": "sms", "to": "+86 138 0000 1111"},
            {"channel": "voice", "to": "+8613800001111", "kinds": ["alarm_on"]}]}},
        "sites": [{"name": "s", "devices": ["*"], "address": "12 Happy Road",
                   "emergency_phone": "96777", "tiers": ["li"]}]})
    try:
        feed(svc, alarm(DEV, 1, 4, gas="co"))
        feed(svc, valve(VALVE, 1, 5))
        wait_for(lambda: len(smtp.messages) == 2 and len(sms.ok()) == 2 and voice.ok(), 10,
                 what="mail, SMS and the call")
        to, m = smtp.messages[0]
        assert to == ["li@example.test"] and "GAS ALARM" in m["Subject"]
        assert "carbon monoxide" in m.get_content() and "12 Happy Road" in m.get_content()
        s = next(r for r in sms.ok() if b"GAS ALARM" in r["body"])
        assert s["path"] == "/hook?to=%2B86%20138%200000%201111"
        assert s["headers"]["Authorization"] == "Bearer T"
        sb = json.loads(s["body"])
        assert sb["phone"] == "+86 138 0000 1111" and "carbon monoxide" in sb["msg"]
        assert "Acknowledge" not in sb["msg"]          # the short text has no link
        v = urllib.parse.parse_qs(voice.ok()[0]["body"].decode())
        assert v["callee"] == ["+8613800001111"] and "GAS ALARM" in v["tts"][0]
        assert len(voice.ok()) == 1                    # the valve notice is not a call
    finally:
        svc.stop()


def test_smtp_down_mid_run_retried_with_backoff_then_delivered_once_each(tmp_path, smtp):
    """The mail server stops while the service runs: the mails wait (growing gaps, the
    error in `status`), nothing is dropped; once it is back each is delivered, once."""
    import re

    lines = []
    svc = service(tmp_path, {
        "channels": {"smtp": {"host": "127.0.0.1", "port": smtp.port, "from": "a@gasguard.test",
                              "timeout_s": 2}},
        "recipients": {"li": {"endpoints": [{"channel": "email", "to": "li@example.test"}]}},
        "sites": [{"name": "s", "devices": ["*"], "tiers": ["li"]}]},
        log=lambda line: lines.append((time.time(), line)))
    other = "88.118.8/GDH.240915.00999Z"
    try:
        feed(svc, alarm(DEV, 1, 4))
        wait_for(lambda: len(smtp.messages) == 1, 10, what="the first mail")
        smtp.stop()                                     # the mail server goes away
        feed(svc, alarm(other, 1, 4))
        feed(svc, valve(VALVE, 1, 5))
        retry = re.compile(r"retry d(\d+) .* in ([0-9.]+) s \(attempt (\d+)\): SMTP")

        def tries():
            return [retry.search(ln).groups() for _, ln in lines if retry.search(ln)]

        # the alarm goes first (priority): two of its attempts have failed
        wait_for(lambda: sum(1 for t in tries() if t[0] == tries()[0][0]) >= 2, 20,
                 what="two failed retries of the alarm")
        delays = [float(d) for i, d, n in tries() if i == tries()[0][0]]
        assert delays[1] > delays[0] * 1.2, tries()     # backoff grows
        st = svc.store
        with st.tx() as t:
            pending = t.all("SELECT id, last_error FROM deliveries WHERE status='pending'")
        assert len(pending) == 2 and all("SMTP" in e for _, e in pending)
        smtp = smtp.restart()                           # back on the same port
        wait_for(lambda: len(smtp.messages) == 3, 40, what="both mails after the server is back")
        time.sleep(1.5)
        assert len(smtp.messages) == 3                  # nothing twice
        ids = [m["X-Gasguard-Delivery"] for _, m in smtp.messages]
        assert len(set(ids)) == 3
        subjects = [m["Subject"] for _, m in smtp.messages]
        assert sum("报警" in x for x in subjects) == 2, subjects   # both alarms, one valve
        with st.tx() as t:
            assert dict(t.all("SELECT status, COUNT(*) FROM deliveries GROUP BY status")) == {
                "sent": 3}
    finally:
        svc.stop()
        smtp.stop()


def test_gateway_template_escapes_values():
    url, method, headers, body = gateway.build(
        {"url": "http://x/?m={text}", "body": {"m": "{text}"}},
        {"to": "1"}, {"text": 'a"b&c', "subject": "s", "device": "d", "kind": "k", "id": "1",
                      "lang": "en"})
    assert url == "http://x/?m=a%22b%26c" and json.loads(body) == {"m": 'a"b&c'}


def test_texts_say_where_what_and_what_to_do_in_both_languages():
    ctx = {"kind": "alarm_on", "dev": DEV, "site": "s", "address": "幸福路 12 号",
           "emergency_phone": "96777", "gas": "ch4", "level": 2,
           "reading": {"ch4_ppm_x10": 123450, "age_s": 5},
           "status": {"relay": "on", "interlock": "close"}}
    zh = render(ctx, "zh", "http://ack")
    assert "甲烷" in zh["text"] and "高限报警" in zh["text"] and "12345 ppm" in zh["text"]
    assert "24.7 %LEL" in zh["text"] and "继电器" in zh["text"] and "切断阀" in zh["text"]
    assert "明火" in zh["text"] and "96777" in zh["text"] and "http://ack" in zh["text"]
    en = render(ctx, "en", None)
    assert "HIGH alarm" in en["text"] and "no flames" in en["text"] and "relay" in en["text"]
    assert "http://ack" not in en["short"]
    # a reading the device took before the alarm is said to be older, not passed off as now
    ctx["reading"] = {"ch4_ppm_x10": 0, "age_s": 1, "before_event_s": 49}
    zh = render(ctx, "zh", None)["text"]
    assert "报警前 49 秒" in zh and "实际浓度已达报警值" in zh
    assert "read 49 s before the alarm" in render(ctx, "en", None)["text"]
    assert "未登记" in render({"kind": "offline", "dev": DEV, "site": "*"}, "zh")["text"]
    for kind in cfgmod.KINDS:
        for lang in ("zh", "en"):
            assert render({"kind": kind, "dev": DEV}, lang)["text"]


@pytest.mark.parametrize("cfg, msg", [
    ({"recipients": {"a": {"endpoints": [{"channel": "fax"}]}}}, "channel must be one of"),
    ({"recipients": {"a": {"endpoints": [{"channel": "email", "to": "x@y"}]}}}, "channels.smtp"),
    ({"recipients": {"a": {"endpoints": [{"channel": "webhook", "url": "ftp://x"}]}}}, "http"),
    ({"sites": [{"name": "s", "devices": ["*"], "tiers": ["nobody"]}]}, "unknown recipient"),
    ({"escalate_after_s": 0}, "escalate_after_s"),
    ({"colour": "red"}, "unknown key"),
])
def test_bad_config_is_refused_with_a_clear_error_and_nothing_stored(tmp_path, cfg, msg):
    store = open_store(str(tmp_path / "n.db"))
    with pytest.raises(cfgmod.ConfigError, match=msg):
        cfgmod.import_config(store, cfgmod.check(cfg))
    assert cfgmod.Directory.load(store).recipients == {}


def test_invalid_and_foreign_messages_change_nothing(tmp_path, receivers):
    a = receivers[0]
    svc = service(tmp_path, {"recipients": {"a": hook(a)},
                             "sites": [{"name": "s", "devices": ["*"], "tiers": ["a"]}]})
    try:
        bad = alarm("someone/else", 1, 4)
        assert svc.ingestor.handle(topic(alarm(DEV, 1, 4)), json.dumps(bad).encode()) == "invalid"
        assert svc.ingestor.handle("gasguard/%s/event" % DEV, b"not json") == "invalid"
        nobool = alarm(DEV, 0, 4)
        assert feed(svc, nobool) == "invalid"
        # an additive field the schema does not know yet: still acted on (and logged)
        extra = alarm(DEV, 1, 5)
        extra["new_field"] = 1
        assert feed(svc, extra) == "queued"
        tele = envelope(DEV, 1, 6, "telemetry", data={"ch4_ppm_x10": 5000}, dropped=0)
        assert feed(svc, tele) == "reading"
        wait_for(lambda: a.ok(), 5, what="the alarm")
        time.sleep(0.5)
        assert len(a.ok()) == 1
    finally:
        svc.stop()


class _Msg:
    def __init__(self, msg):
        self.topic = topic(msg)
        self.payload = json.dumps(msg).encode()
        self.qos = 1
        self.mid = 7


class _Client:
    def __init__(self):
        self.acks = []

    def ack(self, mid, qos):
        self.acks.append(mid)


def test_database_errors_hold_the_puback_and_retry_a_bug_never_blocks_the_rest(
        tmp_path, receivers, monkeypatch):
    import sqlite3

    a = receivers[0]
    svc = service(tmp_path, {"recipients": {"a": hook(a)},
                             "sites": [{"name": "s", "devices": ["*"], "tiers": ["a"]}]})
    try:
        real = svc.ingestor.handle
        calls = []

        def flaky(t, p):
            calls.append(t)
            if len(calls) <= 2:
                raise sqlite3.OperationalError("database is locked")
            return real(t, p)

        monkeypatch.setattr(svc.ingestor, "handle", flaky)
        client = _Client()
        svc._on_message(client, None, _Msg(alarm(DEV, 1, 4)))
        assert len(calls) == 3 and client.acks == [7]      # acked only once it was recorded
        assert svc.stats["store_errors"] == 2
        wait_for(lambda: a.ok(), 5, what="the alarm after the retries")

        def bug(t, p):
            raise KeyError("surprise")

        monkeypatch.setattr(svc.ingestor, "handle", bug)
        client = _Client()
        svc._on_message(client, None, _Msg(alarm(DEV, 1, 5)))
        assert client.acks == [7] and svc.stats["ingest_errors"] == 1
    finally:
        svc.stop()


def test_cli_refuses_a_bad_config_with_exit_2_and_stores_nothing(tmp_path, capsys):
    from gasguard_tools.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sites": [{"name": "s", "devices": ["*"], "tiers": ["ghost"]}]}))
    db = str(tmp_path / "n.db")
    assert main(["notify", "import", str(bad), "--db", db]) == 2
    assert "unknown recipient 'ghost'" in capsys.readouterr().err
    assert cfgmod.Directory.load(open_store(db)).sites == []
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"recipients": {"a": {"endpoints": [{"channel": "console"}]}},
                                "sites": [{"name": "s", "devices": ["*"], "tiers": ["a"]}]}))
    assert main(["notify", "import", str(good), "--db", db]) == 0
    assert [s["name"] for s in cfgmod.Directory.load(open_store(db)).sites] == ["s"]
    assert main(["notify", "status", "--db", db]) == 0


def test_an_alarm_coming_on_again_after_the_ack_reopens_the_incident(tmp_path, receivers):
    from gasguard_tools.notify import incidents

    a = receivers[0]
    svc = service(tmp_path, {"escalate_after_s": 60, "recipients": {"a": hook(a)},
                             "sites": [{"name": "s", "devices": ["*"], "tiers": ["a"]}]})
    try:
        feed(svc, alarm(DEV, 1, 4, level=1))
        feed(svc, alarm(DEV, 1, 5, level=2))
        wait_for(lambda: len(a.ok()) == 2, 5, what="both levels")
        iid = a.bodies()[0]["incident"]
        assert incidents.acknowledge(svc.store, svc.directory, iid, "a", time.time())[0] == "acked"
        feed(svc, alarm(DEV, 1, 6, state="off", level=2))   # back to the low level: quiet
        feed(svc, alarm(DEV, 1, 7, level=1))                # level 1 still on: nothing new
        time.sleep(0.5)
        assert len(a.ok()) == 2
        feed(svc, alarm(DEV, 1, 8, level=2))                # high again after the ack: news
        wait_for(lambda: len(a.ok()) == 3, 5, what="the re-rise")
        assert svc.incident_state(iid) == "open" and a.bodies()[-1]["kind"] == "alarm_on"
        incidents.acknowledge(svc.store, svc.directory, iid, "a", time.time())
        feed(svc, alarm(DEV, 2, 3, level=1))                # rebooted and alarming anew
        wait_for(lambda: len(a.ok()) == 4, 5, what="the alarm after a reboot")
        assert svc.incident_state(iid) == "open"
    finally:
        svc.stop()


def test_a_database_from_before_a_column_was_added_gets_it(tmp_path):
    import sqlite3

    path = str(tmp_path / "old.db")
    open_store(path).close()
    c = sqlite3.connect(path)
    c.execute("ALTER TABLE devices DROP COLUMN reading_boot")
    c.execute("ALTER TABLE deliveries DROP COLUMN sent_by")
    c.commit()
    c.close()
    store = open_store(path)
    with store.tx() as t:
        assert "reading_boot" in store._columns(t, "devices")
        assert "sent_by" in store._columns(t, "deliveries")


def test_safety_events_the_device_had_to_drop_are_told_at_once(tmp_path, receivers):
    a = receivers[0]
    svc = service(tmp_path, {"rate_limit": {"max": 1, "per_s": 60}, "recipients": {"a": hook(a)},
                             "sites": [{"name": "s", "devices": ["*"], "tiers": ["a"]}]})
    try:
        feed(svc, state(DEV, 1, 1))                                  # 0 lost: nothing
        feed(svc, state(DEV, 1, 2, lost_safety=2))                   # 2 lost while offline
        wait_for(lambda: a.ok(), 5, what="the loss")
        feed(svc, state(DEV, 1, 3, lost_safety=2))                   # the same 2: nothing new
        feed(svc, state(DEV, 1, 4, online=False, reason="connection_lost", lost_safety=3))
        # one more lost (told at once despite the rate limit) and the device offline (held)
        wait_for(lambda: len(a.ok()) == 2, 5, what="the next loss")
        bodies = a.bodies()
        assert [b["kind"] for b in bodies] == ["events_lost", "events_lost"]
        assert "2 条安全事件" in bodies[0]["text"] and "1 条安全事件" in bodies[1]["text"]
        feed(svc, state(DEV, 2, 1, lost_safety=1))                   # a reboot restarted the count
        wait_for(lambda: len([b for b in a.bodies() if b["kind"] == "events_lost"]) == 3, 5,
                 what="the loss after the reboot")
    finally:
        svc.stop()


def test_events_a_full_heap_kept_the_device_from_recording_are_told_at_once(tmp_path, receivers):
    """counters.events_lost (docs/protocol.md: the alarm and the valve went on, the record
    of it was lost): a platform must treat a rise like one of lost_safety."""
    a = receivers[0]
    svc = service(tmp_path, {"rate_limit": {"max": 1, "per_s": 60}, "recipients": {"a": hook(a)},
                             "sites": [{"name": "s", "devices": ["*"], "tiers": ["a"]}]})
    try:
        feed(svc, state(DEV, 1, 1, events_lost=0))                  # nothing lost
        feed(svc, state(DEV, 1, 2, events_lost=3))                  # 3 events never built
        wait_for(lambda: a.ok(), 5, what="the unrecorded events")
        feed(svc, state(DEV, 1, 3, events_lost=3))                  # the same 3: nothing new
        feed(svc, state(DEV, 1, 4, events_lost=4, lost_safety=2))   # one more, and 2 dropped
        wait_for(lambda: len(a.ok()) == 2, 5, what="the next loss")
        bodies = a.bodies()
        assert [b["kind"] for b in bodies] == ["events_lost", "events_lost"]
        assert "3 条事件因内存已满而未能记录" in bodies[0]["text"]
        assert "条安全事件" not in bodies[0]["text"]  # none dropped from the store: not said
        assert "1 条事件因内存已满" in bodies[1]["text"] and "2 条安全事件" in bodies[1]["text"]
        feed(svc, state(DEV, 2, 1, events_lost=1, lost_safety=2))   # rebooted: counts restart
        wait_for(lambda: len(a.ok()) == 3, 5, what="the loss after the reboot")
        assert "1 条事件因内存已满" in a.bodies()[-1]["text"]
    finally:
        svc.stop()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 20), min_size=1, max_size=8), min_size=1, max_size=6))
def test_every_unrecorded_event_is_told_once(boots):
    """Property: the device counts events_lost since boot (state messages carry a growing
    count; a reboot starts again at 0). Over any run of boots, each seen restarting below
    its predecessor's last count (what the platform can tell a restart by), the losses
    told add up to exactly what the device lost: nothing twice, nothing missed."""
    from gasguard_tools.notify.events import unbuilt_lost

    device, told, lost, last = {}, 0, 0, None
    for steps in boots:
        count = 0
        first = True
        for more in steps:
            count += more
            if first and last is not None and count >= last:
                count = last - 1 if last > 0 else 0  # a restart shows as a lower count
                if last == 0:
                    continue  # 0 after 0: the same message again, nothing to tell
            first = False
            new, value = unbuilt_lost(state(DEV, 1, 1, events_lost=count), device)
            assert new >= 0
            told += new
            device["events_lost"] = value
            last = count
        lost += count if not first else 0
    assert told == lost


def test_a_loss_kept_across_a_reboot_is_told_once():
    """The device rebooted during an outage: counters.lost_safety restarts at 0, the persisted
    losses (issue 15 finding 4) still say 74 until the platform acknowledges them."""
    from gasguard_tools.notify.events import safety_lost

    before = state(DEV, 1, 9, lost_safety=74)
    before["losses"] = {"lost_safety": 74, "dropped_events": 0}
    after = state(DEV, 2, 1, lost_safety=0)
    after["losses"] = {"lost_safety": 74, "dropped_events": 0}
    more = state(DEV, 2, 2, lost_safety=5)
    more["losses"] = {"lost_safety": 79, "dropped_events": 0}
    acked_then_reboot = state(DEV, 3, 1, lost_safety=5)  # acknowledged: no losses field
    assert safety_lost(before, {}) == (74, 74)
    assert safety_lost(after, {"lost_safety": 74}) == (0, 74)   # the reboot hid nothing, told nothing twice
    assert safety_lost(more, {"lost_safety": 74}) == (5, 79)
    assert safety_lost(acked_then_reboot, {"lost_safety": 79}) == (5, 5)
    assert safety_lost(state(DEV, 3, 2), {"lost_safety": 5}) == (0, 0)


def test_the_configuration_example_in_the_docs_is_accepted():
    from conftest import ROOT

    text = (ROOT / "docs" / "notify.md").read_text()
    block = text.split("## Configuration", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    cfg = cfgmod.check(json.loads(block))
    assert cfg["sites"][0]["tiers"] == [["zhang"], ["li", "estate"]]
    assert {e["channel"] for r in cfg["recipients"].values() for e in r["endpoints"]} == {
        "sms", "voice", "webhook", "email", "wecom", "dingtalk"}


def test_member_sessions_are_taken_over_from_a_silent_instance_and_handed_back(tmp_path):
    """--share bookkeeping (members.py): a silent holder's slot goes to a survivor, a
    starting instance takes an adopted slot first, and nobody holds a slot twice."""
    from gasguard_tools.notify.members import Members, listing

    store = open_store(str(tmp_path / "m.db"))
    a, b, c = (Members(store, "g", name, takeover_s=5) for name in "abc")
    assert (a.claim(now=100), b.claim(now=100)) == (0, 1)
    assert b.adopt_silent(now=103) == []                 # a is within its lease
    assert b.renew(now=104) == {1: "own"}
    assert b.adopt_silent(now=106) == [(0, "a")]         # a went silent: b takes slot 0
    assert b.renew(now=106) == {0: "adopt", 1: "own"}
    assert not a.holds(0) and b.holds(0)
    assert a.renew(now=106) == {}                        # a, back from a stall, holds nothing
    assert c.claim(now=107) == 0                         # a starting instance takes it back
    assert b.renew(now=107) == {1: "own"}
    assert c.adopt_silent(now=108) == []
    b.release()                                          # b stops normally: at once for c
    assert c.adopt_silent(now=108) == [(1, "b")]
    assert a.claim(now=108) == 1                         # restarted a: the adopted one, not new
    assert sorted((m["slot"], m["owner"], m["kind"]) for m in listing(store)) == [
        (0, "c", "own"), (1, "a", "own")]
    store.close()


def test_cli_ack_reads_in_any_order_and_refuses_stray_words(tmp_path, receivers, capsys):
    """`ack ID --by NAME`, `ack --by NAME ID` and options before the action all mean the
    same; words an action does not take are refused (exit 2), not ignored."""
    from gasguard_tools.cli import main

    a, _, _, _ = receivers
    svc = service(tmp_path, {"recipients": {"a": hook(a)},
                             "sites": [{"name": "flat", "devices": ["*"], "tiers": ["a"]}]},
                  ack_listen=None)
    db = str(tmp_path / "n.db")
    try:
        feed(svc, alarm(DEV, 1, 4))
        feed(svc, alarm(VALVE, 1, 4, gas="co"))
        wait_for(lambda: len(a.ok()) == 2, 5, what="two alarms")
        ids = [b["incident"] for b in sorted(a.bodies(), key=lambda b: b["device"])]
        capsys.readouterr()
        assert main(["notify", "ack", "--by", "zhang", "--db", db, ids[0]]) == 0
        assert "%s: acknowledged by zhang" % ids[0] in capsys.readouterr().out
        assert main(["notify", "--db", db, "ack", ids[0], ids[1], "--by", "li"]) == 0
        out = capsys.readouterr().out
        assert "%s: already acknowledged by zhang" % ids[0] in out
        assert "%s: acknowledged by li" % ids[1] in out
        for argv in (["notify", "status", "extra", "--db", db],
                     ["notify", "ack", ids[0], "--device", DEV, "--db", db],
                     ["notify", "import", "a.json", "b.json", "--db", db]):
            assert main(argv) == 2, argv
            assert "error" in capsys.readouterr().err
    finally:
        svc.stop()


def test_the_delivery_log_is_pruned_after_its_retention_what_matters_stays(tmp_path, receivers):
    """--keep-log (default 90 days): finished deliveries and cleared alarms older than that
    go; the queue (pending), alarms not cleared, and recent rows stay."""
    from gasguard_tools.notify.queue import KEEP_LOG_DAYS

    a, down, _, _ = receivers
    down.mode = "fail"
    svc = service(tmp_path, {"recipients": {"a": hook(a), "down": hook(down)},
                             "sites": [{"name": "v", "devices": [VALVE], "tiers": ["down"]},
                                       {"name": "all", "devices": ["*"], "tiers": ["a"]}]},
                  ack_listen=None)
    other = "88.118.8/GDH.240915.00999Z"
    try:
        assert svc.keep_log_s == KEEP_LOG_DAYS * 86400 == 90 * 86400
        feed(svc, alarm(DEV, 1, 4))                    # cleared below: its log can go
        feed(svc, alarm(DEV, 1, 5, state="off"))
        feed(svc, alarm(other, 1, 4))                  # not cleared: stays, however old
        feed(svc, valve(VALVE, 1, 6))                  # its channel is down: stays pending
        wait_for(lambda: len(a.ok()) == 3 and down.requests, 10, what="deliveries")
        old = time.time() - (KEEP_LOG_DAYS + 1) * 86400
        with svc.store.tx() as t:
            t.q("UPDATE deliveries SET created=?, sent=CASE WHEN sent IS NULL THEN NULL ELSE ? "
                "END", (old, old))
            t.q("UPDATE incidents SET opened=?, closed=CASE WHEN closed IS NULL THEN NULL "
                "ELSE ? END", (old, old))
        svc.alert("an old alert", now=old)
        svc.alert("a recent alert")
        feed(svc, alarm(DEV, 2, 1))                    # a new, recent alarm: stays
        wait_for(lambda: len(a.ok()) == 4, 10, what="the recent alarm")
        ev, dl, inc = svc.prune(time.time())
        assert (dl, inc) == (2, 1)                     # the cleared alarm's on and off
        with svc.store.tx() as t:
            left = sorted(tuple(r) for r in t.all("SELECT dev, kind, status FROM deliveries"))
            incs = sorted(tuple(r) for r in t.all("SELECT dev, state FROM incidents"))
        assert left == sorted([(other, "alarm_on", "sent"), (VALVE, "valve_closed", "pending"),
                               (DEV, "alarm_on", "sent")])
        assert incs == sorted([(other, "open"), (DEV, "open")])
        with svc.store.tx() as t:
            assert [r[0] for r in t.all("SELECT v FROM meta WHERE k LIKE ?", ("alert:%",))] == [
                "a recent alert"]
        assert svc.prune(time.time())[1:] == (0, 0)    # nothing more to go
    finally:
        svc.stop()
