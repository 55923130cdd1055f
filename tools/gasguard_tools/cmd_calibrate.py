"""`gasguard calibrate --port PORT`: two-point calibration with reference gas, certificate.

For each channel (ch4, co): zero gas -> wait stable -> CAL ZERO; span gas -> wait stable
-> CAL SPAN; CAL COMMIT; read back (CAL?) and compare with what was measured; verify the
reading at the span gas against the reference within tolerance; CAL REVERT if it is out.
Writes a certificate (JSON for the line database + HTML with the response plots).

The device keeps the previous calibration until CAL COMMIT and can revert one commit, so
an operator error, a refused value or a device that stops answering before the commit
leaves the old calibration in force. The procedure and defaults: docs/calibration-procedure.md.
"""

import datetime
import getpass
import json
import os
import sys
import time
from pathlib import Path

from . import VERSION, i18n
from .runtime import ToolError, UsageError
from .serialdev import DeviceError, NoAnswer, ServiceClient, factory_key

GASES = ("ch4", "co")
UNITS = {"ch4": "ppm CH4", "co": "ppm CO"}
DEFAULT_SPAN = {"ch4": 5000.0, "co": 100.0}  # 10 %LEL methane (EN 50194 test gas class), 100 ppm CO


class Aborted(ToolError):
    pass


def add_arguments(p):
    p.add_argument("--port", required=True, help="serial port of the device")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for each answer")
    p.add_argument("--factory-key", help="factory key in hex (default: $GASGUARD_FACTORY_KEY)")
    p.add_argument("--channels", default=None, help="comma list (default: every channel the device has)")
    p.add_argument("--zero-gas", default=None,
                   help="the zero gas used, recorded on the certificate (e.g. 'synthetic air')")
    p.add_argument("--span-ppm", action="append", default=[], metavar="CH=PPM",
                   help="span gas concentration per channel, e.g. ch4=5000 (repeatable or comma list)")
    p.add_argument("--span-gas-lot", default="", help="reference gas cylinder lot number")
    p.add_argument("--span-gas-cert", default="", help="the span gas cylinder's certificate number")
    p.add_argument("--span-gas-uncertainty", type=float, default=None, metavar="PCT",
                   help="the span gas certificate's expanded uncertainty, %% (k = 2)")
    p.add_argument("--reference-instrument", default="",
                   help="reference instrument (make, model, serial, its calibration due date)")
    p.add_argument("--ambient-temp", type=float, default=None, metavar="C",
                   help="ambient temperature during the calibration, °C")
    p.add_argument("--ambient-rh", type=float, default=None, metavar="PCT",
                   help="ambient relative humidity during the calibration, %%")
    p.add_argument("--interval-months", type=int, default=12,
                   help="calibration interval: the certificate's due date (default 12 months)")
    p.add_argument("--pdf", action="store_true", help="also print the certificate to PDF (chromium)")
    i18n.add_argument(p)
    p.add_argument("--operator", default=None,
                   help="operator name (default: $GASGUARD_OPERATOR; without one the certificate "
                        "is not valid for release)")
    p.add_argument("--yes", action="store_true", help="non-interactive: do not wait for Enter")
    p.add_argument("--out", default="certificates", help="folder for the certificates")
    p.add_argument("--window", type=float, default=20.0,
                   help="stability window in seconds (default 20)")
    p.add_argument("--tolerance-uv", type=int, default=2000,
                   help="stable when the signal moves less than this over the window (µV, default 2000)")
    p.add_argument("--stable-timeout", type=float, default=300.0,
                   help="give up when not stable within this many seconds (default 300)")
    p.add_argument("--warmup-timeout", type=float, default=900.0,
                   help="wait at most this long for the sensor warm-up (default 900 s)")
    p.add_argument("--verify-pct", type=float, default=5.0,
                   help="verification tolerance, %% of the reference (default 5)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    p.add_argument("--json", action="store_true",
                   help="the result as one JSON line on stdout (the steps go to stderr)")
    p.add_argument("--simulate-gas", action="store_true",
                   help="virtual devices only: apply the gases with SIM GAS instead of asking")


def parse_span(items):
    out = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise UsageError("--span-ppm expects CH=PPM, e.g. ch4=5000 (got %r)" % part)
            ch, v = part.split("=", 1)
            ch = ch.strip().lower()
            if ch not in GASES:
                raise UsageError("--span-ppm: unknown channel %r (ch4 or co)" % ch)
            try:
                ppm = float(v)
            except ValueError:
                raise UsageError("--span-ppm: %r is not a number" % v)
            if not ppm > 0:
                raise UsageError("--span-ppm: the span gas concentration must be positive")
            out[ch] = ppm
    return out


