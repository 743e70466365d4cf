"""The scene program: the one representation that samplers, renderer, datasets, models and scorer share.

Text form, one call per object:

    add(shape='cube', color='red', material='metal', size='large', loc=(+1.234, -2.051, +0.700), rotation=-0.312)

Keyword arguments may come in any order, with single or double quotes, optional signs, blank lines, and
an optional fenced ```python block around the whole (as language models write it). The text is untrusted
model output, so it is never evaluated: `ast.parse` builds a syntax tree, and only `add(...)` calls whose
arguments are string, number or number-tuple literals are accepted. Everything else is an error that
names its line, column and reason.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field

from igbench.errors import UserError, choices, did_you_mean
from igbench.task import Task

MAX_PROGRAM_CHARS = 200_000
PRECISION = 3  # decimals of the numbers in program text
_FENCE = re.compile(r"^\s*```")


@dataclass
class Obj:
    """One object: categorical attributes and numeric fields, both keyed by the task's field names."""

    attrs: dict[str, str]
    numbers: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def loc(self) -> tuple[float, ...]:
        return self.numbers["loc"]

    @property
    def rotation(self) -> tuple[float, ...] | None:
        return self.numbers.get("rotation")


@dataclass
class Program:
    objects: list[Obj] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.objects)

    def __iter__(self):
        return iter(self.objects)


@dataclass(frozen=True)
class Rejection:
    """Why a piece of program text was not accepted, and where (1-based line and column)."""

    line: int
    col: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, col {self.col}: {self.reason}"


class ProgramError(UserError):
    def __init__(self, rejection: Rejection):
        super().__init__(str(rejection))
        self.rejection = rejection


@dataclass
class LenientParse:
    program: Program
    rejections: list[Rejection]


def parse(text: str, task: Task) -> Program:
    """Parse program text strictly: the first problem raises ProgramError('line L, col C: reason')."""
    result = _parse(text, task, lenient=False)
    return result.program


def parse_lenient(text: str, task: Task) -> LenientParse:
    """Parse what can be parsed: keep every valid object, list each rejected statement with its reason."""
    return _parse(text, task, lenient=True)


def format_program(program: Program, task: Task, precision: int = PRECISION) -> str:
    """Canonical text: one `add(...)` per line, fields in the task's order, numbers as `{:+.Nf}`."""
    return "\n".join(format_object(obj, task, precision) for obj in program)


def format_object(obj: Obj, task: Task, precision: int = PRECISION) -> str:
    numbers = [format_number(v, precision) for name in task.numeric if name in obj.numbers for v in obj.numbers[name]]
    return object_template(obj, task, "%s") % tuple(numbers)


def object_template(obj: Obj, task: Task, hole: str) -> str:
    """format_object's text as a %-template: `hole` (a conversion such as %s or %+.3f) for each value of the
    object's numeric fields that the task declares, in the task's order ('%.0s' for the values it does not
    show: an arity-1 field shows its first). The same template serves every object with the same attributes
    and the same fields of the same lengths."""
    attrs, numbers = obj.attrs, obj.numbers
    parts = [f"{name}='{attrs[name]}'".replace("%", "%%") for name in task.categorical if name in attrs]
    for name, decl in task.numeric.items():
        if name in numbers:
            holes = [hole] * len(numbers[name])
            if decl.arity == 1:
                parts.append(f"{name}={holes[0]}{'%.0s' * (len(holes) - 1)}")
            else:
                parts.append(f"{name}=({', '.join(holes)})")
    return f"add({', '.join(parts)})"


def format_number(value: float, precision: int) -> str:
    text = "%+.*f" % (precision, value)
    return "+" + text[1:] if not text.strip("+-0.") else text  # a zero is '+0.000', never '-0.000'


# ---------------------------------------------------------------------------------------------- parsing


def _parse(text: str, task: Task, lenient: bool) -> LenientParse:
    if not isinstance(text, str):
        raise UserError(f"a program must be text, got {type(text).__name__}")
    body, line_offset = _strip_fence(text)
    if len(body) > MAX_PROGRAM_CHARS:
        return _fail(Rejection(1 + line_offset, 1, f"program longer than {MAX_PROGRAM_CHARS} characters"), lenient)
    try:
        statements = [(stmt, line_offset) for stmt in _ast_statements(body)]
    except _SyntaxProblem as problem:
        if not lenient:
            raise ProgramError(_shift(problem.rejection, line_offset)) from None
        statements, rejections = _statements_line_by_line(body, line_offset)
        return _objects_from(statements, task, rejections, lenient)
    return _objects_from(statements, task, [], lenient)


def _fail(rejection: Rejection, lenient: bool) -> LenientParse:
    if not lenient:
        raise ProgramError(rejection)
    return LenientParse(Program(), [rejection])


def _objects_from(statements, task: Task, rejections: list[Rejection], lenient: bool) -> LenientParse:
    objects = []
    for stmt, line_offset in statements:
        try:
            objects.append(_object_from_statement(stmt, task))
        except _SyntaxProblem as problem:
            rejection = _shift(problem.rejection, line_offset)
            if not lenient:
                raise ProgramError(rejection) from None
            rejections.append(rejection)
    rejections.sort(key=lambda r: (r.line, r.col))
    return LenientParse(Program(objects), rejections)


