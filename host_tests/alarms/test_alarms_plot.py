"""The CO curve plot script runs and its curve is the firmware's own alarm times."""

from gasguard import profiles
from gasguard_tools import plot_co


def test_plot_co_writes_both_pngs(tmp_path):
    assert plot_co.main([str(tmp_path)]) == 0
    for _p, name, _t in plot_co.PLOTS:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000


def test_plotted_curve_passes_through_every_window():
    for pname in ("cn", "en"):
        p, pts = plot_co.curve(pname)
        t = dict(pts)
        for ppm, lo, hi in p["co_windows"]:
            if hi is None:
                assert ppm not in t or t[ppm] * 60 >= lo
            else:
                assert lo <= t[ppm] * 60 <= hi
    assert profiles.PROFILES["ul"]["co_targets"] is profiles.PROFILES["cn"]["co_targets"]
