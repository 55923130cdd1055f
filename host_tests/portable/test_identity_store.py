"""Identity record: provision once, read back, lock, factory reset with presence (both interpreters)."""

from ptest import raises, tmpdir

from gasguard import record
from gasguard.canon import canon
from gasguard.id_admin import check_qr_template, qr_payload
from gasguard.identity import IdentityError, IdentityStore, key_fingerprint
from gasguard.store import FileStore

ID_H = "88.118.8/GDH.240915.00123F"
KEY = bytes(range(1, 33))


def fields(**kw):
    f = {"id": ID_H, "serial": "GDH24091500123", "model": "GG-200", "tier": "H",
         "kind": "detector", "hw_rev": "1.2", "mfg_date": "2024-09-15",
         "qr_template": "https://id.example.com/id/{id}"}
    f.update(kw)
    return f


def fresh(tag):
    st = FileStore(tmpdir("ids-" + tag))
    return st, IdentityStore(st)


def test_provision_read_back_lock():
    st, ids = fresh("a")
    assert ids.status() == "blank" and ids.load() is None and not ids.locked
    rec = ids.provision(fields(), KEY)
    assert rec == fields()
    assert ids.status() == "provisioned"
    # rewrite before lock is allowed (factory fixes a typo)
    ids.provision(fields(model="GG-210"), KEY)
    ids.lock(ID_H)
    assert ids.locked and ids.status() == "locked"
    # a fresh object over the same flash sees the same
    again = IdentityStore(st)
    assert again.load() == fields(model="GG-210")
    assert again.locked
    assert again.device_key() == KEY
    assert again.key_id() == key_fingerprint(KEY)
    ids.lock(ID_H)  # idempotent


def test_second_write_refused_once_locked_and_nothing_changes():
    st, ids = fresh("b")
    ids.provision(fields(), KEY)
    ids.lock()
    before = {n: st.read(n) for n in st.names()}
    e = raises(IdentityError, ids.provision, fields(model="X"), KEY)
    assert "locked" in str(e)
    assert {n: st.read(n) for n in st.names()} == before


def test_factory_reset_needs_physical_presence():
    st, ids = fresh("c")
    ids.provision(fields(), KEY)
    ids.lock()
    for proof in (False, None, 1, "yes", "True"):
        raises(IdentityError, ids.factory_reset, proof)
        assert ids.locked
    ids.factory_reset(True)
    assert ids.status() == "blank" and ids.device_key() is None
    ids.provision(fields(model="GG-300"), KEY)
    assert ids.load()["model"] == "GG-300"
    evs = [a["ev"] for a in ids.audit()]
    assert evs == ["provision", "lock", "factory_reset", "provision"]


def test_lock_refuses_a_label_mismatch():
    st, ids = fresh("d")
    ids.provision(fields(), KEY)
    e = raises(IdentityError, ids.lock, "88.118.8/GDH.240915.00124D")
    assert "differs from the label" in str(e)
    assert ids.status() == "provisioned"
    raises(IdentityError, IdentityStore(fresh("d2")[0]).lock)


def test_key_rules_by_tier():
    st, ids = fresh("e")
    raises(IdentityError, ids.provision, fields(), None)
    raises(IdentityError, ids.provision, fields(), KEY[:31])
    raises(IdentityError, ids.provision, fields(), b"\x00" * 32)
    low = fields(id="88.118.8/GDL.240915.00123N", tier="L")
    raises(IdentityError, ids.provision, low, KEY)
    assert ids.status() == "blank" and st.names() == []
    ids.provision(low)
    ids.lock()
    assert ids.device_key() is None and ids.key_id() is None
    assert ids.info()["key_id"] is None


def test_field_errors_name_the_field_and_change_nothing():
    st, ids = fresh("f")
    cases = [
        (dict(id="88.118.8/GDH.240915.00123G"), "id:"),
        (dict(tier="M"), "tier"),
        (dict(kind="valve"), "kind"),
        (dict(mfg_date="2024-09-16"), "mfg_date"),
        (dict(mfg_date="2024-9-15"), "mfg_date"),
        (dict(model=""), "model"),
        (dict(model="x" * 33), "model"),
        (dict(model="caf\u00e9"), "model"),
        (dict(serial="ab"), "serial"),
        (dict(hw_rev="1 2"), "hw_rev"),
        (dict(qr_template="http://x/{id}"), "qr_template"),
        (dict(qr_template="https://x/"), "qr_template"),
        (dict(qr_template="https://x/{id}/{id}"), "qr_template"),
        (dict(extra=1), "extra"),
    ]
    for change, word in cases:
        e = raises(IdentityError, ids.provision, fields(**change), KEY)
        assert word in str(e), (change, str(e))
    f = fields()
    del f["model"]
    assert "model" in str(raises(IdentityError, ids.provision, f, KEY))
    assert st.names() == []


def test_info_never_contains_the_key():
    st, ids = fresh("g")
    ids.provision(fields(), KEY)
    ids.lock()
    info = ids.info()
    text = repr(info) + canon(info).decode()
    assert KEY.hex() not in text and repr(KEY) not in text
    assert info["key_id"] == key_fingerprint(KEY) and len(info["key_id"]) == 16
    assert info["locked"] is True and info["registered"] is False
    ii = ids.identity_info("0.1.0")
    assert ii["device_id"] == ID_H and ii["tier"] == "H" and ii["kind"] == "detector"


