"""Plot the CO time-to-alarm curve of each profile against its standard's windows.

    PYTHONPATH=tools:firmware python -m gasguard_tools.plot_co [OUT_DIR]

Writes docs/co_curve_cn_ul.png and docs/co_curve_en.png (committed). The curves are
computed from the firmware's own integer rate table (gasguard.co_alarm), i.e. exactly the
alarm times the detector produces at constant concentration.
"""

import sys
from pathlib import Path

from . import FIRMWARE, ROOT

if str(FIRMWARE) not in sys.path:
    sys.path.insert(0, str(FIRMWARE))

PLOTS = (("cn", "co_curve_cn_ul.png", "CN / UL profile: GB 15322.2-2019 CO clause + UL 2034"),
         ("en", "co_curve_en.png", "EN profile: EN 50291-1"))


def curve(pname):
    from gasguard import co_alarm, co_rates, profiles

    p = profiles.PROFILES[pname]
    rates = co_rates.build_rates(p["co_targets"], p["co_no_alarm_ppm"])
    pts = []
    for ppm in range(p["co_no_alarm_ppm"] + 1, co_alarm.PPM_MAX + 1):
        t = co_rates.alarm_time_s(rates, ppm)
        if t is not None:
            pts.append((ppm, t / 60.0))
    return p, pts


def plot(pname, out, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, pts = curve(pname)
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    ax.plot([x for x, _ in pts], [y for _, y in pts], color="#1f4e9a", lw=2,
            label="gasguard time to alarm (integer dose table)")
    top = 1000.0
    for ppm, lo, hi in p["co_windows"]:
        lo_m = lo / 60.0
        if hi is None:
            # "no alarm before lo"; 30 days is off the chart: the whole column is forbidden
            y0 = lo_m if lo_m < top else 0.3
            ax.vlines(ppm, y0, top, colors="#c0392b", lw=6, alpha=0.35)
            ax.annotate("%d ppm: no alarm %s" % (ppm, "for 30 days" if lo >= 86400 else
                                                  "before %d min" % lo_m),
                        (ppm, 0.4), textcoords="offset points", xytext=(-30, 0), fontsize=8,
                        color="#c0392b")
        else:
            ax.vlines(ppm, max(lo_m, 0.3), hi / 60.0, colors="#27ae60", lw=8, alpha=0.5)
            ax.annotate("%d ppm: %s%d min" % (ppm, "%d-" % lo_m if lo else "< ", hi / 60.0),
                        (ppm, hi / 60.0), textcoords="offset points", xytext=(6, 2),
                        fontsize=8, color="#1e7d45")
    nal = p["co_no_alarm_ppm"]
    ax.axvspan(10, nal, color="#bbbbbb", alpha=0.3, label="<= %d ppm: no dose, washout only" % nal)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(10, 1100)
    ax.set_ylim(0.3, top)
    ax.set_xlabel("CO concentration, ppm (constant exposure)")
    ax.set_ylabel("time to alarm, minutes")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.plot([], [], color="#27ae60", lw=8, alpha=0.5, label="standard's alarm window")
    ax.plot([], [], color="#c0392b", lw=6, alpha=0.35, label="standard's no-alarm zone")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(str(out), metadata={"Software": None})
    plt.close(fig)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out_dir = Path(argv[0]) if argv else ROOT / "docs"
    out_dir.mkdir(parents=True, exist_ok=True)
    for pname, fname, title in PLOTS:
        path = plot(pname, out_dir / fname, title)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
