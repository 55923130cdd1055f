"""Factory provisioning of a device's identity over the serial service protocol (GGSP/1).

Sequence (docs/identity.md, "Factory provisioning"):
  1. ID?            read what the device holds; a locked device is left alone (ok when it
                    carries the label's identifier, refused otherwise)
  2. AUTH           factory mode by challenge-response with the factory key, unless the
                    operator held the button at power-up (then the device is already in it)
  3. PROV {json}    identity fields + the 32-byte secret (mid/high) as hex
  4. ID?            read back; every field must equal what was sent and the identifier
                    must equal the label's, otherwise nothing is locked
  5. PROV LOCK <id> lock (the device checks the identifier again)
  6. ID?            confirm locked; AUTH END

The same sequence runs against an IdentityStore directly (provision_store) for benches
without a console. Secrets are never printed: they go to the key-escrow file the platform
imports (mode 0600), and the device reports only key_id.

    python -m gasguard_tools.factory --port /dev/ttyUSB0 --id 88.118.8/GDH.240915.00123F \\
        --model GG-200 --hw-rev 1.2 --escrow keys.csv [--factory-key HEX]
"""

import argparse
import json
import os
import sys
import time

from . import FIRMWARE
from .runtime import ToolError

if str(FIRMWARE) not in sys.path:
    sys.path.insert(0, str(FIRMWARE))

from gasguard.identifier import IdentifierError, factory_serial, parse, validate  # noqa: E402
from gasguard.id_admin import FACTORY_FIELDS, check_fields, check_secret  # noqa: E402
from gasguard.identity import IdentityError, key_fingerprint  # noqa: E402

SERVICE_LINE_MAX = 256  # the device console's default line_max (docs/service-protocol.md)


from .serialdev import DeviceError, ServiceClient, factory_key  # noqa: E402  (the TOOLS engineer's client)


# ---- the label check ----------------------------------------------------------------------


def check_label_matches(device_id, label_id):
    """Refuse (ToolError) unless the device's identifier equals the label's, both valid."""
    try:
        validate(label_id)
    except (IdentifierError, TypeError) as e:
        raise ToolError("label identifier %r is not valid: %s" % (label_id, e))
    if device_id is None:
        raise ToolError("the device has no identifier yet (not provisioned)")
    if device_id != label_id:
        raise ToolError("device identifier %s differs from the label %s: not locking"
                        % (device_id, label_id))
    return True


def read_device_info(port_or_client, baud=115200):
    """The device's ID? reply (dict)."""
    if hasattr(port_or_client, "cmd"):
        return port_or_client.cmd("ID?")
    with ServiceClient.open(port_or_client, baud) as c:
        return c.cmd("ID?")


def check_label_data(info, label):
    """Compare a device's ID? reply with the label's data (id always; model, tier, hw_rev,
    qr_template when the label gives them: the QR printed must be the one the device shows). Refuses (ToolError) naming every field that differs."""
    check_label_matches(info.get("id") if info.get("provisioned", True) else None, label["id"])
    bad = [k for k in ("model", "tier", "hw_rev", "qr_template")
           if label.get(k) and info.get(k) != label[k]]
    if bad:
        raise ToolError("device %s differs from the label in %s: %s"
                        % (label["id"], ", ".join(bad),
                           "; ".join("%s %r on the device, %r on the label" % (k, info.get(k), label[k])
                                     for k in bad)))
    return True


def fields_for(identifier, model, hw_rev, qr_template="{id}", serial=None):
    """The factory record for an identifier: tier, kind, dates and serial come from it."""
    try:
        p = parse(identifier)
    except IdentifierError as e:
        raise ToolError("identifier %r: %s" % (identifier, e))
    d = p["date"]
    f = {
        "id": identifier,
        "serial": serial or factory_serial(identifier),
        "model": model,
        "tier": p["tier"],
        "kind": p["kind"],
        "hw_rev": hw_rev,
        "mfg_date": "20%s-%s-%s" % (d[0:2], d[2:4], d[4:6]),
        "qr_template": qr_template,
    }
    try:
        return check_fields(f)
    except IdentityError as e:
        raise ToolError(str(e))


