"""`gasguard flash --port PORT --board BOARD`: MicroPython image (optional) + the gasguard app.

Steps (every one printed; --dry-run prints exactly the commands and runs nothing):
  1. --firmware FILE.bin: the device's records (:data/*, :config.json: identity,
     calibration, keys, counters, event log) are copied to the host and checked
     (SHA-256), then esptool erase-flash + write-flash at the chip's offset (CHIPS in
     flashing.py), then the records are written back and checked again. A board whose
     records cannot be saved is not erased, unless --discard-device-records says so.
  2. compile the device's deploy set (gasguard package: the modules its main.py can reach
     for its tier, docs/heap-budget.md) with mpy-cross -march=<the chip's arch> -O3 into
     build/flash/<board>
  3. maintenance mode: a running app is asked over the service protocol (factory mode,
     then MAINT); it reboots into the REPL with Ctrl-C enabled (docs/service-protocol.md)
  4. mpremote connect PORT resume ...: make folders, remove stale sources, copy the .mpy
     files to :lib/gasguard/ (one line per file with its size), the board files to :,
     the device config to :config.json
  5. check: the files on the board are the ones built (names and sizes)
  6. leave maintenance: reset (ESP32) / soft-reset (virtual board), wait for the app and
     check that it reports the new version: the version of the files on the flash, after a
     reset (the REPL's own interpreter may still hold the old modules: on a board main.py
     imports gasguard before its maintenance check). Then the free heap with the app
     running (gc.mem_free() after gc.collect()) is printed: the margin on the real chip.
`resume` keeps mpremote from soft-resetting on connect, which the unix port (the virtual
board) cannot survive and which would restart the app on an ESP32 mid-deploy.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import BOARDS, FIRMWARE, VERSION, flashing, i18n, work_dir
from .runtime import ToolError, UsageError, cross_argv, tool


def add_arguments(p):
    p.add_argument("--port", required=True, help="serial port of the board")
    p.add_argument("--board", required=True,
                   help="board folder under boards/ (esp32-detector, esp32-valve) or 'sim'")
    p.add_argument("--firmware", metavar="FILE.bin",
                   help="write this MicroPython image first (esptool); the device's records are "
                        "backed up and restored around the erase")
    p.add_argument("--discard-device-records", action="store_true",
                   help="with --firmware: erase without keeping the records (%s are lost)"
                        % flashing.LOST_WITHOUT_BACKUP)
    p.add_argument("--backup-dir", metavar="DIR",
                   help="where --firmware keeps the records (default: a new folder in the build "
                        "folder, printed)")
    p.add_argument("--chip", default="esp32", choices=sorted(flashing.CHIPS),
                   help="chip family: image offset and mpy-cross architecture (default esp32)")
    p.add_argument("--baud", type=int, default=460800, help="esptool baud rate")
    p.add_argument("--config", metavar="FILE.json", help="device config to install as :config.json")
    p.add_argument("--tier", choices=("low", "mid", "high"), default=None,
                   help="detector tier whose deploy set to install (default: detector.tier of "
                        "--config, else mid)")
    p.add_argument("--factory-key", help="factory key (hex) to enter maintenance mode "
                   "(default: $GASGUARD_FACTORY_KEY)")
    p.add_argument("--install-factory-key", metavar="HEX",
                   help="production line only: install this factory key on the board")
    p.add_argument("--build", default=None, help="build folder (default build/flash/<board>)")
    p.add_argument("--dry-run", action="store_true", help="print every command, run nothing")
    p.add_argument("--stay-in-maintenance", action="store_true",
                   help="leave the board in the REPL after the deploy")
    p.add_argument("--json", action="store_true",
                   help="the result as one JSON line at the end (version, files, bytes, free heap)")
    i18n.add_argument(p)


def board_files(board):
    if board == "sim":
        return []  # the virtual board's main is boards/sim/virtual_device.py on the host
    bdir = BOARDS / board
    if not bdir.is_dir():
        known = sorted(set(p.name for p in BOARDS.iterdir() if p.is_dir() and p.name != "esp32-common")
                       | {"sim"})  # boards/sim is the virtual board's folder: listed once
        raise UsageError("unknown board %r (known: %s)" % (board, ", ".join(known)))
    files = sorted((BOARDS / "esp32-common").glob("*.py")) + sorted(bdir.glob("*.py"))
    return files


class Runner:
    def __init__(self, dry_run, say=print):
        self.dry_run = dry_run
        self.say = say

    def run(self, argv, check=True, timeout=120, quiet=False, echo=True):
        if echo:
            self.say("$ " + " ".join(shlex.quote(str(a)) for a in argv))
        if self.dry_run:
            return ""
        try:
            r = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ToolError("no answer within %d s: %s" % (timeout, " ".join(str(a) for a in argv[:6])))
        if r.returncode != 0 and check:
            raise ToolError("command failed (exit %d): %s\n%s" % (r.returncode, argv[0],
                                                                 (r.stderr or r.stdout)[-800:]))
        if not quiet and r.stdout.strip():
            self.say(r.stdout.rstrip())
        return r.stdout


def deploy_device(board, tier=None, config=None):
    """(device, tier) of the deploy set this board (and detector tier) runs; None for the
    virtual board."""
    if board == "esp32-valve":
        return "valve", "M"
    if board == "esp32-detector":
        if tier is None:
            tier = ((config or {}).get("detector") or {}).get("tier") or "mid"
        if tier not in ("low", "mid", "high"):
            raise UsageError("detector tier %r: expected low, mid or high" % (tier,))
        return "detector", tier
    return None


def deploy_files(board, tier=None, config=None):
    """The firmware sources this board (and detector tier) runs: its deploy set."""
    from .cmd_package import deploy_set

    dev = deploy_device(board, tier, config)
    if dev is None:  # the virtual board: the whole package (its host side picks the parts)
        return sorted((FIRMWARE / "gasguard").glob("*.py"))
    return [FIRMWARE / n for n in deploy_set(*dev)]


def compile_app(runner, build, srcs=None, arch="xtensawin"):
    """Compile the deploy set; unchanged modules are reused from the build folder.

    The commands are printed in source order before they run; the compilers then run in
    parallel silently, so their output never interleaves (a failure names its module)."""
    from concurrent.futures import ThreadPoolExecutor

    out = build / "lib" / "gasguard"
    if srcs is None:
        srcs = sorted((FIRMWARE / "gasguard").glob("*.py"))
    if not runner.dry_run:
        out.mkdir(parents=True, exist_ok=True)
        stamp = build / "arch"
        if not stamp.exists() or stamp.read_text().strip() != arch:
            for old in out.glob("*.mpy"):
                old.unlink()  # built for another chip: never reuse
            stamp.write_text(arch + "\n")
        wanted = {s.stem + ".mpy" for s in srcs}
        for old in out.glob("*.mpy"):
            if old.name not in wanted:
                old.unlink()  # a module that no longer exists must not be deployed
    jobs = []
    mpys = []
    for src in srcs:
        dst = out / (src.stem + ".mpy")
        mpys.append(dst)
        fresh = dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime
        if runner.dry_run or not fresh:
            name = ("gasguard/" if src.parent.name == "gasguard" else "") + src.name
            jobs.append(cross_argv(src, name, dst, ["-march=" + arch, "-O3"]))
    for argv in jobs:
        runner.say("$ " + " ".join(shlex.quote(str(a)) for a in argv))
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda argv: runner.run(argv, quiet=True, echo=False), jobs))
    if not jobs:
        runner.say("(all %d modules up to date in %s)" % (len(mpys), out))
    return mpys


def mpremote(port, *cmds):
    return tool("mpremote") + ["connect", port, "resume"] + list(cmds)


# run on the board before copying: folders, and no stale app files (.py would shadow .mpy)
PREPARE = (
    "import os\n"
    "for d in ('lib', 'lib/gasguard', 'data'):\n"
    "    try:\n        os.mkdir(d)\n    except OSError:\n        pass\n"
    "for n in os.listdir('lib/gasguard'):\n"
    "    if n.endswith('.py') or n.endswith('.mpy'):\n        os.remove('lib/gasguard/' + n)\n"
    "print('prepared')\n"
)


def enter_maintenance(args, say):
    """Ask a running app for maintenance mode; return True if the REPL is expected now."""
    from .serialdev import DeviceError, NoAnswer, ServiceClient, factory_key

    if args.dry_run:
        say("# serial: HELLO; FACTORY? / AUTH challenge-response; MAINT  (app reboots into the REPL)")
        return True
    try:
        dev = ServiceClient.open(args.port, timeout=2.0)
    except ToolError:
        raise
    with dev:
        try:
            info = dev.hello(attempts=2)
        except NoAnswer:
            say("no gasguard application answering: assuming the board is in the REPL already")
            return True
        say("application %s (fw %s) running: entering maintenance mode" % (info.get("kind"), info.get("fw")))
        if not dev.cmd("FACTORY?").get("factory"):
            key = factory_key(args, info, log=say)
            if key is None:
                raise ToolError("maintenance mode needs factory mode: give --factory-key or set "
                                "GASGUARD_FACTORY_KEY (or hold the button at power-up)")
            try:
                dev.enter_factory(key)
            except DeviceError as e:
                raise ToolError("the device refused the factory key (%s %s); nothing was changed"
                                % (e.code, e.message))
        dev.cmd("MAINT")
    time.sleep(1.0)  # reboot into the REPL
    return True


def run(args):
    def say(msg):  # with --json the steps go to stderr and stdout is the one JSON line
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    lang = i18n.resolve(getattr(args, "lang", None))
    target = flashing.chip(args.chip)
    runner = Runner(args.dry_run, say)
    files = board_files(args.board)
    device_cfg = None
    if args.config:
        try:
            device_cfg = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as e:
            raise UsageError("--config %s is not a readable JSON file: %s" % (args.config, e))
    if args.install_factory_key:
        try:
            if len(bytes.fromhex(args.install_factory_key)) < 16:
                raise ValueError("too short")
        except ValueError:
            raise UsageError("--install-factory-key must be at least 16 bytes of hex")
    if args.discard_device_records and not args.firmware:
        raise UsageError("--discard-device-records only means something with --firmware")
    build = Path(args.build) if args.build else work_dir("flash", args.board)
    scripts = build / "scripts"

    def remote(*cmds):
        return mpremote(args.port, *cmds)

    in_repl = False
    if args.firmware:
        if not args.dry_run and not Path(args.firmware).is_file():
            raise ToolError("firmware image %s not found" % args.firmware)
        if args.board == "sim":
            raise UsageError("--firmware is for real boards; the virtual board has no flash image")
        esptool = tool("esptool")
        if not args.dry_run and esptool[0] == sys.executable:
            try:
                import esptool as _  # noqa: F401
            except ImportError:
                raise ToolError("esptool is not installed: pip install 'gasguard[flash]'")
        records = {}
        if args.discard_device_records:
            say("# 1. --discard-device-records: the erase destroys %s; nothing is kept"
                % flashing.LOST_WITHOUT_BACKUP)
        else:
            say("# 1a. keep the device's records: maintenance mode, then copy :data/ and "
                ":config.json to the host")
            enter_maintenance(args, say)
            in_repl = True
            backup = Path(args.backup_dir) if args.backup_dir else build / (
                "records-" + time.strftime("%Y%m%dT%H%M%S"))
            try:
                records = flashing.backup_records(runner, remote, scripts, backup, say)
            except ToolError as e:
                raise ToolError("%s\n--firmware erases the whole flash; without a backup %s would "
                                "be lost. Nothing was erased. To flash anyway: "
                                "--discard-device-records" % (e, flashing.LOST_WITHOUT_BACKUP))
        say("# 1b. MicroPython image (%s: offset %s)" % (args.chip, target["offset"]))
        runner.run(esptool + ["--chip", args.chip, "--port", args.port, "erase-flash"], timeout=300)
        runner.run(esptool + ["--chip", args.chip, "--port", args.port, "--baud", str(args.baud),
                              "write-flash", "-z", target["offset"], args.firmware], timeout=600)
        time.sleep(0 if args.dry_run else 2.0)
        in_repl = True  # a fresh image has no app: it boots to the REPL
        if not args.discard_device_records:
            say("# 1c. write the records back and check them")
            flashing.restore_records(runner, remote, scripts, backup, records, say)
    say("# 2. compile the app for the target (%s, -O3): the deploy set of %s"
        % (target["arch"], args.board))
    srcs = deploy_files(args.board, args.tier, device_cfg if isinstance(device_cfg, dict) else None)
    mpys = compile_app(runner, build, srcs, target["arch"])
    dev = deploy_device(args.board, args.tier, device_cfg if isinstance(device_cfg, dict) else None)
    if dev is not None:
        # gasguard/names.mpy from the modules just compiled (gasguard_tools.prime): main.py
        # interns the boot's names first, while the heap is empty (docs/heap-budget.md)
        from .prime import write_names

        from .prime import primed

        net = not (isinstance(device_cfg, dict) and not device_cfg.get("net"))
        if primed(dev[0], dev[1], net):
            say("# 2b. gasguard/names.mpy: the names of the modules the %s %s loads at boot" % dev)
            if not runner.dry_run:
                mpys.append(write_names(build / "lib" / "gasguard", dev[0], dev[1],
                                        ["-march=" + target["arch"], "-O3"]))
    if not in_repl:
        say("# 3. maintenance mode")
        enter_maintenance(args, say)
    say("# 4. deploy with mpremote")
    runner.run(remote("run", flashing.script(runner, scripts, "prepare.py", PREPARE)))
    flashing.copy_with_progress(runner, remote("fs", "cp", *mpys, ":lib/gasguard/"), mpys, say)
    if files:
        flashing.copy_with_progress(runner, remote("fs", "cp", *files, ":"), files, say)
    if args.config:
        runner.run(remote("fs", "cp", args.config, ":config.json"))
    if args.install_factory_key:
        tmp = tempfile.NamedTemporaryFile(delete=False, suffix=".key")
        tmp.write(bytes.fromhex(args.install_factory_key))
        tmp.close()
        try:
            runner.run(remote("fs", "cp", tmp.name, ":data/factory.key"))
        finally:
            os.unlink(tmp.name)
    say("# 5. check the files on the board")
    flashing.check_files(runner, remote, scripts, "lib/gasguard", mpys)
    result = {"deployed": VERSION, "port": args.port, "board": args.board, "chip": args.chip,
              "files": len(mpys) + len(files),
              "bytes": 0 if args.dry_run else sum(Path(f).stat().st_size for f in mpys + files)}
    if args.stay_in_maintenance:
        found = flashing.version_on_flash(runner, remote, scripts)
        if not args.dry_run and found != VERSION:
            raise ToolError("the files on the board hold gasguard %s, expected %s" % (found, VERSION))
        say("board left in maintenance mode (REPL); `mpremote connect %s resume reset` starts the app"
            % args.port)
        return _done(args, result)
    say("# 6. leave maintenance mode: reset, the app boots from the files on the flash")
    if args.board == "sim":
        # Ctrl-B (friendly REPL) then Ctrl-D: a soft reset. On an ESP32 that re-runs main.py;
        # the unix port exits and the virtual board boots its application again.
        say("# serial: Ctrl-B Ctrl-D (soft reset)")
        if not args.dry_run:
            from .serialdev import _import_serial

            with _import_serial().serial_for_url(args.port, timeout=0.2) as ser:
                ser.write(b"\r\x02")
                time.sleep(0.2)
                ser.write(b"\x04")
                ser.flush()
    else:
        runner.run(remote("reset"), check=False)
    if args.dry_run:
        say("# serial: HELLO until the application answers with fw %s; STATUS? (free heap)" % VERSION)
        return 0
    from .serialdev import NoAnswer, ServiceClient

    with ServiceClient.open(args.port, timeout=2.0) as dev:
        try:
            info = dev.wait_for_boot(timeout=30)
        except NoAnswer:
            raise ToolError("the application did not come back after the reset (files of gasguard "
                            "%s are on the board; see its console)" % VERSION)
        if info.get("fw") != VERSION:
            raise ToolError("the application came back with fw %s, expected %s"
                            % (info.get("fw"), VERSION))
        free = dev.cmd("STATUS?").get("free_heap")
    result["free_heap"] = free
    say("deployed gasguard %s to %s (%s); application running" % (VERSION, args.port, args.board))
    say(i18n.t("free_heap_after", lang, free="?" if free is None else free))
    return _done(args, result)


def _done(args, result):
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0
