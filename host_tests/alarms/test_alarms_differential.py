"""Generated scenarios through the detector on both interpreters: identical bytes."""

import json

from hypothesis import given, settings, strategies as st

from conftest import run_both

row = st.fixed_dictionaries(
    {"dt_s": st.integers(1, 400)},
    optional={
        "ch4_ppm_milli": st.integers(0, 30000).map(lambda v: v * 1000),
        "co_ppm_milli": st.integers(0, 800).map(lambda v: v * 1000),
        "ch4_sensor": st.sampled_from(["ok", "ok", "ok", "open", "short", "stuck"]),
        "co_sensor": st.sampled_from(["ok", "ok", "ok", "open", "short", "stuck"]),
        "supply_v_milli": st.integers(3800, 5200),
        "temp_c_milli": st.integers(-10, 50).map(lambda v: v * 1000),
        "button": st.sampled_from(["press", "long_press"]),
    },
)


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(["cn", "en", "ul"]), st.sampled_from(["low", "mid", "high"]),
       st.integers(0, 2**31 - 1), st.lists(row, min_size=1, max_size=12))
def test_detector_identical_on_both_interpreters(profile, tier, seed, rows):
    t = 0
    lines = [json.dumps({"device": "detector", "config": {"profile": profile, "tier": tier},
                         "seed": seed})]
    for r in rows:
        r = dict(r)
        r["t_ms"] = t * 1000
        t += r.pop("dt_s")
        lines.append(json.dumps(r))
    lines.append(json.dumps({"end_ms": t * 1000}))
    a, b = run_both("detector", ("\n".join(lines) + "\n").encode())
    assert a == b
    last = json.loads(a.decode().splitlines()[-1])
    assert last["event"] == "end" and last["t"] == t