def compact_fields(fields):
    """The fields to send: those the device derives from the identifier are left out when
    they equal the derived value (keeps PROV within the console's 256-byte lines)."""
    derived = check_fields({"id": fields["id"], "model": fields["model"], "hw_rev": fields["hw_rev"]})
    return {k: v for k, v in fields.items() if k in ("id", "model", "hw_rev") or derived[k] != v}


def new_secret(tier):
    return None if tier == "L" else os.urandom(32)


# ---- GGSP/1 client ------------------------------------------------------------------------


class Link:
    """Minimal GGSP/1 request/reply over a stream with write(bytes) and readline() -> bytes.

    Used in-process (tests drive the firmware's Service through a SimConsole); real ports
    use serialdev.ServiceClient. Both offer cmd(line) -> dict or raise DeviceError.
    Every request is tagged (#n) so stray output (boot banner, logs) is skipped.
    """

    def __init__(self, stream, timeout_s=3.0, line_max=SERVICE_LINE_MAX):
        self.stream = stream
        self.line_max = line_max
        self.timeout_s = timeout_s
        self._tag = 0

    def cmd(self, line):
        check_line(line, self.line_max)
        return self.request(line)

    def request(self, line):
        self._tag += 1
        tag = "#%d" % self._tag
        out = ("%s %s\n" % (tag, line)).encode()
        self.stream.write(out)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            raw = self.stream.readline()
            if not raw:
                continue
            text = raw.decode("ascii", "replace").strip()
            if not text.startswith(tag + " "):
                continue
            rest = text[len(tag) + 1:]
            if rest.startswith("OK"):
                body = rest[2:].strip()
                return json.loads(body) if body else {}
            if rest.startswith("ERR"):
                parts = rest.split(None, 2)
                raise DeviceError(parts[1] if len(parts) > 1 else "?",
                                  parts[2] if len(parts) > 2 else "", line.split(" ")[0])
            raise ToolError("unexpected reply %r" % text)
        raise ToolError("no reply to %s within %.1f s" % (line.split()[0], self.timeout_s))


TAG_ROOM = 12  # "#ssss-nnnnn " the client puts in front of every request


def check_line(line, line_max):
    if len(line) + TAG_ROOM > line_max:
        raise ToolError("request of %d bytes is longer than the device console accepts (%d); "
                        "a shorter qr_template or a larger service line_max is needed"
                        % (len(line) + TAG_ROOM, line_max))


class _Checked:
    """A ServiceClient with the request length checked before sending."""

    def __init__(self, client, line_max):
        self.client, self.line_max = client, line_max

    def cmd(self, line):
        check_line(line, self.line_max)
        return self.client.cmd(line)


def read_device_identifier(port_or_client, baud=115200):
    """The identifier the device reports with ID? (None when not provisioned)."""
    info = read_device_info(port_or_client, baud)
    return info.get("id") if info.get("provisioned") else None


def _compare(sent, got):
    bad = [k for k in FACTORY_FIELDS if got.get(k) != sent[k]]
    if bad:
        raise ToolError("read-back differs in %s: not locking" % ", ".join(bad))


def provision_link(link, fields, secret, label_id, factory_key=None, log=print):
    """The whole factory sequence over a GGSP link. Returns the final ID? reply."""
    fields = check_fields(dict(fields)) if isinstance(fields, dict) else fields
    check_secret(fields["tier"], secret)
    check_label_matches(fields["id"], label_id)
    info = link.cmd("ID?")
    if info.get("locked"):
        check_label_matches(info.get("id"), label_id)
        log("already provisioned and locked as %s" % label_id)
        return info
    fq = link.cmd("FACTORY?")
    if not fq.get("factory"):
        if factory_key is None:
            raise ToolError("the device is not in factory mode: hold its button at power-up, "
                            "or give the factory key")
        from gasguard.service_factory import auth_response

        ch = link.cmd("AUTH")
        link.cmd("AUTH " + auth_response(factory_key, ch["nonce"], ch.get("id")))
        log("factory mode (challenge-response)")
    body = compact_fields(fields)
    if secret is not None:
        body["secret"] = secret.hex()
    link.cmd("PROV " + json.dumps(body, separators=(",", ":"), sort_keys=True))
    log("written %s" % fields["id"] + ("" if secret is None else " key_id %s" % key_fingerprint(secret)))
    back = link.cmd("ID?")
    _compare(fields, back)
    if back.get("key_id") not in (None, key_fingerprint(secret) if secret else None):
        raise ToolError("device key_id %s is not the key written: not locking" % back.get("key_id"))
    check_label_matches(back.get("id"), label_id)
    link.cmd("PROV LOCK " + label_id)
    final = link.cmd("ID?")
    if not final.get("locked"):
        raise ToolError("device did not report locked after PROV LOCK")
    try:
        link.cmd("AUTH END")
    except DeviceError:
        pass
    log("locked %s" % label_id)
    return final


