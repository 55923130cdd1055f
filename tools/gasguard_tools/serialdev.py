"""Host side of the service protocol (GGSP/1, docs/service-protocol.md) over pyserial.

    dev = ServiceClient.open(port)          # a tty path, /dev/pts/N, socket://, loop://
    info = dev.hello()
    st = dev.cmd("STATUS?")                 # dict, or DeviceError(code, message)
    dev.enter_factory(key)                  # challenge-response (HMAC-SHA256)

Every request carries a tag (#<session>-<n>); replies with another tag (late answers to
an earlier request) and unsolicited lines (boot banners, REPL noise) are skipped, so a
device that answered late can never be mistaken for the answer to the next question.
"""

import json
import os
import time

from . import ROOT  # noqa: F401  (keeps the package import order explicit)
from .runtime import ToolError

DEFAULT_TIMEOUT = 3.0


class DeviceError(ToolError):
    """The device answered ERR <code> <message>."""

    def __init__(self, code, message, command=""):
        ToolError.__init__(self, "device refused %s: %s %s" % (command or "the command", code, message))
        self.code = code
        self.message = message
        self.command = command


class NoAnswer(ToolError):
    """The device did not answer in time (unplugged, hung, wrong port, REPL instead of app)."""


def _import_serial():
    try:
        import serial
    except ImportError:  # pragma: no cover
        raise ToolError("pyserial is not installed (pip install pyserial)")
    return serial


def auth_response(key, nonce_hex, device_id):
    """Same construction as gasguard.service_factory.auth_response (documented in the protocol)."""
    import hashlib
    import hmac

    msg = ("GGSP1-FACTORY:%s:%s" % (nonce_hex, device_id or "-")).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


class ServiceClient:
    def __init__(self, ser, timeout=DEFAULT_TIMEOUT, trace=None):
        self.ser = ser
        self.timeout = timeout
        self.trace = trace
        self._buf = bytearray()
        self._n = 0
        self._session = "%04x" % (int.from_bytes(os.urandom(2), "big"))
        self.port = getattr(ser, "port", None) or getattr(ser, "portstr", None)

    @classmethod
    def open(cls, port, baud=115200, timeout=DEFAULT_TIMEOUT, trace=None):
        serial = _import_serial()
        try:
            ser = serial.serial_for_url(port, baudrate=baud, timeout=0.05, write_timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as e:
            raise ToolError("cannot open %s: %s" % (port, e))
        c = cls(ser, timeout, trace)
        c.port = port
        c.sync()
        return c

    def close(self):
        try:
            self.ser.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ line level
    def sync(self):
        """End any partial line the device may hold, and forget stale input."""
        self._write(b"\n")
        time.sleep(0.05)
        self.ser.reset_input_buffer()
        self._buf = bytearray()

    def _write(self, data):
        serial = _import_serial()
        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError) as e:
            raise NoAnswer("cannot write to %s: %s" % (self.port, e))

    def write_raw(self, data):
        """Send bytes as they are (tests: garbage on the line)."""
        self._write(data)

    def readline(self, deadline):
        serial = _import_serial()
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[: i + 1]
                text = line.decode("utf-8", "replace").strip("\r")
                if self.trace:
                    self.trace("< " + text)
                return text
            if time.monotonic() > deadline:
                return None
            try:
                chunk = self.ser.read(256)
            except (serial.SerialException, OSError) as e:
                raise NoAnswer("cannot read from %s: %s" % (self.port, e))
            if chunk:
                self._buf.extend(chunk)

    def request(self, line, timeout=None):
        """Send one request; return ("OK", dict) or ("ERR", (code, message))."""
        if "\n" in line or "\r" in line:
            raise ToolError("a request is a single line")
        self._n += 1
        tag = "%s-%d" % (self._session, self._n)
        if self.trace:
            self.trace("> " + line)
        self._write(("#%s %s\n" % (tag, line)).encode())
        deadline = time.monotonic() + (timeout or self.timeout)
        prefix = "#" + tag + " "
        while True:
            text = self.readline(deadline)
            if text is None:
                raise NoAnswer("the device on %s did not answer %r within %.0f s (unplugged, "
                               "hung, or not running the gasguard application?)"
                               % (self.port, line.split(" ")[0], timeout or self.timeout))
            if not text.startswith(prefix):
                continue  # banner, REPL noise or a late answer to an earlier request
            body = text[len(prefix):]
            if body.startswith("OK"):
                try:
                    return "OK", json.loads(body[2:].strip() or "{}")
                except ValueError:
                    raise ToolError("malformed reply from the device: %r" % body[:80])
            if body.startswith("ERR "):
                parts = body[4:].split(" ", 1)
                return "ERR", (parts[0], parts[1] if len(parts) > 1 else "")
            # anything else carrying our tag is an echo (a REPL in maintenance mode): noise

    def cmd(self, line, timeout=None):
        status, body = self.request(line, timeout)
        if status == "ERR":
            raise DeviceError(body[0], body[1], line.split(" ")[0])
        return body

    # ------------------------------------------------------------ conveniences
    def hello(self, attempts=3):
        last = None
        for _ in range(attempts):
            try:
                d = self.cmd("HELLO")
                if d.get("proto", "").split("/")[0] != "GGSP":
                    raise ToolError("unexpected protocol %r" % d.get("proto"))
                return d
            except NoAnswer as e:
                last = e
                self.sync()
        raise last

    def wait_for_boot(self, timeout=20.0):
        """After REBOOT: wait until the application answers again."""
        deadline = time.monotonic() + timeout
        time.sleep(0.3)
        while time.monotonic() < deadline:
            try:
                return self.cmd("HELLO", timeout=1.0)
            except NoAnswer:
                self.sync()
        raise NoAnswer("the device did not come back within %.0f s after the reboot" % timeout)

    def enter_factory(self, key):
        """Challenge-response with the factory key (bytes). DeviceError E_AUTH if wrong."""
        st = self.cmd("FACTORY?")
        if st.get("factory"):
            return st
        ch = self.cmd("AUTH")
        return self.cmd("AUTH " + auth_response(key, ch["nonce"], ch.get("id")))

    def provision(self, fields, secret=None, lock=False):
        d = dict(fields)
        if secret is not None:
            d["secret"] = secret.hex()
        rec = self.cmd("PROV " + json.dumps(d, separators=(",", ":")))
        if lock:
            rec = self.cmd("PROV LOCK " + fields["id"])
        return rec


def parse_key(text):
    """A factory key from the command line / environment: hex."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ToolError("the factory key must be given in hex")
    if len(key) < 16:
        raise ToolError("the factory key is too short (at least 16 bytes / 32 hex digits)")
    return key


def factory_key(args, info=None, log=print):
    """--factory-key, else GASGUARD_FACTORY_KEY, else (virtual devices only) the sim key."""
    key = parse_key(getattr(args, "factory_key", None) or os.environ.get("GASGUARD_FACTORY_KEY"))
    if key is None and info and str(info.get("board", "")).startswith("sim"):
        from .cmd_sim import SIM_FACTORY_KEY

        log("note: virtual device: using the documented simulation factory key")
        key = bytes.fromhex(SIM_FACTORY_KEY)
    return key
