"""ServiceClient against a scripted line: noise, late answers and echoes are never taken
for the answer; no answer is a clear NoAnswer, an ERR a DeviceError with its code."""

import hashlib
import hmac

import pytest

from gasguard import service_factory
from gasguard_tools.serialdev import (DeviceError, NoAnswer, ServiceClient, auth_response,
                                      parse_key)
from gasguard_tools.runtime import ToolError


class ScriptedLine:
    """A serial port whose device answers each written request with scripted bytes."""

    def __init__(self, script):
        self.script = script  # fn(request_line) -> bytes to put on the line
        self.rx = bytearray()
        self.port = "scripted"

    def write(self, data):
        for line in data.decode().split("\n"):
            if line.strip():
                self.rx.extend(self.script(line))
        return len(data)

    def flush(self):
        pass

    def read(self, n):
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out

    def reset_input_buffer(self):
        self.rx.clear()

    def close(self):
        pass


def test_skips_noise_stale_tags_and_echo():
    def device(line):
        tag = line.split(" ")[0]
        return (b"\x00\xffgarbage\n" + b"#old-1 OK {\"stale\": true}\n" + line.encode() + b"\n"
                + b"partial without newline " + b"\n" + tag.encode() + b" OK {\"proto\": \"GGSP/1\"}\n")

    c = ServiceClient(ScriptedLine(device), timeout=0.5)
    assert c.hello() == {"proto": "GGSP/1"}


def test_err_becomes_device_error_with_code():
    def device(line):
        tag = line.split(" ")[0]
        return (tag + " ERR E_FACTORY CAL needs factory mode (AUTH)\n").encode()

    c = ServiceClient(ScriptedLine(device), timeout=0.5)
    with pytest.raises(DeviceError) as e:
        c.cmd("CAL ZERO ch4")
    assert e.value.code == "E_FACTORY" and "factory mode" in e.value.message


def test_silence_is_no_answer_not_a_hang():
    c = ServiceClient(ScriptedLine(lambda line: b""), timeout=0.3)
    with pytest.raises(NoAnswer) as e:
        c.cmd("STATUS?")
    assert "did not answer" in str(e.value)


def test_malformed_ok_body_is_a_tool_error():
    c = ServiceClient(ScriptedLine(lambda line: (line.split(" ")[0] + " OK {not json\n").encode()),
                      timeout=0.3)
    with pytest.raises(ToolError):
        c.cmd("READ?")


def test_host_and_device_compute_the_same_response():
    key = bytes(range(32))
    nonce = "00" * 16
    assert auth_response(key, nonce, None) == service_factory.auth_response(key, nonce, None)
    assert auth_response(key, nonce, "88.1/X") == hmac.new(
        key, b"GGSP1-FACTORY:" + nonce.encode() + b":88.1/X", hashlib.sha256).hexdigest()


def test_factory_key_parsing():
    assert parse_key("") is None
    assert parse_key("aa" * 16) == b"\xaa" * 16
    with pytest.raises(ToolError):
        parse_key("not hex")
    with pytest.raises(ToolError):
        parse_key("aa" * 4)