class Calibrator:
    def __init__(self, dev, args, say=print, ask=input):
        self.dev = dev
        self.args = args
        self.say = say
        self.ask = ask
        self.trace = {}  # gas -> [(t_s, raw_uv, ppm)]
        self.phases = {}  # gas -> [(t0, t1, label)]
        self.t0 = time.monotonic()
        self.results = {}
        self.step = "start"
        self.tty = sys.stdout.isatty()  # progress bars only on a terminal
        self._last_line = -1e9

    def now(self):
        return time.monotonic() - self.t0

    def prompt(self, text):
        if self.args.yes:
            self.say(text + "  [--yes: continuing]")
            return
        try:
            ans = self.ask(text + "  Press Enter when ready (q to abort): ")
        except EOFError:
            raise Aborted("no operator input (use --yes for unattended runs)")
        if ans.strip().lower() in ("q", "quit", "abort"):
            raise Aborted("aborted by the operator")

    def apply_gas(self, gas, ppm, what):
        if self.args.simulate_gas:
            self.dev.cmd("SIM GAS %s %s" % (gas, ppm))
            self.say("[simulation] %s set to %s ppm at the virtual sensor" % (gas, ppm))
            return
        self.prompt("Apply %s to the %s sensor (%s)." % (what, gas.upper(), UNITS[gas]))

    def read(self, gas):
        r = self.dev.cmd("READ?")
        if gas not in r:
            raise ToolError("the device has no %s channel" % gas)
        c = r[gas]
        self.trace.setdefault(gas, []).append((self.now(), c["raw_uv"], c["ppm_x10"] / 10.0))
        return c

    def wait_warm(self, gases):
        deadline = time.monotonic() + self.args.warmup_timeout
        shown = False
        while True:
            r = self.dev.cmd("READ?")
            warm = [g for g in gases if r.get(g, {}).get("warming_up")]
            if not warm:
                return
            if not shown:
                self.say("sensors warming up (%s): waiting ..." % ", ".join(warm))
                shown = True
            if self.args.simulate_gas:
                self.dev.cmd("SIM ADVANCE 30")  # a virtual device need not warm up in real time
                continue
            if time.monotonic() > deadline:
                raise ToolError("the sensors are still warming up after %.0f s" % self.args.warmup_timeout)
            time.sleep(self.args.interval)

    def wait_stable(self, gas, label):
        """Wait until the raw signal spans <= tolerance over the window; return the last reading."""
        a = self.args
        start = self.now()
        deadline = time.monotonic() + a.stable_timeout
        window = []
        while True:
            c = self.read(gas)
            if c.get("fault") not in (None, "cal_missing", "end_of_life"):
                raise ToolError("%s sensor fault during %s: %s" % (gas, label, c["fault"]))
            t = self.now()
            window.append((t, c["raw_uv"]))
            # keep the newest sample at or before the window start, so the window is covered
            while len(window) > 1 and window[1][0] <= t - a.window:
                window.pop(0)
            span = max(v for _, v in window) - min(v for _, v in window)
            covered = len(window) > 1 and t - window[0][0] >= a.window
            frac = min(1.0, (t - start) / max(a.window, 1e-9))
            bar = "#" * int(frac * 20)
            line = "  %s %-5s %9d uV  moved %6d uV over %4.0f s" % (
                label, gas, c["raw_uv"], span, t - window[0][0])
            if self.tty:  # a bar redrawn in place; a pipe or a log gets one line per 10 s
                self.say(line + " [%-20s]" % bar, end="\r")
            elif t - self._last_line >= 10.0 or (covered and span <= a.tolerance_uv):
                self._last_line = t
                self.say(line)
            if covered and span <= a.tolerance_uv:
                if self.tty:
                    self.say("")
                self.phases.setdefault(gas, []).append((window[0][0], t, label))
                return c
            if time.monotonic() > deadline:
                if self.tty:
                    self.say("")
                raise ToolError("%s signal did not become stable within %.0f s (moved %d uV, "
                                "tolerance %d uV): check the gas flow and the sensor"
                                % (gas, a.stable_timeout, span, a.tolerance_uv))
            time.sleep(a.interval)

    def channel(self, gas, span_ppm, date, operator):
        a = self.args
        res = {"gas": gas, "span_ppm": span_ppm, "result": "fail"}
        self.results[gas] = res
        self.step = "%s zero" % gas
        self.apply_gas(gas, 0, "zero gas (%s)" % (a.zero_gas or "clean air"))
        self.wait_stable(gas, "zero")
        z = self.dev.cmd("CAL ZERO %s" % gas)
        res["zero_uv"] = z["zero_uv"]
        self.say("zero %s taken: %d uV" % (gas, z["zero_uv"]))
        self.step = "%s span" % gas
        self.apply_gas(gas, span_ppm, "span gas %s ppm" % span_ppm)
        self.wait_stable(gas, "span")
        s = self.dev.cmd("CAL SPAN %s %s" % (gas, span_ppm))
        res["span_uv"] = s["span_uv"]
        res["gain_pct"] = s.get("gain_pct")
        self.say("span %s taken: %d uV at %s ppm (sensitivity %s %% of nominal)"
                 % (gas, s["span_uv"], span_ppm, s.get("gain_pct")))
        self.step = "%s commit" % gas
        meta = {"date": date, "operator": operator[:32]}
        c = self.dev.cmd("CAL COMMIT " + json.dumps(meta))
        committed = c["committed"][gas]
        res["committed"] = True
        self.step = "%s verify" % gas
        back = self.dev.cmd("CAL?")["channels"].get(gas)
        want = {"zero_uv": res["zero_uv"], "span_uv": res["span_uv"],
                "span_ppm_x10": int(span_ppm * 10 + 0.5)}
        if back is None or any(back.get(k) != v for k, v in want.items()) or back != committed:
            self._revert(gas, "read-back differs from what was measured (%r)" % (back,))
        res["record"] = back
        # the span gas is still applied: the calibrated reading must match the reference
        time.sleep(a.interval)
        got = self.wait_stable(gas, "verify")["ppm_x10"] / 10.0
        res["verify_ppm"] = got
        err = abs(got - span_ppm) / span_ppm * 100.0
        res["verify_error_pct"] = round(err, 2)
        if err > a.verify_pct:
            self._revert(gas, "reads %.1f ppm at %.1f ppm reference (%.1f %% off, tolerance %.1f %%)"
                         % (got, span_ppm, err, a.verify_pct))
        self.say("verified %s: reads %.1f ppm at %.1f ppm reference (%.2f %%)  PASS"
                 % (gas, got, span_ppm, err))
        res["result"] = "pass"
        self.step = "%s purge" % gas
        self.apply_gas(gas, 0, "zero gas again to purge (remove the span gas)")
        return res

    def _revert(self, gas, why):
        try:
            self.dev.cmd("CAL REVERT")
            self.results[gas]["reverted"] = True
            msg = "previous calibration restored"
        except (DeviceError, NoAnswer) as e:
            msg = "COULD NOT restore the previous calibration (%s): recalibrate" % e
        self.results[gas]["reason"] = why
        raise ToolError("%s verification failed: %s; %s" % (gas, why, msg))