def _strip_fence(text: str) -> tuple[str, int]:
    """The code inside the first ``` fence (to the closing fence or the end), and its line offset."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if _FENCE.match(line):
            end = next((i for i in range(start + 1, len(lines)) if _FENCE.match(lines[i])), len(lines))
            return "\n".join(lines[start + 1 : end]), start + 1
    return text, 0


class _SyntaxProblem(Exception):
    def __init__(self, rejection: Rejection):
        self.rejection = rejection


def _shift(rejection: Rejection, line_offset: int) -> Rejection:
    return Rejection(rejection.line + line_offset, rejection.col, rejection.reason)


def _ast_statements(source: str) -> list[ast.stmt]:
    try:
        return ast.parse(source, mode="exec").body
    except SyntaxError as err:
        raise _SyntaxProblem(Rejection(err.lineno or 1, err.offset or 1, f"syntax error: {err.msg}")) from None
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, absurd nesting
        raise _SyntaxProblem(Rejection(1, 1, f"unparseable text: {type(err).__name__}")) from None


def _statements_line_by_line(body: str, line_offset: int):
    """Fallback for text that is not valid Python as a whole (e.g. output cut off mid-line)."""
    statements, rejections = [], []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            statements.extend((stmt, line_offset + number - 1) for stmt in _ast_statements(line.strip()))
        except _SyntaxProblem as problem:
            rejections.append(Rejection(line_offset + number, problem.rejection.col, problem.rejection.reason))
    return statements, rejections


def _where(node: ast.AST) -> tuple[int, int]:
    return node.lineno, node.col_offset + 1


def _problem(node: ast.AST, reason: str) -> _SyntaxProblem:
    return _SyntaxProblem(Rejection(*_where(node), reason))


def _object_from_statement(stmt: ast.stmt, task: Task) -> Obj:
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "add"):
        raise _problem(stmt, "expected a call add(name=value, ...)")
    if call.args:
        raise _problem(call.args[0], "positional arguments are not allowed; write name=value")
    attrs: dict[str, str] = {}
    numbers: dict[str, tuple[float, ...]] = {}
    for keyword in call.keywords:
        name = keyword.arg
        if name is None:
            raise _problem(keyword, "'**' arguments are not allowed")
        if name in attrs or name in numbers:
            raise _problem(keyword, f"duplicate field '{name}'")
        if name in task.categorical:
            attrs[name] = _categorical_value(keyword.value, task.categorical[name])
        elif name in task.numeric:
            numbers[name] = _numeric_value(keyword.value, name, task.numeric[name].arity)
        else:
            raise _problem(
                keyword, f"unknown field '{_clip(name)}'{did_you_mean(name, task.field_names)} for task '{task.name}'"
            )
    missing = [n for n in task.categorical if n not in attrs]
    missing += [n for n, d in task.numeric.items() if d.required and n not in numbers]
    if missing:
        raise _problem(call, f"missing field{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}")
    return Obj(attrs, numbers)


def _categorical_value(node: ast.expr, decl) -> str:
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        raise _problem(node, f"field '{decl.name}' must be a quoted string, got {_describe(node)}")
    value = decl.normalise(node.value)
    if value is None:
        hint = did_you_mean(node.value, [*decl.values, *decl.synonyms])
        raise _problem(node, f"unknown {decl.name} '{_clip(node.value)}'{hint}; expected one of {choices(decl.values)}")
    return value


def _numeric_value(node: ast.expr, name: str, arity: int) -> tuple[float, ...]:
    items = node.elts if isinstance(node, (ast.Tuple, ast.List)) else [node]
    values = tuple(_number(item, name) for item in items)
    if len(values) != arity:
        shape = "a number" if arity == 1 else f"a tuple of {arity} numbers"
        raise _problem(node, f"field '{name}' must be {shape}, got {len(values)} value{'s' if len(values) != 1 else ''}")
    return values


def _number(node: ast.expr, name: str) -> float:
    sign = 1.0
    inner = node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        inner = node.operand
    if not (isinstance(inner, ast.Constant) and type(inner.value) in (int, float)):
        raise _problem(node, f"field '{name}' must hold number literals, got {_describe(node)}")
    try:
        value = sign * float(inner.value)
    except OverflowError:  # an integer literal beyond any float
        raise _problem(node, f"field '{name}' holds an integer out of range for a float") from None
    if not math.isfinite(value):
        raise _problem(node, f"field '{name}' holds a number that is not finite")
    return value


def _clip(text: str, limit: int = 40) -> str:
    """Untrusted text quoted in a reason, cut so that the reason stays one readable line."""
    return text if len(text) <= limit else text[:limit] + "..."


def _describe(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return f"{type(node.value).__name__} {node.value!r}"[:60]
    return {ast.Call: "a function call", ast.Name: "a name", ast.Attribute: "an attribute"}.get(
        type(node), f"an expression ({type(node).__name__})"
    )
