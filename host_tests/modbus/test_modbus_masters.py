"""Two real Modbus masters, pymodbus and mbpoll (libmodbus), read the published register map
(docs/modbus.md) from virtual devices over their RS-485 pseudo-terminal: the real firmware
on the MicroPython unix port, `gasguard sim`'s plumbing (cmd_sim.VirtualSerialDevice and
rs485_bus.Rs485Bus). Clean air, a CH4 alarm, a sensor fault, a valve closure, a multi-drop
line, and hostile frames that must get no reply (or the right exception) and change nothing.
"""

import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import ROOT  # noqa: F401  (tools/ and firmware/ on sys.path)
from fixtures.dut import Dut, _wait_ready, make_virtual_device  # noqa: F401
from gasguard import modbus_regs as M
from gasguard.profiles import load as load_profile

BAUD = 9600  # a pty has no baud rate or parity (Linux ptys refuse PARENB): masters use 8N1
DET = 7
VALVE = 9


def mbpoll_exe():
    exe = shutil.which("mbpoll")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("mbpoll is missing (make test installs it as root: apt-get install mbpoll)")
        pytest.skip("mbpoll is not installed (make test installs it when run as root)")
    return exe


@pytest.fixture
def line(make_virtual_device):
    """start(kind, address) -> (console Dut, the controller's port of their shared line)."""
    from gasguard_tools.rs485_bus import Rs485Bus

    bus = Rs485Bus()
    started = []
    duts = []

    def start(kind="detector", address=DET):
        end = bus.add_device()
        if not started:
            bus.start()
            started.append(bus)
        dev = make_virtual_device(device=kind, rs485=end, rs485_address=address)
        d = Dut(dev.port, device=dev)
        _wait_ready(d)
        duts.append(d)
        return d, bus.port

    yield start
    for d in duts:
        d.close()
    bus.stop()


class Pymodbus:
    def __init__(self, port):
        from pymodbus.client import ModbusSerialClient

        self.c = ModbusSerialClient(port, baudrate=BAUD, parity="N", stopbits=1, bytesize=8,
                                    timeout=1, retries=1)
        assert self.c.connect()

    def inputs(self, addr, start, n):
        r = self.c.read_input_registers(start, count=n, device_id=addr)
        assert not r.isError(), r
        return list(r.registers)

    def holding(self, addr, start, n):
        r = self.c.read_holding_registers(start, count=n, device_id=addr)
        assert not r.isError(), r
        return list(r.registers)

    def write(self, addr, reg, value):
        return self.c.write_register(reg, value, device_id=addr)

    def close(self):
        self.c.close()


