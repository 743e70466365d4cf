"""The scene-program grammar: round trips, synonyms, fences, every error kind, untrusted input."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igbench.program import (Obj, Program, ProgramError, format_program, parse, parse_lenient)
from igbench.task import load_task

TASK = load_task("clevr")
CUBE = "add(shape='cube', color='red', material='metal', size='large', loc=(+1.234, -2.051, +0.700), rotation=-0.312)"


def test_parses_the_canonical_example():
    (obj,) = parse(CUBE, TASK)
    assert obj.attrs == {"shape": "cube", "color": "red", "material": "metal", "size": "large"}
    assert obj.loc == (1.234, -2.051, 0.7)
    assert obj.rotation == (-0.312,)


def test_any_keyword_order_quotes_signs_blank_lines_and_fence():
    text = (
        "The scene can be produced with:\n```python\n"
        'add(loc=(1, -2.5, .7), size="big", material="shiny", color=\'blue\', shape="ball")\n'
        "\n"
        "add(shape='block', color='gray', material='matte', size='tiny', loc=(-0.0, +3, 0.247), rotation=+0.5)\n"
        "```\nSome trailing words."
    )
    sphere, cube = parse(text, TASK)
    assert sphere.attrs == {"shape": "sphere", "color": "blue", "material": "metal", "size": "large"}
    assert sphere.loc == (1.0, -2.5, 0.7) and sphere.rotation is None
    assert cube.attrs == {"shape": "cube", "color": "gray", "material": "rubber", "size": "small"}
    assert cube.rotation == (0.5,)


@pytest.mark.parametrize("synonym,field,canonical", [
    ("ball", "shape", "sphere"), ("block", "shape", "cube"), ("big", "size", "large"), ("tiny", "size", "small"),
    ("shiny", "material", "metal"), ("metallic", "material", "metal"), ("matte", "material", "rubber"),
    ("Metal", "material", "metal"), ("RED", "color", "red"),
])
def test_synonyms_and_case_are_normalised(synonym, field, canonical):
    attrs = {"shape": "cube", "color": "red", "material": "metal", "size": "large", field: synonym}
    text = "add(" + ", ".join(f"{k}='{v}'" for k, v in attrs.items()) + ", loc=(0, 0, 0.7))"
    (obj,) = parse(text, TASK)
    assert obj.attrs[field] == canonical
    assert f"{field}='{canonical}'" in format_program(Program([obj]), TASK)


def test_canonical_format_fixes_attribute_order_and_precision():
    obj = Obj({"size": "small", "material": "rubber", "color": "cyan", "shape": "cube"},
              {"rotation": (0.12345,), "loc": (1.0, -0.0001, 0.35)})
    assert format_program(Program([obj]), TASK) == (
        "add(shape='cube', color='cyan', material='rubber', size='small', loc=(+1.000, +0.000, +0.350), rotation=+0.123)"
    )
    assert "loc=(+1.00000, -0.00010, +0.35000)" in format_program(Program([obj]), TASK, precision=5)


objects = st.builds(
    lambda shape, color, material, size, loc, rot: Obj(
        {"shape": shape, "color": color, "material": material, "size": size},
        {"loc": loc, **({"rotation": (rot,)} if rot is not None else {})},
    ),
    st.sampled_from(TASK.categorical["shape"].values),
    st.sampled_from(TASK.categorical["color"].values),
    st.sampled_from(TASK.categorical["material"].values),
    st.sampled_from(TASK.categorical["size"].values),
    st.tuples(*[st.floats(-50, 50, allow_nan=False)] * 3),
    st.one_of(st.none(), st.floats(-3.2, 3.2, allow_nan=False)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(objects, max_size=12), st.integers(0, 6))
def test_round_trip_up_to_precision(items, precision):
    program = Program(items)
    text = format_program(program, TASK, precision)
    parsed = parse(text, TASK)
    assert len(parsed) == len(program)
    for got, want in zip(parsed, program):
        assert got.attrs == want.attrs
        assert got.numbers.keys() == want.numbers.keys()
        for name in want.numbers:
            for g, w in zip(got.numbers[name], want.numbers[name]):
                assert math.isclose(g, w, abs_tol=0.5 * 10**-precision + 1e-9)
    assert format_program(parsed, TASK, precision) == text


def test_empty_program_is_valid():
    assert len(parse("", TASK)) == 0
    assert len(parse("```python\n```", TASK)) == 0


LOC = "add(shape='cube', color='red', material='metal', size='large', loc="


@pytest.mark.parametrize("text,line,token,reason", [
    (LOC.replace("'red'", "'pink'") + "(1, 2, 0.7))", 1, "'pink'", "unknown color 'pink'"),
    (CUBE + "\nadd(shape='cube', colr='red')", 2, "colr", "unknown field 'colr' (did you mean 'color'?)"),
    ("add(shape='cube', color='red', material='metal', size='large')", 1, "add", "missing field 'loc'"),
    (LOC + "(1, 2))", 1, "(1, 2)", "must be a tuple of 3 numbers, got 2 values"),
    (LOC + "(1, 2, 3), loc=(4, 5, 6))", 1, "loc=(4", "duplicate field 'loc'"),
    ("add(shape=3, color='red', material='metal', size='large', loc=(1, 2, 3))", 1, "3,", "must be a quoted string"),
    (LOC + "(1, 2, 1e999))", 1, "1e999", "not finite"),
    (LOC + "(1, 2, x))", 1, "x)", "must hold number literals, got a name"),
    (LOC + "(1, 2, 3), rotation=True)", 1, "True", "must hold number literals"),
    ("remove(shape='cube')", 1, "remove", "expected a call add(name=value, ...)"),
    ("x = 1", 1, "x", "expected a call add"),
    ("add('cube')", 1, "'cube'", "positional arguments are not allowed"),
    ("add(**{'shape': 'cube'})", 1, "**", "'**' arguments are not allowed"),
    ("add(shape='cube', color='red'", 1, "(", "syntax error"),
    ("```python\n" + CUBE + "\n" + LOC.replace("'red'", "'pink'") + "(1, 2, 0.7))\n```", 3, "'pink'",
     "unknown color 'pink'"),
])
def test_errors_name_line_column_and_reason(text, line, token, reason):
    col = text.splitlines()[line - 1].index(token) + 1
    with pytest.raises(ProgramError) as err:
        parse(text, TASK)
    assert str(err.value).startswith(f"line {line}, col {col}: ")
    assert reason in str(err.value)


@pytest.mark.parametrize("payload", [
    "add(__import__('os').system('touch /tmp/igbench_pwned'))",
    "add(shape=__import__('os').system('touch /tmp/igbench_pwned'), color='red', material='metal', size='large', loc=(0, 0, 0))",
    "__import__('os').system('touch /tmp/igbench_pwned')",
    "add(shape='cube', color='red', material='metal', size='large', loc=(0, 0, (lambda: 0)()))",
    "import os",
])
def test_untrusted_code_is_a_parse_error_and_never_runs(payload, tmp_path):
    import os

    marker = "/tmp/igbench_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    with pytest.raises(ProgramError):
        parse(payload, TASK)
    assert not parse_lenient(payload, TASK).program.objects
    assert not os.path.exists(marker)


def test_absurd_input_is_rejected_cleanly():
    with pytest.raises(ProgramError, match="nested"):
        parse("add(" + "(" * 100_000 + ")", TASK)
    with pytest.raises(ProgramError, match="null bytes"):
        parse("add(shape='cube')\x00", TASK)
    with pytest.raises(ProgramError, match="longer than"):
        parse(CUBE * 10_000, TASK)


def test_lenient_keeps_valid_objects_and_lists_rejections():
    text = "\n".join([
        CUBE,
        "add(shape='cube', color='pink', material='metal', size='large', loc=(1, 2, 0.7))",
        "add(shape='sphere', color='red', material='rubber', size='small', loc=(0.5, 0.5, 0.35))",
        "add(shape='sphere', color='red', material='rubber', size='small', loc=(0.5, 0.5",  # cut off
    ])
    result = parse_lenient(text, TASK)
    assert [o.attrs["shape"] for o in result.program] == ["cube", "sphere"]
    assert [(r.line, r.reason.split(":")[0].split(";")[0]) for r in result.rejections] == [(2, "unknown color 'pink'"),
                                                                             (4, "syntax error")]


def test_lenient_keeps_valid_objects_when_a_line_is_not_python():
    result = parse_lenient(CUBE + "\nthis is not python at all\n" + CUBE, TASK)
    assert len(result.program) == 2
    assert [r.line for r in result.rejections] == [2]


def test_non_text_is_a_user_error():
    from igbench.errors import UserError

    with pytest.raises(UserError, match="must be text"):
        parse(None, TASK)