def test_corrupt_record_is_not_blank():
    st, ids = fresh("h")
    ids.provision(fields(), KEY)
    ids.lock()
    raw = bytearray(st.read("id_rec"))
    raw[10] ^= 1
    st.write("id_rec", bytes(raw))
    ids2 = IdentityStore(st)
    assert ids2.status() == "corrupt" and ids2.locked
    raises(IdentityError, ids2.load)
    raises(IdentityError, ids2.provision, fields(), KEY)
    ids2.factory_reset(True)
    assert ids2.status() == "blank"


def test_platform_fields():
    st, ids = fresh("i")
    ids.provision(fields(), KEY)
    ids.lock()
    assert ids.platform_fields() == {"linked_dev": "", "install_date": "", "installer": "",
                                     "site_ref": ""}
    ids.update_platform({"linked_dev": "88.118.8/GVM.240915.00077G", "install_date": "2024-10-01"})
    assert "locked" in str(raises(IdentityError, ids.update_platform, {"model": "x"}))
    raises(IdentityError, ids.update_platform, {"linked_dev": "88.118.8/GVM.240915.00077H"})
    raises(IdentityError, ids.update_platform, {"install_date": "2024-02-30"})
    raises(IdentityError, ids.update_platform, {"nope": "x"})
    raises(IdentityError, ids.update_platform, {})
    assert IdentityStore(st).platform_fields()["install_date"] == "2024-10-01"
    assert ids.load() == fields()
    raises(IdentityError, ids.set_hb, 59)
    raises(IdentityError, ids.set_hb, 86401)
    ids.set_hb(60)
    assert IdentityStore(st).platform()["hb_s"] == 60


def test_qr_payload():
    assert qr_payload("{id}", ID_H) == ID_H
    assert qr_payload("https://scan.example/id/{id}", ID_H) == "https://scan.example/id/" + ID_H
    raises(IdentityError, qr_payload, "{id}", "88.118.8/GDH.240915.00123G")
    raises(IdentityError, check_qr_template, "ftp://x/{id}")


def test_canonical_encoding():
    assert canon({"b": 1, "a": [True, None, "x\"\\\n\u00e9"]}) == \
        b'{"a":[true,null,"x\\"\\\\\\u000a\\u00e9"],"b":1}'
    assert canon({"s": "\U0001f600"}) == b'{"s":"\\ud83d\\ude00"}'
    raises(ValueError, canon, {"f": 1.5})
    raises(ValueError, canon, {1: 2})


def test_identity_record_is_a_framed_record():
    st, ids = fresh("j")
    ids.provision(fields(), KEY)
    payload = record.unseal(st.read("id_rec"), 1)
    assert payload.startswith(b'{"hw_rev":"1.2","id":"88.118.8/GDH.240915.00123F"')


def test_fields_that_follow_from_the_identifier_may_be_left_out():
    st, ids = fresh("k")
    rec = ids.provision({"id": ID_H, "model": "GG-200", "hw_rev": "1.2"}, KEY)
    assert rec == fields(qr_template="{id}")
    e = raises(IdentityError, ids.provision, {"id": ID_H, "model": "GG-200"}, KEY)
    assert "hw_rev" in str(e)
    e = raises(IdentityError, ids.provision, {"id": ID_H, "model": "GG-200", "hw_rev": "1",
                                              "tier": "M"}, KEY)
    assert "tier" in str(e)


def test_power_cut_during_provision_and_lock_never_leaves_a_bad_identity():
    from simboard import PowerCutStore

    # every write is all-or-nothing (temp file + rename) and appends tear at any byte, so
    # the distinct outcomes sit at the write boundaries: cut just before, at and after each
    # one, plus every 5th byte in between
    class Probe(PowerCutStore):
        def _spend(self, data):
            r = PowerCutStore._spend(self, data)
            marks.append(self.written)
            return r

    marks = [0]
    root = tmpdir("ids-cut")
    probe = Probe(root)
    IdentityStore(probe).provision(fields(), KEY)
    IdentityStore(probe).lock()
    total = probe.written
    assert total > 100 and len(marks) > 4
    cuts = set(range(0, total + 1, 5))
    for m in marks:
        cuts.update((m - 1, m, m + 1))
    for n in sorted(c for c in cuts if 0 <= c <= total):
        for name in FileStore(root).names():
            FileStore(root).remove(name)
        st = PowerCutStore(root, n)
        try:
            ids = IdentityStore(st)
            ids.provision(fields(), KEY)
            ids.lock()
            done = True
        except OSError:
            done = False
        again = IdentityStore(FileStore(root))  # reboot
        s = again.status()
        assert s in ("blank", "provisioned", "locked"), (n, s)
        if s != "blank":
            assert again.load() == fields() and again.device_key() == KEY, n
        if done:
            assert s == "locked"
        if s != "locked":  # the factory simply runs the sequence again
            again.provision(fields(), KEY)
            again.lock()
        assert IdentityStore(FileStore(root)).status() == "locked"
