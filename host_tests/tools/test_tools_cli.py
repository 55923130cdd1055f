"""CLI habits (issue 14 item 3): exit codes like esptool/mpremote, no traceback for a closed
pipe or Ctrl-C, `gasguard ports` and `--port auto`, progress bars only on a terminal."""

import os
import signal
import subprocess
import sys
import time

from conftest import ROOT
from fixtures.dut import make_virtual_device, virtual_dut  # noqa: F401

from gasguard_tools import cmd_ports


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT / "tools"))


def gasguard(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gasguard_tools.cli", *args], capture_output=True,
                          text=True, timeout=120, env=_env(), cwd=str(ROOT), **kw)


def test_usage_errors_exit_2_and_device_errors_exit_1(tmp_path):
    r = gasguard("flash", "--port", "/dev/null", "--board", "esp8266", "--dry-run")
    assert r.returncode == 2 and "unknown board" in r.stderr
    assert r.stderr.count("sim") == 1  # the board list names the virtual board once
    r = gasguard("diag", "--port", "/dev/null", "--nonsense")
    assert r.returncode == 2
    r = gasguard("diag", "--port", str(tmp_path / "no-such-port"), "status")
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_a_closed_pipe_ends_quietly(virtual_dut):
    """`gasguard diag watch | head -2`: the reader goes away, no BrokenPipe traceback."""
    p = subprocess.run(
        "%s -m gasguard_tools.cli diag --port %s watch --interval 0 | head -n 2"
        % (sys.executable, virtual_dut.port), shell=True, capture_output=True, text=True,
        env=_env(), cwd=str(ROOT), timeout=60)
    assert len(p.stdout.splitlines()) == 2
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr


def test_ctrl_c_ends_without_a_traceback(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "gasguard_tools.cli", "sim", "--serial", "pty",
                          "--state", str(tmp_path / "b")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=_env(), cwd=str(ROOT))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if p.stdout.readline().startswith("stop:"):
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode in (0, 130)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


class _Info:
    def __init__(self, device, vid=None, pid=None, description="n/a", serial_number=None):
        self.device, self.vid, self.pid = device, vid, pid
        self.description, self.serial_number, self.location = description, serial_number, None


def test_ports_knows_the_esp32_bridges_and_auto_needs_exactly_one():
    cp2102 = _Info("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART", "0001")
    s3 = _Info("/dev/ttyACM0", 0x303A, 0x1001, "USB JTAG/serial debug unit")
    mouse = _Info("/dev/ttyACM1", 0x046D, 0xC52B, "Logitech receiver")
    legacy = _Info("/dev/ttyS0")
    listed = cmd_ports.list_ports(lambda: [mouse, cp2102, legacy])
    assert [p["port"] for p in listed if p["board"]] == ["/dev/ttyUSB0"]
    by_port = {p["port"]: p for p in listed}
    assert by_port["/dev/ttyS0"]["usb"] is None and by_port["/dev/ttyACM1"]["usb"] == "046d:c52b"
    assert by_port["/dev/ttyUSB0"]["bridge"] == "Silicon Labs CP210x"
    assert cmd_ports.auto_port(lambda: [mouse, cp2102, legacy]) == "/dev/ttyUSB0"
    import pytest

    from gasguard_tools.runtime import ToolError

    with pytest.raises(ToolError, match="2 boards attached"):
        cmd_ports.auto_port(lambda: [cp2102, s3])
    with pytest.raises(ToolError, match="no board attached"):
        cmd_ports.auto_port(lambda: [mouse, legacy])


def test_ports_command_lists_this_machines_ports():
    import json

    from serial.tools.list_ports import comports

    r = gasguard("ports", "--all", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(p["port"] for p in json.loads(r.stdout)) == sorted(i.device for i in comports())
    r = gasguard("diag", "--port", "auto", "status")
    boards = [p for p in cmd_ports.list_ports() if p["board"]]
    if len(boards) != 1:
        assert r.returncode == 1 and "--port auto" in r.stderr


def test_calibration_progress_bars_only_on_a_terminal():
    """In a pipe (a log file, CI) no carriage-return bars: whole lines only."""
    from gasguard_tools.cmd_calibrate import Calibrator

    class Args:
        window, tolerance_uv, stable_timeout, interval = 0.3, 10 ** 9, 30, 0.05

    class Dev:
        pass

    lines = []
    cal = Calibrator(Dev(), Args(), say=lambda m, end="\n": lines.append((m, end)))
    cal.read = lambda gas: {"raw_uv": 1000, "ppm_x10": 0, "fault": None}
    cal.tty = False
    cal.wait_stable("ch4", "zero")
    assert lines and all(end == "\n" for _, end in lines)
    lines.clear()
    cal.tty = True
    cal.wait_stable("ch4", "zero")
    assert any(end == "\r" for _, end in lines)
