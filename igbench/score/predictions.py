"""The predictions file: writing it as a model predicts (resumably), reading it to score.

Writing: `todo_rows` skips the ids already in the file (dropping a last line a crash cut off) and
`append_predictions` adds each finished batch, flushed, so a stopped run keeps what it wrote.
Reading: file-level problems are UserErrors (one line); per-sample problems are failures.

A predictions file holds one JSON object per line, `{"id": ..., "program": "..."}` or
`{"id": ..., "objects": [{...}, ...]}`; other keys are kept and ignored. Blank lines are skipped.

File-level (the run stops with one line): an empty file, a line that is not a JSON object, an id that is
not a string, a duplicate id, ids not in the reference (checked by the caller).
Per sample (scored as a failure, the run goes on): invalid UTF-8 inside a line, `program` / `objects`
missing or of the wrong JSON type, and everything the lenient program parser rejects.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from igbench.errors import UserError
from igbench.files import write_text_atomic
from igbench.program import Obj, Program, Rejection, parse_lenient
from igbench.task import Task

MAX_ABS_NUMBER = 1e6  # scene units / radians; larger values are rejected as out of range

# failure reasons (keys of the "failures" table in scores.json)
MISSING = "missing_prediction"
INVALID_UTF8 = "invalid_utf8"
WRONG_TYPE = "wrong_json_type"
EMPTY = "empty_program"


@dataclass
class Prediction:
    id: str
    line: int
    program: str | None = None
    objects: list | None = None
    failure: str | None = None  # a record-level failure (wrong JSON type, invalid UTF-8)
    detail: str = ""


@dataclass
class ParsedPrediction:
    """What gets scored for one sample: the objects that were accepted, and why anything was not."""

    program: Program
    reasons: list[str] = field(default_factory=list)  # failure reason keys, one per problem
    details: list[str] = field(default_factory=list)  # human-readable messages

    @property
    def ok(self) -> bool:
        return not self.reasons


def predicted_ids(out: str | Path) -> set[str]:
    """Ids already in an output file being written. A last line cut off by a crash is dropped from the file."""
    out = Path(out)
    if not out.exists():
        return set()
    done, good = set(), []
    lines = out.read_text().splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            done.add(record["id"])
            good.append(line if line.endswith("\n") else line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            if number == len(lines):  # an unfinished last line: rewrite without it
                break
            raise UserError(f"{out} line {number} is not a prediction; remove the file or choose another --out") from None
    if len(good) != len(lines) or (lines and not lines[-1].endswith("\n")):
        write_text_atomic(out, "".join(good))
    return done


def todo_rows(rows: list[dict], out: str | Path, limit: int | None) -> tuple[list[dict], int]:
    """The rows still to predict (ids not yet in `out`, among the first `limit` of the split), and how many
    `out` already holds."""
    if limit is not None and limit < 0:
        raise UserError(f"--limit must be non-negative, got {limit}")
    done = predicted_ids(out)
    chosen = rows if limit is None else rows[:limit]
    return [r for r in chosen if r["id"] not in done], len(done)


def append_predictions(out: str | Path, records: list[dict]) -> None:
    """Add records (`{"id": ..., "program": ...}`, plus any keys of the model's) to `out`, flushed."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.flush()


def write_predictions(out: str | Path, records: list[dict]) -> None:
    """A whole predictions file at once, atomically."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(out), "".join(json.dumps(record) + "\n" for record in records))


def read_predictions(path: str | Path) -> tuple[list[Prediction], str]:
    """(records, sha256 of the file's bytes). Raises UserError for file-level problems."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"predictions file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder; expected a predictions .jsonl file") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    return parse_prediction_lines(data, str(path)), hashlib.sha256(data).hexdigest()


def parse_prediction_lines(data: bytes, name: str = "predictions") -> list[Prediction]:
    records: list[Prediction] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text, bad_utf8 = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            text, bad_utf8 = raw.decode("utf-8", errors="replace"), True
        try:
            item = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            why = "invalid UTF-8" if bad_utf8 else getattr(err, "msg", type(err).__name__)
            raise UserError(f"{name} line {number}: not a JSON object ({why}); expected JSON lines like "
                            '{"id": "clevr/val/000000", "program": "add(...)"}') from None
        if not isinstance(item, dict):
            raise UserError(f"{name} line {number}: expected a JSON object, got a JSON {_json_type(item)}")
        sample_id = item.get("id")
        if not isinstance(sample_id, str):
            what = "no 'id'" if "id" not in item else f"'id' is a JSON {_json_type(sample_id)}, not a string"
            raise UserError(f"{name} line {number}: {what}")
        if sample_id in seen:
            raise UserError(f"{name}: duplicate id '{sample_id[:80]}' on lines {seen[sample_id]} and {number}")
        seen[sample_id] = number
        records.append(_record(item, sample_id, number, bad_utf8))
    if not records:
        raise UserError(f"{name} is empty: expected one JSON object per line")
    return records


def _record(item: dict, sample_id: str, number: int, bad_utf8: bool) -> Prediction:
    record = Prediction(sample_id, number)
    if bad_utf8:
        record.failure, record.detail = INVALID_UTF8, "the line is not valid UTF-8"
    elif "program" in item and item["program"] is not None:
        if isinstance(item["program"], str):
            record.program = item["program"]
        else:
            record.failure = WRONG_TYPE
            record.detail = f"'program' must be a string, got a JSON {_json_type(item['program'])}"
    elif "objects" in item and item["objects"] is not None:
        if isinstance(item["objects"], list):
            record.objects = item["objects"]
        else:
            record.failure = WRONG_TYPE
            record.detail = f"'objects' must be a list, got a JSON {_json_type(item['objects'])}"
    else:
        record.failure, record.detail = WRONG_TYPE, "neither 'program' (a string) nor 'objects' (a list)"
    return record


def _json_type(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
            int: "number", float: "number"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------- per-sample parsing


def parse_prediction(record: Prediction | None, task: Task) -> ParsedPrediction:
    """The program to score for a sample, never raising: failures become reasons and an emptier program."""
    if record is None:
        return ParsedPrediction(Program(), [MISSING], ["no prediction for this id"])
    if record.failure:
        return ParsedPrediction(Program(), [record.failure], [record.detail])
    if record.objects is not None:
        program, rejections = objects_to_program(record.objects, task)
    else:
        result = parse_lenient(record.program, task)
        program, rejections = result.program, list(result.rejections)
    kept, rejections = _range_check(program, rejections)
    parsed = ParsedPrediction(kept)
    for rejection in rejections:
        parsed.reasons.append(reason_key(rejection.reason))
        parsed.details.append(str(rejection) if rejection.line else rejection.reason)
    if not kept.objects and not rejections:
        parsed.reasons.append(EMPTY)
        parsed.details.append("the program holds no objects")
    return parsed


def _range_check(program: Program, rejections: list[Rejection]) -> tuple[Program, list[Rejection]]:
    kept = []
    rejections = list(rejections)
    for k, obj in enumerate(program.objects):
        bad = [name for name, values in obj.numbers.items() if any(abs(v) > MAX_ABS_NUMBER for v in values)]
        if bad:
            rejections.append(Rejection(0, 0, f"object {k + 1}: field '{bad[0]}' out of range (|x| > {MAX_ABS_NUMBER:g})"))
        else:
            kept.append(obj)
    return Program(kept), rejections


_REASONS = [
    (re.compile(r"^syntax error|^unparseable"), "syntax_error"),
    (re.compile(r"^unknown field"), "unknown_field"),
    (re.compile(r"^unknown "), "unknown_value"),
    (re.compile(r"^missing field"), "missing_field"),
    (re.compile(r"not finite"), "non_finite_number"),
    (re.compile(r"out of range"), "number_out_of_range"),
    (re.compile(r"^program longer"), "too_long"),
    (re.compile(r"^duplicate field"), "duplicate_field"),
    (re.compile(r"^expected a call|^positional|^'\*\*'"), "not_an_add_call"),
    (re.compile(r"must be|must hold"), "wrong_field_type"),
]


def reason_key(message: str) -> str:
    """A short stable key for a parser message ('unknown color 'pink'...' -> 'unknown_value')."""
    text = re.sub(r"^object \d+: ", "", message)
    for pattern, key in _REASONS:
        if pattern.search(text):
            return key
    return "other"


def objects_to_program(items: list, task: Task) -> tuple[Program, list[Rejection]]:
    """An `objects` list of structs -> Program, with the same vocabulary and number rules as the parser.

    Each item is a JSON object with the task's categorical fields (strings, synonyms accepted) and numeric
    fields (a number or a list of numbers of the declared arity). A dataset row's `has_<field>: false`
    marks an optional field as absent. Unknown extra keys are ignored (dataset rows carry annotations)."""
    objects, rejections = [], []
    for k, item in enumerate(items):
        try:
            objects.append(_object_from_struct(item, task))
        except ValueError as err:
            rejections.append(Rejection(0, 0, f"object {k + 1}: {err}"))
    return Program(objects), rejections


def _object_from_struct(item, task: Task) -> Obj:
    if not isinstance(item, dict):
        raise ValueError(f"an object must be a JSON object, got a JSON {_json_type(item)}")
    attrs, numbers = {}, {}
    for name, decl in task.categorical.items():
        if name not in item:
            raise ValueError(f"missing field '{name}'")
        value = item[name]
        if not isinstance(value, str):
            raise ValueError(f"field '{name}' must be a string, got a JSON {_json_type(value)}")
        canonical = decl.normalise(value)
        if canonical is None:
            raise ValueError(f"unknown {name} '{value[:40]}'")
        attrs[name] = canonical
    for name, decl in task.numeric.items():
        if name not in item or item[name] is None or item.get(f"has_{name}", True) is False:
            if decl.required:
                raise ValueError(f"missing field '{name}'")
            continue
        value = item[name]
        values = value if isinstance(value, list) else [value]
        if len(values) != decl.arity or not all(type(v) in (int, float) for v in values):
            raise ValueError(f"field '{name}' must be {decl.arity} number(s)")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"field '{name}' holds a number that is not finite")
        numbers[name] = tuple(float(v) for v in values)
    return Obj(attrs, numbers)
