"""A device-under-test fixture in the style of pytest-embedded: dut.write(line), dut.expect(regex).

    from dut_fixtures import dut, virtual_dut, board_dut, make_virtual_device  # noqa: F401

    def test_hello(dut):
        dut.write("HELLO")
        m = dut.expect(r'OK (\\{.*"proto": "GGSP/1".*\\})')
        info = json.loads(m.group(1))

`dut` is the board on $GASGUARD_PORT when that is set (a real ESP32 on USB serial) and a
fresh virtual device on a pty otherwise, so protocol tests run against both. Tests that
need the simulator (SIM commands, freezing the firmware) take `virtual_dut`; tests that
need real hardware take `board_dut` and are marked `hardware` — they are skipped when no
board is attached (GASGUARD_PORT unset).

Dut keeps everything it read in `dut.log` (attached to assertion messages), `expect`
consumes the input up to the end of the match (like pexpect), and `cmd(line)` is a
tagged request that returns the decoded OK body or raises AssertionError on ERR.
"""

import json
import os
import re
import time

import pytest

from conftest import ROOT  # noqa: F401  (puts tools/ and firmware/ on sys.path)

DEFAULT_TIMEOUT = 10.0


class ExpectTimeout(AssertionError):
    pass


class Dut:
    def __init__(self, port, baud=115200, timeout=DEFAULT_TIMEOUT, device=None):
        import serial

        self.port = port
        self.timeout = timeout
        self.device = device  # the VirtualSerialDevice, or None on hardware
        self.ser = serial.serial_for_url(port, baudrate=baud, timeout=0.05)
        self.buf = ""
        self.log = ""
        self._n = 0

    def close(self):
        self.ser.close()

    # -------------------------------------------------------------- pytest-embedded style
    def write(self, data):
        """Send a line (str, newline added) or raw bytes (as they are)."""
        if isinstance(data, str):
            data = (data + "\n").encode()
        self.ser.write(data)
        self.ser.flush()

    def _fill(self):
        chunk = self.ser.read(4096)
        if chunk:
            text = chunk.decode("utf-8", "replace")
            self.buf += text
            self.log += text
        return bool(chunk)

    def expect(self, pattern, timeout=None, not_matching=None):
        """Wait for regex (str or compiled) in the input; return the re.Match."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        bad = re.compile(not_matching) if isinstance(not_matching, str) else not_matching
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            m = rx.search(self.buf)
            if bad is not None and bad.search(self.buf[: m.end() if m else len(self.buf)]):
                raise AssertionError("unexpected %r on %s; read:\n%s" % (bad.pattern, self.port, self.buf[-2000:]))
            if m:
                self.buf = self.buf[m.end():]
                return m
            if time.monotonic() > deadline:
                raise ExpectTimeout("timed out after %.1f s waiting for %r on %s; read:\n%s"
                                    % (self.timeout if timeout is None else timeout, rx.pattern,
                                       self.port, self.buf[-2000:]))
            self._fill()

    def expect_exact(self, text, timeout=None):
        return self.expect(re.escape(text), timeout)

    def flush_input(self):
        time.sleep(0.05)
        self.ser.reset_input_buffer()
        self.buf = ""

    # -------------------------------------------------------------- protocol helpers
    def request(self, line, timeout=None):
        """Tagged request; returns ("OK", body) or ("ERR", "CODE message")."""
        self._n += 1
        tag = "d%d" % self._n
        self.write("#%s %s" % (tag, line))
        m = self.expect(r"#%s (OK|ERR) ?([^\n]*)\n" % tag, timeout)
        if m.group(1) == "OK":
            return "OK", json.loads(m.group(2) or "{}")
        return "ERR", m.group(2).strip()

    def cmd(self, line, timeout=None):
        status, body = self.request(line, timeout)
        assert status == "OK", "%s -> ERR %s" % (line, body)
        return body

    def error(self, line, timeout=None):
        """Expect an ERR reply; return its code."""
        status, body = self.request(line, timeout)
        assert status == "ERR", "%s unexpectedly succeeded: %r" % (line, body)
        return body.split(" ")[0]

    def factory(self, key):
        from gasguard_tools.serialdev import auth_response

        ch = self.cmd("AUTH")
        return self.cmd("AUTH " + auth_response(key, ch["nonce"], ch.get("id")))


def _wait_ready(d):
    """Sync with the application: end any partial line, then wait for HELLO to answer."""
    deadline = time.monotonic() + 20
    while True:
        d.write(b"\n")
        try:
            d.request("HELLO", timeout=1.0)
            return d
        except ExpectTimeout:
            if time.monotonic() > deadline:
                raise


@pytest.fixture
def make_virtual_device(tmp_path):
    """Factory: start a virtual device on a pty (stopped after the test)."""
    from gasguard_tools.cmd_sim import VirtualSerialDevice

    started = []

    def make(speed=20.0, **kw):
        state = tmp_path / ("board%d" % len(started))
        log = open(tmp_path / ("board%d.stderr" % len(started)), "wb")
        dev = VirtualSerialDevice(state, speed=speed, stderr=log, **kw)
        dev.start()
        started.append((dev, log))
        return dev

    yield make
    for dev, log in started:
        dev.stop()
        log.close()


@pytest.fixture
def virtual_dut(make_virtual_device):
    dev = make_virtual_device()
    d = Dut(dev.port, device=dev)
    _wait_ready(d)
    yield d
    d.close()


@pytest.fixture
def board_dut():
    port = os.environ.get("GASGUARD_PORT")
    if not port:
        pytest.skip("no board attached (set GASGUARD_PORT=/dev/ttyUSB0 to run hardware tests)")
    d = Dut(port, timeout=float(os.environ.get("GASGUARD_TIMEOUT", "10")))
    _wait_ready(d)
    yield d
    d.close()


@pytest.fixture
def dut(request):
    """The attached board when GASGUARD_PORT is set, else a virtual device."""
    if os.environ.get("GASGUARD_PORT"):
        return request.getfixturevalue("board_dut")
    return request.getfixturevalue("virtual_dut")
