"""Factory provisioning: the host sequence against the real Service console (GGSP/1) and
against an IdentityStore directly; the label check refuses to lock on a mismatch."""

import pytest

from gasguard.identity import IdentityStore, key_fingerprint
from gasguard.service import Service
from gasguard.store import FileStore
from gasguard_tools.factory import (
    DeviceError, Link, check_label_matches, fields_for, provision_link, provision_store,
    read_device_identifier,
)
from gasguard_tools.runtime import ToolError
from simboard import SimClock, SimConsole

ID = "88.118.8/GDH.240915.00123F"
ID_L = "88.118.8/GDL.240915.00123N"
KEY = bytes(range(1, 33))
FKEY = b"factory-key-0123456789abcdef0123"


class Device:
    """The facade the Service talks to: just what provisioning needs."""

    def __init__(self, ids):
        self.identity = ids

    def factory_key(self):
        return FKEY


class ConsoleStream:
    """pyserial-like stream over SimConsole + Service.poll(), for Link."""

    def __init__(self, svc, console):
        self.svc, self.console, self.buf = svc, console, b""

    def write(self, b):
        self.console.feed(b)

    def readline(self):
        for _ in range(200):
            if b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                return line + b"\n"
            self.svc.poll()
            self.buf += self.console.take_output()
        return b""


def device(tmp_path, button=False):
    ids = IdentityStore(FileStore(str(tmp_path / "flash")))
    con = SimConsole()
    svc = Service(con, Device(ids), SimClock(), {"line_max": 512}, button_at_boot=button)
    return ids, Link(ConsoleStream(svc, con), line_max=512)


def test_provision_over_the_console_with_challenge_response(tmp_path):
    ids, link = device(tmp_path)
    f = fields_for(ID, "GG-200", "1.2", "https://id.example.com/id/{id}")
    assert read_device_identifier(link) is None
    final = provision_link(link, f, KEY, ID, FKEY, log=lambda m: None)
    assert final["locked"] is True and final["id"] == ID
    assert ids.locked and ids.device_key() == KEY and ids.load() == f
    assert read_device_identifier(link) == ID
    # a second run with the same label: left alone; with another label: refused
    provision_link(link, f, KEY, ID, FKEY, log=lambda m: None)
    f2 = fields_for("88.118.8/GDH.240915.00124D", "GG-200", "1.2")
    with pytest.raises(ToolError, match="differs from the label"):
        provision_link(link, f2, KEY, "88.118.8/GDH.240915.00124D", FKEY, log=lambda m: None)
    assert ids.load() == f


def test_button_at_boot_needs_no_key_and_low_tier_has_no_secret(tmp_path):
    ids, link = device(tmp_path, button=True)
    f = fields_for(ID_L, "GG-100", "1.0")
    provision_link(link, f, None, ID_L, None, log=lambda m: None)
    assert ids.locked and ids.device_key() is None


def test_not_in_factory_mode_and_no_key_is_refused(tmp_path):
    ids, link = device(tmp_path)
    with pytest.raises(ToolError, match="factory mode"):
        provision_link(link, fields_for(ID, "GG-200", "1.2"), KEY, ID, None, log=lambda m: None)
    assert ids.status() == "blank"
    with pytest.raises(DeviceError) as e:
        link.request("PROV LOCK")
    assert e.value.code == "E_FACTORY"


def test_label_mismatch_refuses_before_anything_is_written(tmp_path):
    ids, link = device(tmp_path)
    f = fields_for(ID, "GG-200", "1.2")
    with pytest.raises(ToolError, match="differs from the label"):
        provision_link(link, f, KEY, "88.118.8/GDH.240915.00124D", FKEY, log=lambda m: None)
    assert ids.status() == "blank"


def test_check_label_matches():
    assert check_label_matches(ID, ID)
    with pytest.raises(ToolError, match="differs"):
        check_label_matches("88.118.8/GDH.240915.00124D", ID)
    with pytest.raises(ToolError, match="not provisioned"):
        check_label_matches(None, ID)
    with pytest.raises(ToolError, match="not valid"):
        check_label_matches(ID, ID[:-1] + "G")


