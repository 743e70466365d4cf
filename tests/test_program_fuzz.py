"""Program text is untrusted model output: fuzz the parser with random text and with mutations of valid
programs. The lenient parse never raises, the strict parse raises nothing but ProgramError, and both
answer within a bounded time per input (hypothesis' deadline)."""
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from igbench.generators import sample_scene
from igbench.program import ProgramError, format_program, parse, parse_lenient
from igbench.task import load_task

TASKS = {name: load_task(name) for name in ("clevr", "dot2d")}
VALID = {name: [format_program(sample_scene(task, "val", i, 0).program, task) for i in range(5)]
         for name, task in TASKS.items()}

# The deadline is generous for a shared CPU; a parser gone quadratic on 30 KB of text would still miss it.
FUZZ = settings(max_examples=300, deadline=timedelta(seconds=2), derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Pieces a model (or an attacker) might write: the grammar's own tokens and Python that is not allowed.
TOKENS = ["add(", ")", "(", ",", "=", "'", '"', "\n", " ", "```", "```python\n", "#", "\\", "loc", "shape", "color",
          "'cube'", "'red'", "+", "-", "1.5", "1e999", "-1e999", "nan", "9" * 400, "0x1F", "1j", "True", "None",
          "**kw", "*args", "__import__('os')", "lambda: 0", "[1, 2, 3]", "{'a': 1}", "(" * 60, ")" * 60,
          "\x00", "\ud800", "\u200b", "é", "🙂", "add(add(", "f'{1}'", "b'x'", ":=", "...", "\t", "\r\n"]


def check(text: str, task) -> None:
    lenient = parse_lenient(text, task)
    for rejection in lenient.rejections:  # a reason is one readable line, whatever the text held
        assert rejection.line >= 1 and rejection.col >= 1 and 0 < len(rejection.reason) <= 300, rejection
    try:
        strict = parse(text, task)
    except ProgramError as err:
        assert str(err).startswith("line ")
        assert lenient.rejections or not lenient.program.objects, "strict rejected what lenient accepted whole"
        return
    # strict accepted: lenient agrees, object for object, without complaints
    assert not lenient.rejections
    assert lenient.program == strict


@FUZZ
@given(text=st.text(max_size=400), task=st.sampled_from(sorted(TASKS)))
@example(text="add(shape='cube', color='red', material='metal', size='large', loc=(" + "9" * 400 + ", 0, 0))",
         task="clevr")
@example(text="add(loc=(" + "9" * 400 + ", 0))", task="dot2d")
@example(text="add(shape='" + "x" * 5000 + "')", task="clevr")
@example(text="add(" + "q" * 5000 + "=1)", task="dot2d")
def test_random_text(text, task):
    check(text, TASKS[task])


@st.composite
def mutated(draw):
    task = draw(st.sampled_from(sorted(TASKS)))
    text = draw(st.sampled_from(VALID[task]))
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate"]))
        piece = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=8)))
        span = draw(st.integers(1, 20))
        if kind == "insert":
            text = text[:where] + piece + text[where:]
        elif kind == "delete":
            text = text[:where] + text[where + span:]
        elif kind == "replace":
            text = text[:where] + piece + text[where + span:]
        elif kind == "duplicate":
            text = text[:where] + text[where:where + span] * draw(st.integers(2, 50)) + text[where:]
        else:
            text = text[:where]
    return task, text


@FUZZ
@given(case=mutated())
def test_mutated_programs(case):
    task, text = case
    check(text, TASKS[task])


@FUZZ
@given(task=st.sampled_from(sorted(TASKS)), piece=st.sampled_from(TOKENS + ["add(loc=(1, 2))\n", "x" * 1000]),
       times=st.integers(1, 2000))
def test_long_repetitive_text(task, piece, times):
    check(piece * times, TASKS[task])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_valid_programs_survive_the_check(task):
    for text in VALID[task]:  # the property holds on the seeds of the mutations themselves
        assert len(parse(text, TASKS[task])) == len(parse_lenient(text, TASKS[task]).program) > 0
        check(text, TASKS[task])