def provision_store(ids, fields, secret, label_id, log=print):
    """The same sequence against an IdentityStore (no console): write, read back, verify, lock."""
    fields = check_fields(dict(fields))
    check_secret(fields["tier"], secret)
    check_label_matches(fields["id"], label_id)
    if ids.locked:
        rec = ids.load()
        check_label_matches(rec["id"] if rec else None, label_id)
        log("already provisioned and locked as %s" % label_id)
        return ids.info()
    ids.provision(fields, secret)
    back = ids.load()
    _compare(fields, back)
    if secret is not None and ids.key_id() != key_fingerprint(secret):
        raise ToolError("stored key differs from the key written: not locking")
    check_label_matches(back["id"], label_id)
    ids.lock(label_id)
    log("locked %s" % label_id)
    return ids.info()


def escrow(path, identifier, secret):
    """Append id,key_hex to the platform's key-import file (created 0600)."""
    if secret is None:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write("%s,%s,%s\n" % (identifier, key_fingerprint(secret), secret.hex()))


def add_arguments(p):
    """`gasguard provision` (and `python -m gasguard_tools.factory`)."""
    p.add_argument("--port", required=True)
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--id", required=True, help="the identifier on the label")
    p.add_argument("--model", required=True)
    p.add_argument("--hw-rev", required=True)
    p.add_argument("--template", default="{id}", help="QR template stored on the device")
    p.add_argument("--escrow", help="key-escrow CSV for the platform (required for M/H)")
    p.add_argument("--factory-key", help="hex factory key for AUTH (default: $GASGUARD_FACTORY_KEY; "
                   "without one the device must be in factory mode by its button)")
    p.add_argument("--line-max", type=int, default=SERVICE_LINE_MAX,
                   help="the device's service line_max (default %d)" % SERVICE_LINE_MAX)
    p.add_argument("--json", action="store_true",
                   help="the result as one JSON line on stdout (the steps go to stderr)")


def run(a):
    log = print
    if getattr(a, "json", False):
        def log(msg):
            print(msg, file=sys.stderr)
    try:
        fields = fields_for(a.id, a.model, a.hw_rev, a.template)
        secret = new_secret(fields["tier"])
        if secret is not None and not a.escrow:
            raise ToolError("tier %s needs --escrow (the platform must receive the key)" % fields["tier"])
        client = ServiceClient.open(a.port, a.baud)
        fkey = factory_key(a, client.hello(), log=log)
        link = _Checked(client, a.line_max)
        # escrow first: a key the platform never received must never be locked into a device
        # (a row for a key that ends up unused is harmless: its key_id matches no device)
        if a.escrow:
            escrow(a.escrow, a.id, secret)
        provision_link(link, fields, secret, a.id, fkey, log=log)
    except (ToolError, IdentityError, ValueError, OSError) as e:
        print("factory: error: %s" % e, file=sys.stderr)
        return 1  # a device or input problem (usage errors are argparse's: 2)
    if getattr(a, "json", False):
        print(json.dumps({"id": a.id, "tier": fields["tier"], "locked": True,
                          "key_id": key_fingerprint(secret) if secret is not None else None}))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m gasguard_tools.factory",
                                description="provision and lock a device's identity over serial")
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