def test_provision_store_directly(tmp_path):
    ids = IdentityStore(FileStore(str(tmp_path / "f")))
    f = fields_for(ID, "GG-200", "1.2")
    info = provision_store(ids, f, KEY, ID, log=lambda m: None)
    assert info["locked"] and info["key_id"] == key_fingerprint(KEY)
    with pytest.raises(ToolError, match="differs"):
        provision_store(ids, f, KEY, "88.118.8/GDH.240915.00124D", log=lambda m: None)


def test_long_requests_are_refused_on_the_host_side():
    class Null:
        def write(self, b):
            raise AssertionError("nothing may be sent")

    with pytest.raises(ToolError, match="longer than"):
        Link(Null()).cmd("PROV " + "x" * 300)


# ---- end to end: the virtual board (real firmware on MicroPython, console on a pty) ---------


@pytest.fixture
def virtual_board(tmp_path):
    from gasguard_tools.cmd_sim import VirtualSerialDevice

    dev = VirtualSerialDevice(tmp_path / "board", speed=1.0)
    port = dev.start()
    try:
        yield port
    finally:
        dev.stop()


def test_factory_tool_and_label_check_against_the_virtual_board(virtual_board, tmp_path, capsys):
    from gasguard_tools import factory
    from gasguard_tools.cli import main as cli_main
    from gasguard_tools.cmd_sim import SIM_FACTORY_KEY

    port = virtual_board
    esc = tmp_path / "keys.csv"
    # blank device: the label check refuses
    assert cli_main(["label", "--id", ID, "--verify-port", port]) == 1
    assert "not provisioned" in capsys.readouterr().err
    rc = cli_main(["provision", "--port", port, "--id", ID, "--model", "GG-200", "--hw-rev", "1.2",
                   "--escrow", str(esc), "--factory-key", SIM_FACTORY_KEY])
    out = capsys.readouterr()
    assert rc == 0, out.err
    row = esc.read_text().strip().split(",")
    assert row[0] == ID and len(row[2]) == 64
    assert row[2] not in out.out + out.err  # the key is never printed
    assert oct(esc.stat().st_mode & 0o777) == "0o600"
    assert cli_main(["label", "--id", ID, "--verify-port", port]) == 0
    assert cli_main(["label", "--id", ID, "--model", "GG-200", "--verify-port", port]) == 0
    assert cli_main(["label", "--id", ID, "--model", "GG-210", "--verify-port", port]) == 1
    assert "model" in capsys.readouterr().err
    assert cli_main(["label", "--id", ID, "--template", "https://x.example/id/{id}",
                     "--verify-port", port]) == 1
    assert "qr_template" in capsys.readouterr().err
    assert cli_main(["label", "--id", "88.118.8/GDH.240915.00124D", "--verify-port", port]) == 1
    assert "differs from the label" in capsys.readouterr().err
    # a second provisioning with another identifier is refused; the device is unchanged
    rc = factory.main(["--port", port, "--id", "88.118.8/GDH.240915.00124D", "--model", "GG-200",
                       "--hw-rev", "1.2", "--escrow", str(esc), "--factory-key", SIM_FACTORY_KEY])
    assert rc == 1
    assert factory.read_device_identifier(port) == ID


def test_check_label_data_names_every_differing_field():
    from gasguard_tools.factory import check_label_data

    info = {"provisioned": True, "locked": True, "id": ID, "model": "GG-200", "tier": "H",
            "hw_rev": "1.2"}
    assert check_label_data(info, {"id": ID, "model": "GG-200", "tier": "H"})
    assert check_label_data(info, {"id": ID})
    with pytest.raises(ToolError, match="model, hw_rev"):
        check_label_data(info, {"id": ID, "model": "GG-210", "hw_rev": "1.3"})
    with pytest.raises(ToolError, match="not provisioned"):
        check_label_data({"provisioned": False}, {"id": ID})