def mbpoll(port, addr, start, n, table=3, values=()):
    """mbpoll once (-1), PDU addressing (-0); returns {register: value} or the error text."""
    argv = [mbpoll_exe(), "-m", "rtu", "-b", str(BAUD), "-P", "none", "-s", "1", "-a",
            str(addr), "-t", str(table), "-0", "-r", str(start), "-o", "1", "-1"]
    if not values:
        argv += ["-c", str(n)]
    r = subprocess.run(argv + [port] + [str(v) for v in values], capture_output=True,
                       text=True, timeout=30)
    if values:
        return r.stdout + r.stderr
    regs = dict((int(a), int(v)) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", r.stdout, re.M))
    return regs if regs else (r.stdout + r.stderr)


def warm(d, seconds=320):
    d.cmd("SIM ADVANCE %d" % seconds)  # past the methane heater warm-up


def ch4_setpoint_lel_x10(level=1):
    p = load_profile({"profile": "cn", "tier": "mid"})
    key = "ch4_low_x10" if level == 1 else "ch4_high_x10"
    return p[key] * 10 // p["ch4_pct_lel_x10"]


# ---------------------------------------------------------------------------- detector
def test_both_masters_read_a_detector_in_clean_air_then_in_a_ch4_alarm(line):
    d, port = line("detector", DET)
    warm(d)
    pm = Pymodbus(port)
    try:
        st, ch4, co = pm.inputs(DET, 0, 3)
        assert st & 0x07 == 0 and ch4 < ch4_setpoint_lel_x10(1), (st, ch4, co)
        got = mbpoll(port, DET, 0, 3)
        assert isinstance(got, dict) and got[0] & 7 == 0 and got[1] < ch4_setpoint_lel_x10(1), got
        d.cmd("SIM GAS ch4 10000")  # 20 %LEL at the sensor
        d.cmd("SIM ADVANCE 90")
        st, ch4, co = pm.inputs(DET, 0, 3)
        assert st & 1, st  # CH4 level-1 alarm
        assert ch4_setpoint_lel_x10(1) < ch4 < M.UNKNOWN, ch4
        assert bool(st & 2) == (ch4 >= ch4_setpoint_lel_x10(2))
        assert st & 16  # relay / shut-off requested
        got = mbpoll(port, DET, 0, 3)
        assert isinstance(got, dict), got
        assert got[0] & 1 and got[1] > ch4_setpoint_lel_x10(1), got
        assert pm.holding(DET, 0, 3)[0] & 1  # function 03 reads the same map
        assert pm.inputs(DET, 9, 1) == [1]  # one level-1 alarm since boot
        assert pm.inputs(DET, M.COMMON, 2) == [M.MAP_VERSION, M.KIND_DETECTOR]
    finally:
        pm.close()


def test_a_sensor_fault_shows_in_the_state_word_and_the_fault_bits(line):
    d, port = line("detector", DET)
    warm(d)
    d.cmd("SIM FAULT ch4 open")
    d.cmd("SIM ADVANCE 30")
    got = mbpoll(port, DET, 0, 4)
    assert isinstance(got, dict), got
    assert got[0] & 8 and got[1] == M.UNKNOWN and got[3] & 2, got  # any fault, no reading, open
    pm = Pymodbus(port)
    try:
        assert pm.inputs(DET, 3, 1)[0] & 2
    finally:
        pm.close()


def test_identification_diagnostics_and_commands_through_pymodbus(line):
    d, port = line("detector", DET)
    pm = Pymodbus(port)
    try:
        r = pm.c.read_device_information(read_code=1, device_id=DET)
        assert not r.isError(), r
        assert r.information[0] == b"gasguard"
        assert r.information[2].decode() == d.cmd("HELLO")["fw"]
        r = pm.c.read_device_information(read_code=4, object_id=0x80, device_id=DET)
        assert not r.isError() and 0x80 in r.information
        r = pm.c.diag_query_data(msg=b"\x12\x34", device_id=DET)
        assert not r.isError(), r
        # writes: only the command register, only known codes
        bad = pm.write(DET, 1, 5)
        assert bad.isError() and bad.exception_code == 2
        bad = pm.write(DET, M.COMMAND, 1)
        assert bad.isError() and bad.exception_code == 3
        ok = pm.write(DET, M.COMMAND, M.CMD_SELF_TEST)
        assert not ok.isError(), ok
        assert pm.holding(DET, M.COMMAND, 2)[0] == M.CMD_SELF_TEST
        r = pm.c.read_coils(0, count=1, device_id=DET)
        assert r.isError() and r.exception_code == 1
    finally:
        pm.close()


# ---------------------------------------------------------------------------- valve
def test_both_masters_read_a_closed_valve(line):
    d, port = line("valve", VALVE)
    pm = Pymodbus(port)
    try:
        st = pm.inputs(VALVE, 0, 1)[0]
        assert st & 4 and not st & 1, st  # open
        d.cmd("SIM PRESSURE 0.5")  # under-pressure: the mechanism closes, the controller says why
        d.cmd("SIM ADVANCE 5")
        st, p, f, state, cause = pm.inputs(VALVE, 0, 5)
        assert st & 1 and state == 2 and cause == 3, (st, state, cause)
        got = mbpoll(port, VALVE, 0, 5)
        assert isinstance(got, dict), got
        assert got[0] & 1 and got[3] == 2, got
        assert pm.inputs(VALVE, M.COMMON + 1, 1) == [M.KIND_VALVE]
    finally:
        pm.close()


def test_a_modbus_close_closes_the_valve_and_nothing_written_opens_it(line):
    d, port = line("valve", VALVE)
    got = mbpoll(port, VALVE, M.COMMAND, 1, table=4, values=[M.CMD_CLOSE])  # mbpoll writes 06
    assert "Written 1 references" in got, got
    d.cmd("SIM ADVANCE 5")
    pm = Pymodbus(port)
    try:
        st = pm.inputs(VALVE, 0, 1)[0]
        assert st & 1, st
        assert pm.inputs(VALVE, 4, 1) == [5]  # cause manual (source remote)
        for reg, v in ((M.COMMAND, 0x4F50), (M.COMMAND, 0), (0, 0), (3, 0), (4, 0)):
            assert pm.write(VALVE, reg, v).isError()
        d.cmd("SIM ADVANCE 5")
        assert pm.inputs(VALVE, 0, 1)[0] & 1
        assert d.cmd("STATUS?")["valve"] == "closed"
    finally:
        pm.close()


# ---------------------------------------------------------------------------- the line
def test_a_multi_drop_line_of_three_devices(line):
    d1, port = line("detector", 1)
    d2, _ = line("detector", 2)
    v3, _ = line("valve", 3)
    pm = Pymodbus(port)
    try:
        assert pm.inputs(1, M.COMMON + 1, 1) == [M.KIND_DETECTOR]
        assert pm.inputs(2, M.COMMON + 1, 1) == [M.KIND_DETECTOR]
        assert pm.inputs(3, M.COMMON + 1, 1) == [M.KIND_VALVE]
        from pymodbus.exceptions import ModbusIOException

        with pytest.raises(ModbusIOException):  # nobody at 4: no answer, no collision
            pm.c.read_input_registers(0, count=1, device_id=4)
        d2.cmd("SIM ADVANCE 320")
        d2.cmd("SIM GAS ch4 15000")
        d2.cmd("SIM ADVANCE 90")
        assert pm.inputs(2, 0, 1)[0] & 1
        assert not pm.inputs(1, 0, 1)[0] & 1
        for a in (1, 2, 3):
            got = mbpoll(port, a, M.COMMON, 2)
            assert isinstance(got, dict) and got[M.COMMON] == M.MAP_VERSION, (a, got)
    finally:
        pm.close()


def _crc(b):
    from gasguard.modbus_rtu import crc16

    c = crc16(b, len(b))
    return bytes(b) + bytes([c & 0xFF, c >> 8])


def test_hostile_frames_on_the_line_get_no_reply_or_the_right_exception_and_change_nothing(line):
    import serial

    d, port = line("detector", DET)
    warm(d)
    d.cmd("SIM GAS ch4 10000")  # a level-1 alarm: a hush would be accepted
    d.cmd("SIM ADVANCE 90")
    before = d.cmd("STATUS?")
    s = serial.Serial(port, BAUD, timeout=0.4)

    def ask(frame, pause=0.3):
        s.reset_input_buffer()
        s.write(frame)
        time.sleep(pause)
        return s.read(600)

    hush = _crc(bytes([DET, 6, 0, 200]) + M.CMD_HUSH.to_bytes(2, "big"))
    bad_crc = hush[:-1] + bytes([hush[-1] ^ 0xFF])
    results = {
        "bad CRC": ask(bad_crc),
        "truncated": ask(hush[:5]),
        "other address": ask(_crc(bytes([DET + 1]) + hush[1:-2])),
        "noise then frame, no silence": ask(b"\x00\xff\x55" + hush),
        "frame then noise, no silence": ask(hush + b"\x13"),
        "flood of 2000 bytes": ask(bytes(range(256)) * 7 + hush * 20, pause=0.6),
        "broadcast read": ask(_crc(bytes([0, 4, 0, 0, 0, 1]))),
    }
    for name, got in results.items():
        assert got == b"", (name, got.hex())
    assert ask(_crc(bytes([DET, 4, 0, 0, 0, 0]))) == _crc(bytes([DET, 0x84, 3]))  # quantity 0
    assert ask(_crc(bytes([DET, 4, 0, 0, 0, 7, 9]))) == _crc(bytes([DET, 0x84, 3]))  # length
    assert ask(_crc(bytes([DET, 0x41, 0, 0]))) == _crc(bytes([DET, 0xC1, 1]))  # unknown function
    assert ask(_crc(bytes([DET, 6, 0, 13, 0, 0]))) == _crc(bytes([DET, 0x86, 2]))  # thresholds? no
    after = d.cmd("STATUS?")
    assert after["detector"]["hushed"] is False and before["detector"]["hushed"] is False
    assert [e for e in d.cmd("LOG? 50")["events"] if e["event"] in ("hush", "config")] == []
    mb = after["parts"]["modbus"]
    assert mb["crc_errors"] >= 3 and mb["other_address"] >= 1 and mb["overruns"] >= 1, mb
    assert after["detector"]["ch4"]["alarm"] == before["detector"]["ch4"]["alarm"] == 1
    # the line still works, and the hush itself goes through the console's rules
    assert ask(hush) == hush
    assert d.cmd("STATUS?")["detector"]["hushed"] is True
    s.close()


# ---------------------------------------------------------------------------- the CLI
def _spawn_sim(*args):
    import sys

    e = dict(os.environ, PYTHONPATH=str(ROOT / "tools"), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "gasguard_tools.cli", "sim", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e,
                            cwd=str(ROOT))


def _wait_for(p, prefix, n=1, timeout=60):
    got = []
    end = time.time() + timeout
    while len(got) < n and time.time() < end:
        ln = p.stdout.readline()
        if not ln:
            break
        if ln.startswith(prefix):
            got.append(ln[len(prefix):].strip())
    assert len(got) == n, "no %r line from gasguard sim" % prefix
    return got


def _stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def test_gasguard_sim_serial_pty_with_an_rs485_link(tmp_path):
    link = str(tmp_path / "ttyRS485")
    p = _spawn_sim("--serial", "pty", "--device", "valve", "--rs485-link", link,
                   "--rs485-address", "5", "--state", str(tmp_path / "board"))
    try:
        assert _wait_for(p, "rs485 link: ") == [link]
        _wait_for(p, "stop:")
        got = {}
        for _ in range(20):  # the firmware is booting
            got = mbpoll(link, 5, M.COMMON, 2)
            if isinstance(got, dict):
                break
            time.sleep(0.3)
        assert got == {M.COMMON: M.MAP_VERSION, M.COMMON + 1: M.KIND_VALVE}, got
    finally:
        _stop(p)
    assert not os.path.exists(link)


def test_gasguard_sim_rs485_bus_of_several_devices(tmp_path):
    link = str(tmp_path / "ttyBUS")
    p = _spawn_sim("--rs485-bus", link, "--devices", "detector:1,detector:2,valve:3")
    try:
        assert len(_wait_for(p, "device ", n=3)) == 3
        _wait_for(p, "stop:")
        kinds = {}
        pm = None
        for _ in range(20):
            try:
                pm = Pymodbus(link)
                kinds = dict((a, pm.inputs(a, M.COMMON + 1, 1)[0]) for a in (1, 2, 3))
                break
            except Exception:
                if pm is not None:
                    pm.close()
                    pm = None
                time.sleep(0.3)
        assert kinds == {1: M.KIND_DETECTOR, 2: M.KIND_DETECTOR, 3: M.KIND_VALVE}, kinds
        pm.close()
    finally:
        _stop(p)


def test_gasguard_sim_refuses_a_bad_device_list():
    for spec in ("detector:1,valve:1", "heater:2", "detector:0", "detector"):
        p = _spawn_sim("--rs485-bus", "/tmp/never-made", "--devices", spec)
        out = p.communicate(timeout=30)[0]
        assert p.returncode == 2 and "--devices" in out, (spec, out)


# ---------------------------------------------------------------------------- gasguard modbus
def _gasguard(*args):
    import sys

    e = dict(os.environ, PYTHONPATH=str(ROOT / "tools"))
    return subprocess.run([sys.executable, "-m", "gasguard_tools.cli", *args],
                          capture_output=True, text=True, timeout=60, env=e, cwd=str(ROOT))


def test_gasguard_modbus_reads_a_detector_in_an_alarm_as_table_and_json(line):
    import json

    d, port = line("detector", DET)
    warm(d)
    d.cmd("SIM GAS ch4 10000")
    d.cmd("SIM ADVANCE 90")
    r = _gasguard("modbus", "--port", port, "--parity", "none", "--address", str(DET), "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["kind"] == "detector" and j["map_version"] == M.MAP_VERSION
    assert "CH4 level-1 alarm" in j["fields"]["state"]
    assert j["fields"]["ch4_pct_lel"] * 10 > ch4_setpoint_lel_x10(1)
    assert j["fw"] == d.cmd("HELLO")["fw"] and j["vendor"] == "gasguard"
    assert int(j["registers"]["1"]) == round(j["fields"]["ch4_pct_lel"] * 10)
    r = _gasguard("modbus", "--port", port, "--parity", "none", "--address", str(DET))
    assert r.returncode == 0 and "CH4 level-1 alarm" in r.stdout and "%LEL" in r.stdout, r.stdout
    r = _gasguard("modbus", "--port", port, "--parity", "none", "--address", str(DET + 1),
                  "--timeout", "0.3")
    assert r.returncode == 1 and "no answer from address %d" % (DET + 1) in r.stderr, r.stderr


def test_gasguard_modbus_reads_a_closed_valve(line):
    import json

    d, port = line("valve", VALVE)
    d.cmd("SIM PRESSURE 0.5")
    d.cmd("SIM ADVANCE 5")
    r = _gasguard("modbus", "--port", port, "--parity", "none", "--address", str(VALVE), "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["kind"] == "valve" and "closed" in j["fields"]["state"]
    assert j["fields"]["valve"] == "closed" and j["fields"]["last_close_cause"] == "under_pressure"


# ---------------------------------------------------------------------------- CFG
def test_address_baud_and_parity_set_through_the_console_cfg_checked_as_at_boot(line):
    from gasguard_tools.cmd_sim import SIM_FACTORY_KEY

    d, port = line("detector", DET)
    d.factory(bytes.fromhex(SIM_FACTORY_KEY))
    for key, value in (("modbus.address", "0"), ("modbus.address", "248"),
                       ("modbus.baud", "9601"), ("modbus.parity", '"mark"'),
                       ("modbus.adress", "3"), ("modbus.stop_bits", "3")):
        assert d.error("CFG %s %s" % (key, value)) == "E_CONFIG", (key, value)
    assert "modbus" not in d.cmd("CFG?")["config"]  # a refused value changed nothing
    assert d.cmd("CFG modbus.address 12")["reboot_required"] is True
    d.cmd("CFG modbus.baud 19200")
    d.cmd("CFG modbus.parity \"none\"")
    assert d.cmd("CFG?")["config"]["modbus"] == {"address": 12, "baud": 19200, "parity": "none"}
    assert isinstance(mbpoll(port, DET, 0, 1), dict)  # still the old address until the reboot
    d.cmd("REBOOT")
    _wait_ready(d)
    for _ in range(20):
        got = mbpoll(port, 12, M.COMMON, 1)
        if isinstance(got, dict):
            break
        time.sleep(0.3)
    assert got == {M.COMMON: M.MAP_VERSION}, got
    assert not isinstance(mbpoll(port, DET, M.COMMON, 1), dict)  # the old address is silent
    st = d.cmd("STATUS?")["parts"]["modbus"]
    assert (st["address"], st["baud"], st["parity"]) == (12, 19200, "none")


def test_a_hush_refused_by_the_detectors_rules_reads_as_refused_on_the_bus(line):
    d, port = line("detector", DET)
    warm(d)
    d.cmd("SIM GAS ch4 40000")  # far above the level-2 set point: no hush allowed
    d.cmd("SIM ADVANCE 90")
    pm = Pymodbus(port)
    try:
        assert pm.inputs(DET, 0, 1)[0] & 2
        assert not pm.write(DET, M.COMMAND, M.CMD_HUSH).isError()  # received ...
        assert pm.holding(DET, M.COMMAND, 2) == [M.CMD_HUSH, M.R_REFUSED]  # ... and refused
        assert not pm.inputs(DET, 0, 1)[0] & 32
    finally:
        pm.close()
    r = d.cmd("HUSH")  # the console says the same
    assert r["hushed"] is False and r["reason"] == "ch4_high", r