def run(args):
    spans = parse_span(args.span_ppm)
    # no login-name fallback: `root` on a line PC names nobody (the certificate needs a person)
    operator = args.operator or os.environ.get("GASGUARD_OPERATOR") or ""
    if args.yes and not args.simulate_gas and not args.zero_gas:
        raise UsageError("non-interactive mode needs --zero-gas (what is on the sensor for the zero)")
    if args.window < 0 or args.interval <= 0 or args.stable_timeout <= 0:
        raise UsageError("--window, --interval and --stable-timeout must be positive")
    if args.ambient_temp is not None and not -40 <= args.ambient_temp <= 85:
        raise UsageError("--ambient-temp %s °C is outside -40..85" % args.ambient_temp)
    if args.ambient_rh is not None and not 0 <= args.ambient_rh <= 100:
        raise UsageError("--ambient-rh %s %% is outside 0..100" % args.ambient_rh)
    if args.span_gas_uncertainty is not None and not 0 < args.span_gas_uncertainty < 50:
        raise UsageError("--span-gas-uncertainty must be a percentage above 0 and below 50")
    if not 1 <= args.interval_months <= 60:
        raise UsageError("--interval-months must be 1..60")
    out = Path(args.out)
    dev = ServiceClient.open(args.port, args.baud, args.timeout)

    def say(msg, end="\n"):
        print(msg, end=end, flush=True, file=sys.stderr if args.json else sys.stdout)

    cal = Calibrator(dev, args, say=say)
    info = ident = None
    cert = None
    rc = 1
    try:
        info = dev.hello()
        ident = dev.cmd("ID?")
        say("device: %s  (%s %s, fw %s)" % (ident.get("id") or "NOT PROVISIONED", info.get("kind"),
                                            info.get("tier"), info.get("fw")))
        if not ident.get("provisioned"):
            say("warning: the device has no identity yet: the certificate will say NOT VALID "
                "FOR RELEASE")
        elif not ident.get("locked"):
            say("warning: the device identity is not locked: the certificate will say NOT VALID "
                "FOR RELEASE")
        r = dev.cmd("READ?")
        have = [g for g in GASES if g in r]
        gases = have if not args.channels else [g.strip().lower() for g in args.channels.split(",")]
        for g in gases:
            if g not in have:
                raise ToolError("the device has no %s channel (it has %s)" % (g, ", ".join(have)))
        for g in gases:
            if g not in spans:
                if args.yes:
                    spans[g] = DEFAULT_SPAN[g]
                    say("%s span gas: %s ppm (default)" % (g, spans[g]))
                else:
                    txt = input("%s span gas concentration in ppm [%s]: " % (g.upper(), DEFAULT_SPAN[g]))
                    spans[g] = parse_span(["%s=%s" % (g, txt.strip() or DEFAULT_SPAN[g])])[g]
        st = dev.cmd("FACTORY?")
        if not st.get("factory"):
            key = factory_key(args, info, log=say)
            if key is None:
                raise ToolError("factory mode needed: give --factory-key or set GASGUARD_FACTORY_KEY "
                                "(or hold the device button while powering it up)")
            try:
                dev.enter_factory(key)
            except DeviceError as e:
                if e.code == "E_AUTH":
                    raise ToolError("wrong factory key: the device refused the response (E_AUTH). "
                                    "Nothing was changed.")
                if e.code == "E_LOCKOUT":
                    raise ToolError("the device locks factory access after repeated wrong keys: %s"
                                    % e.message)
                raise
        say("factory mode: on")
        dev.cmd("CAL ABORT")  # forget anything half-staged by an earlier, interrupted run
        cal.wait_warm(gases)
        date = int(datetime.date.today().strftime("%Y%m%d"))
        for g in gases:
            say("--- channel %s: span gas %s ppm ---" % (g, spans[g]))
            # the device's record needs a name: the login stands in, marked as such
            cal.channel(g, spans[g], date, operator or "login:" + getpass.getuser())
        rc = 0
        say("calibration PASSED for %s" % ", ".join(gases))
    except NoAnswer as e:
        committed = [g for g, r in cal.results.items() if r.get("committed")]
        tail = ("nothing was committed: the previous calibration is intact" if not committed
                else "channel(s) %s had been committed before; check with `gasguard diag status`"
                % ", ".join(committed))
        msg = "the device stopped answering during %s; %s" % (cal.step, tail)
        cert = _finish(cal, args, info, ident, spans, operator, out, error=msg) if info else None
        raise ToolError(msg + ("; certificate (FAIL): %s" % cert if cert else ""))
    except (DeviceError, Aborted, ToolError) as e:
        if isinstance(e, DeviceError):
            msg = "the device refused the %s: %s %s" % (cal.step, e.code, e.message)
        else:
            msg = str(e)
        try:
            dev.cmd("CAL ABORT")
        except ToolError:
            pass
        if not any(r.get("reverted") for r in cal.results.values()):
            msg += "; the previous calibration of the current channel is intact"
        cert = _finish(cal, args, info, ident, spans, operator, out, error=msg) if cal.results else None
        raise ToolError(msg + ("; certificate (FAIL): %s" % cert if cert else ""))
    except KeyboardInterrupt:
        try:
            dev.cmd("CAL ABORT", timeout=1.0)
        except ToolError:
            pass
        say("\ninterrupted: nothing further committed; the current channel keeps its previous calibration")
        raise
    finally:
        try:
            dev.cmd("AUTH END", timeout=1.0)
        except ToolError:
            pass
        dev.close()
    cert = _finish(cal, args, info, ident, spans, operator, out)
    say("certificate: %s (+ .html)" % cert)
    if args.json:
        doc = json.loads(Path(cert).read_text())
        print(json.dumps({"result": doc["result"], "certificate": str(cert), "number": doc["number"],
                          "device": doc["device"].get("id"), "channels": sorted(doc["channels"])}))
    return rc


def _finish(cal, args, info, ident, spans, operator, out, error=None):
    from . import certificate

    doc = certificate.build(
        device=ident or {}, info=info or {}, results=cal.results, spans=spans, operator=operator,
        zero_gas=args.zero_gas or ("simulated clean air" if args.simulate_gas else "clean air"),
        span_lot=args.span_gas_lot, settings={
            "window_s": args.window, "tolerance_uv": args.tolerance_uv,
            "verify_pct": args.verify_pct, "stable_timeout_s": args.stable_timeout},
        trace=cal.trace, phases=cal.phases, error=error, tool_version=VERSION,
        span_cert=args.span_gas_cert, span_gas_u_pct=args.span_gas_uncertainty,
        ambient={"temperature_c": args.ambient_temp, "humidity_pct": args.ambient_rh},
        reference_instrument=args.reference_instrument, interval_months=args.interval_months)
    path = certificate.write(doc, out, lang=i18n.resolve(getattr(args, "lang", None)),
                             pdf=getattr(args, "pdf", False))
    if doc["result"] == "not_valid_for_release":
        print("certificate %s: calibrated, NOT VALID FOR RELEASE: %s"
              % (doc["number"], "; ".join(doc["release_blocked_by"])), file=sys.stderr)
    return path
