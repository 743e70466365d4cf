"""Prompts and targets of IG-LLM as text (no torch): what the model is shown and what it must write.

A target is the scene program with one `add(...)` per object, objects left to right in the image (pixel
x of the object's centre), wrapped as the paper's answer ("The scene can be produced with:" and a fenced
python block). Training augmentations, each optional: the keyword arguments of every call in a random
order, and each categorical value replaced by a random synonym (the canonical name included). With
`numeric='float'` every number becomes one placeholder token and its value is returned separately, in
the order the placeholders appear.
"""
from __future__ import annotations

import re

from igbench.program import Obj, format_number
from igbench.scene import object_from_row
from igbench.task import Task


def ordered_objects(row: dict, task: Task, left_to_right: bool = True) -> list[Obj]:
    """The row's objects as `Obj`s, sorted left to right by pixel x (ties: by depth) when asked."""
    rows = list(row["objects"])
    if left_to_right:
        rows = sorted(rows, key=lambda r: (r["pixel_coords"][0], r["pixel_coords"][2]))
    return [object_from_row(r, task) for r in rows]


def synonyms_of(task: Task) -> dict[str, dict[str, list[str]]]:
    """field -> canonical value -> every name for it (canonical first)."""
    table = {}
    for name, decl in task.categorical.items():
        names = {value: [value] for value in decl.values}
        for synonym, value in decl.synonyms.items():
            names[value].append(synonym)
        table[name] = names
    return table


def format_target(objects: list[Obj], task: Task, rng=None, shuffle_attributes: bool = False,
                  synonyms: bool = False, numeric: str = "char", number_token: str = "<num>",
                  precision: int = 3, numbers_first: bool = False) -> tuple[str, list[float]]:
    """The program text of `objects` and, with numeric='float', the values its placeholders stand for.

    `rng` (a numpy Generator) is needed only for the two augmentations; `numbers_first` writes each call's
    numbers before its categorical attributes (the values come back in the order the placeholders appear)."""
    if (shuffle_attributes or synonyms) and rng is None:
        raise ValueError("augmentations need an rng")
    names = synonyms_of(task) if synonyms else None
    lines, values = [], []
    for obj in objects:
        parts, numbers = [], []
        for name in task.categorical:
            if name not in obj.attrs:
                continue
            value = obj.attrs[name]
            if names is not None:
                options = names[name][value]
                value = options[int(rng.integers(len(options)))]
            parts.append(f"{name}='{value}'")
        for name, decl in task.numeric.items():
            if name not in obj.numbers:
                continue
            if numeric == "float":
                texts = [number_token] * len(obj.numbers[name])
                values.extend(float(v) for v in obj.numbers[name])
            else:
                texts = [format_number(v, precision) for v in obj.numbers[name]]
            numbers.append(f"{name}={texts[0]}" if decl.arity == 1 else f"{name}=({', '.join(texts)})")
        parts = numbers + parts if numbers_first else parts + numbers
        if shuffle_attributes:
            parts = [parts[i] for i in rng.permutation(len(parts))]
        lines.append(f"add({', '.join(parts)})")
    return "\n".join(lines), values


def answer_text(code: str, template: str) -> str:
    return template.replace("{code}", code)


def split_prompt(template: str) -> tuple[str, str]:
    """The prompt's text before and after the image."""
    if template.count("{image}") != 1:
        raise ValueError("the prompt template must contain '{image}' exactly once")
    before, after = template.split("{image}")
    return before, after


def fill_numbers(text: str, values: list[float], number_token: str, precision: int = 3) -> str:
    """Write predicted values into the placeholders, in order (`{:+.3f}`). Extra placeholders (no value)
    stay as they are, so the scorer sees and rejects them instead of reading a made-up number."""
    pieces = text.split(number_token)
    out = [pieces[0]]
    for i, piece in enumerate(pieces[1:]):
        out.append(format_number(values[i], precision) if i < len(values) else number_token)
        out.append(piece)
    return "".join(out)


_WORD = re.compile(r"[A-Za-z_]+|```")


def vocabulary_words(task: Task, prompt_template: str, answer_template: str) -> list[str]:
    """Whole words for the built-in tokenizer: the task's field names, values and synonyms, the words
    of the prompt and answer, and the pieces every program repeats."""
    words = {"add", "python", "```", "add(", "=(", "', ", ", ", "='", ")\n"}
    for name, decl in task.categorical.items():
        words.update([name, *decl.values, *decl.synonyms])
    words.update(task.numeric)
    for text in (prompt_template, answer_template):
        words.update(_WORD.findall(text.replace("{image}", " ").replace("{code}", " ")))
        words.update(w for w in re.split(r"(?<=\S)(?=\s)", text) if w.strip() and "{" not in w)
    return sorted(words)
