"""`gasguard`: one command for the host tools, with subcommands like `esphome run`.

Each subcommand lives in its own module gasguard_tools.cmd_<name> exposing
  add_arguments(parser)  and  run(args) -> exit code.
Modules are imported only when their subcommand is used, so a missing optional
dependency of one tool never breaks the others.
"""

import argparse
import importlib
import sys

from . import VERSION
from .runtime import ToolError

SUBCOMMANDS = [
    ("sim", "run simulated devices on the real firmware"),
    ("replay", "replay a concentration timeline through the detector logic (certification pre-check)"),
    ("calibrate", "calibrate a device over serial with reference gas"),
    ("diag", "read status, log and live readings from a device over serial"),
    ("flash", "flash MicroPython and deploy the gasguard app to a board"),
    ("label", "make printable identifier labels (PNG/SVG with QR)"),
    ("provision", "write, verify and lock a device's identity at the factory (serial)"),
    ("monitor", "subscribe to a broker and print decoded device messages"),
    ("notify", "tell people (webhook, WeCom, DingTalk, e-mail, SMS, voice) about alarms, escalating"),
    ("package", "generate or check the per-device deploy sets: manifests and package.json files"),
]


def _load(name):
    try:
        return importlib.import_module("gasguard_tools.cmd_" + name)
    except ModuleNotFoundError as e:
        if e.name == "gasguard_tools.cmd_" + name:
            return None
        raise


def build_parser(argv):
    p = argparse.ArgumentParser(prog="gasguard", description="gasguard host tools")
    p.add_argument("--version", action="version", version="gasguard " + VERSION)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in SUBCOMMANDS:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            mod = _load(name)
            if mod is not None:
                mod.add_arguments(sp)
                sp.set_defaults(_module=mod)
            else:
                sp.set_defaults(_module=None)
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    mod = getattr(args, "_module", None)
    if mod is None:
        print("gasguard %s: not available in this version" % args.command, file=sys.stderr)
        return 2
    try:
        return mod.run(args) or 0
    except ToolError as e:
        print("gasguard %s: error: %s" % (args.command, e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
