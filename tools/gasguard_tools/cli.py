"""`gasguard`: one command for the host tools, with subcommands like `esphome run`.

Each subcommand lives in its own module gasguard_tools.cmd_<name> exposing
  add_arguments(parser)  and  run(args) -> exit code.
Modules are imported only when their subcommand is used, so a missing optional
dependency of one tool never breaks the others.

Exit codes (docs/cli.md): 0 done, 1 a device or runtime error (ToolError: the device did
not answer, refused, a file is unreadable), 2 a usage error (argparse, UsageError),
130 interrupted (Ctrl-C). A closed pipe (`gasguard ... | head`) ends quietly.
"""

import argparse
import importlib
import os
import sys

from . import VERSION
from .runtime import ToolError, UsageError

SUBCOMMANDS = [
    ("sim", "run simulated devices on the real firmware"),
    ("replay", "replay a concentration timeline through the detector logic (certification pre-check)"),
    ("calibrate", "calibrate a device over serial with reference gas"),
    ("diag", "read status, log and live readings from a device over serial"),
    ("modbus", "read a device's Modbus register map over RS-485 (human table or --json)"),
    ("flash", "flash MicroPython and deploy the gasguard app to a board"),
    ("ports", "list serial ports and the boards on them (`--port auto` picks the only one)"),
    ("label", "make printable identifier labels (PNG/SVG with QR)"),
    ("provision", "write, verify and lock a device's identity at the factory (serial)"),
    ("monitor", "subscribe to a broker and print decoded device messages"),
    ("notify", "tell people (webhook, WeCom, DingTalk, e-mail, SMS, voice) about alarms, escalating"),
    ("package", "generate or check the per-device deploy sets: manifests and package.json files"),
]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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


def _quiet_stdout():
    """After a closed pipe: send what is left to /dev/null, so the interpreter's final
    flush cannot raise again (the Python docs' recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv=None):
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_ERROR


def _main(argv):
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    mod = getattr(args, "_module", None)
    if mod is None:
        print("gasguard %s: not available in this version" % args.command, file=sys.stderr)
        return EXIT_USAGE
    try:
        if getattr(args, "port", None) == "auto":
            from .cmd_ports import auto_port

            args.port = auto_port()
            print("gasguard %s: --port auto: %s" % (args.command, args.port), file=sys.stderr)
        return mod.run(args) or 0
    except UsageError as e:
        print("gasguard %s: error: %s" % (args.command, e), file=sys.stderr)
        return EXIT_USAGE
    except ToolError as e:
        print("gasguard %s: error: %s" % (args.command, e), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
