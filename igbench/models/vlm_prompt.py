"""What a pretrained VLM is asked (no torch): instructions built from the task YAML, k-shot examples, the
refinement turn, and the hashes that identify a prompt.

Templates are text files with `{placeholders}` (igbench/prompts/program.txt and refine.txt; replace
them with `predict.prompt=FILE` / `predict.refine_prompt=FILE`). The instruction template may use:
{task_description} {grammar} {vocabulary} {numbers} {frame} {camera}; the refinement template:
{previous_program} {parse_errors}. A placeholder a template does not use is simply not shown.

A conversation is a list of chat messages, `{"role": "user" | "assistant", "content": [part, ...]}`,
each part `{"type": "text", "text": ...}` or `{"type": "image", "png": bytes}`; the local model and the
API client each turn it into what they send.
"""
from __future__ import annotations

import hashlib
import io
import json
import string
from pathlib import Path

import numpy as np

from igbench.errors import UserError
from igbench.program import Obj
from igbench.task import Task

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
PROGRAM_TEMPLATE = PROMPTS_DIR / "program.txt"
REFINE_TEMPLATE = PROMPTS_DIR / "refine.txt"
INSTRUCTION_FIELDS = ("task_description", "grammar", "vocabulary", "numbers", "frame", "camera")
REFINE_FIELDS = ("previous_program", "parse_errors")
SHOT_REQUEST = "Write the scene program of this image."
# What a program's numbers mean, by the task's declared kind (igbench.task.KINDS).
FRAMES = {
    "scene_set": "world coordinates, z up, the ground plane is z = 0; lengths in scene units, angles in radians",
    "pose": "world coordinates, z up, the ground plane is z = 0; lengths in scene units; each rotation in the "
            "'{rotation_rep}' representation",
    "canvas": "canvas coordinates: x to the right and y down, from 0 to 1 across the image",
}
NUMBER_STYLE = "; numbers written with a sign and 3 decimals, e.g. +1.250"


def read_template(path: str | Path | None, default: Path, fields: tuple[str, ...]) -> str:
    """A template's text; a placeholder outside `fields` is a one-line error naming it."""
    path = Path(path) if path else default
    try:
        text = path.read_text()
    except OSError as err:
        raise UserError(f"cannot read the prompt template {path}: {err.strerror}") from None
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in fields:
            raise UserError(f"prompt template {path} uses '{{{name}}}'; placeholders: "
                            + ", ".join(f"{{{f}}}" for f in fields))
    return text


def task_facts(task: Task) -> dict[str, str]:
    """The task's program grammar, vocabularies, numeric fields and frame, as prompt text."""
    from igbench.models.prompting import format_target

    example = Obj({name: decl.values[0] for name, decl in task.categorical.items()},
                  {name: (0.0,) * decl.arity for name, decl in task.numeric.items()})
    grammar, _ = format_target([example], task)
    vocabulary = "\n".join(f"- {name}: {', '.join(decl.values)}" for name, decl in task.categorical.items())
    sampling = task.spec.get("sampling") or {}
    numbers = []
    for name, decl in task.numeric.items():
        line = f"- {name}: {decl.arity} number{'s' if decl.arity > 1 else ''}" + ("" if decl.required else " (optional)")
        if name == "loc" and "xy_range" in sampling:
            low, high = sampling["xy_range"]
            line += f"; x and y in [{low}, {high}]" + ("; z is the height of the object's centre above the ground"
                                                     if decl.arity == 3 else "")
        elif name == "rotation" and decl.arity == 1:
            line += "; yaw about the vertical axis, in radians"
        numbers.append(line)
    sizes = task.spec.get("sizes")
    if sizes:
        numbers.append("- sizes (bounding radius on the ground): "
                       + ", ".join(f"{k} = {v}" for k, v in sizes.items()))
    frame = FRAMES[task.kind].format(rotation_rep=task.rotation_rep) + NUMBER_STYLE
    return {"task_description": " ".join(str(task.description).split()), "grammar": grammar,
            "vocabulary": vocabulary, "numbers": "\n".join(numbers), "frame": frame, "camera": ""}


def camera_text(camera: dict) -> str:
    """The sample's camera: intrinsics K (pixels) and world_to_camera (OpenCV axes: x right, y down, z forward)."""
    def rounded(rows):
        return [[round(float(v), 3) for v in row] for row in rows]

    return (f"Camera of this image ({camera['width']}x{camera['height']} pixels, OpenCV axes: x right, y down, "
            f"z forward): K = {rounded(camera['K'])}, world_to_camera = {rounded(camera['world_to_camera'])}\n")


def fill(template: str, values: dict[str, str]) -> str:
    return template.format_map({k: values.get(k, "") for _, k, _, _ in string.Formatter().parse(template) if k})


def pick_shots(rows: list[dict], k: int, seed: int) -> list[dict]:
    """`k` rows drawn without replacement with `seed` (the same seed, the same examples)."""
    if k < 0:
        raise UserError(f"predict.k_shot must be non-negative, got {k}")
    if k > len(rows):
        raise UserError(f"predict.k_shot={k} but the train split holds {len(rows)} samples")
    order = np.random.default_rng(seed).permutation(len(rows))[:k]
    return [rows[int(i)] for i in sorted(order)]


def image_bytes(image) -> bytes:
    """PNG bytes of a dataset image cell (a dict with 'bytes', or raw bytes)."""
    return image["bytes"] if isinstance(image, dict) else bytes(image)


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def image_part(png: bytes) -> dict:
    return {"type": "image", "png": png}


def first_conversation(instructions: str, image_png: bytes, shots: list[tuple[bytes, str]]) -> list[dict]:
    """The instructions, each shot as a user turn (image) and an assistant turn (its program), then the image."""
    messages = []
    for png, program in shots:
        messages.append({"role": "user", "content": [image_part(png), text_part(SHOT_REQUEST)]})
        messages.append({"role": "assistant", "content": [text_part(program)]})
    messages.append({"role": "user", "content": [image_part(image_png), text_part(SHOT_REQUEST)]})
    messages[0]["content"].insert(0, text_part(instructions))
    return messages


def refine_conversation(instructions: str, side_by_side_png: bytes, refine_text: str) -> list[dict]:
    return [{"role": "user", "content": [text_part(instructions), image_part(side_by_side_png), text_part(refine_text)]}]


def side_by_side(target_rgb: np.ndarray, render_rgb: np.ndarray, gap: int = 4) -> bytes:
    """PNG of the target (left) and the render (right), separated by a white gap."""
    from PIL import Image

    h = max(target_rgb.shape[0], render_rgb.shape[0])
    canvas = np.full((h, target_rgb.shape[1] + gap + render_rgb.shape[1], 3), 255, np.uint8)
    canvas[:target_rgb.shape[0], :target_rgb.shape[1]] = target_rgb
    canvas[:render_rgb.shape[0], target_rgb.shape[1] + gap:] = render_rgb
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    return buf.getvalue()


def conversation_sha256(messages: list[dict]) -> str:
    """sha256 of a conversation, each image stood for by the sha256 of its bytes."""
    def part(p):
        return {"type": "image", "sha256": hashlib.sha256(p["png"]).hexdigest()} if p["type"] == "image" else p

    identity = [{"role": m["role"], "content": [part(p) for p in m["content"]]} for m in messages]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
