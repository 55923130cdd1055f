"""Fuzzing of the scenario CSV parser (issue 15 item 6: every parser that takes outside
input): whatever the text, `gasguard replay` either runs a validated scenario or refuses it
with a ToolError naming the line, never another exception (a traceback instead of
"line N: ..."). Sized for CI; `--hypothesis-profile` or max_examples raise it."""

from hypothesis import HealthCheck, given, settings, strategies as st

from gasguard_tools.cmd_replay import DEVICES, parse_scenario
from gasguard_tools.runtime import ToolError

CELLS = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "5.5", "1e400", "nan", "inf", "abc", '"', '""', "ok", "open",
                     "stuck", "manual_reset", "\ufeff", "\x00", " ", "#", "1,2"]),
    st.text(max_size=6),
)


def _line(cols):
    return st.lists(CELLS, min_size=0, max_size=len(cols) + 2).map(",".join)


@st.composite
def scenarios(draw):
    device = draw(st.sampled_from(sorted(DEVICES)))
    spec = DEVICES[device]
    names = ["t_s"] + list(spec["numeric"]) + list(spec["text"]) + ["smoke", "t_s", ""]
    header = draw(st.lists(st.sampled_from(names), min_size=0, max_size=5))
    lines = [draw(st.sampled_from(["", "# c", "\ufeff"])) for _ in range(draw(st.integers(0, 2)))]
    lines.append(",".join(header))
    lines += draw(st.lists(st.one_of(_line(header), st.text(max_size=20)), max_size=8))
    return device, lines


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_text_is_a_scenario_or_a_refusal_that_names_the_line(case):
    device, lines = case
    try:
        rows, end_ms = parse_scenario(lines, device)
    except ToolError as e:
        assert str(e).startswith("line "), str(e)
        return
    assert rows and all(isinstance(r["t_ms"], int) for r in rows)
    ts = [r["t_ms"] for r in rows]
    assert ts == sorted(set(ts)) and end_ms >= ts[-1]
