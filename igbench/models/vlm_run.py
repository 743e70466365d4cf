"""The prediction loop shared by pretrained VLMs, local (`--model vlm`) or behind an OpenAI-compatible
server (`--model api`): prompt, k-shot examples, optional render-feedback refinement, one JSONL line per
sample appended as each batch finishes (a stopped run keeps its lines; the same command continues).

A backend turns conversations (igbench.models.vlm_prompt) into answers:

    backend.answer(conversations, ids) -> list[Answer]     backend.identity -> dict (model, endpoint)

Refinement (`predict.refine_rounds=K`): each answer is parsed by the scorer's lenient parser and rendered
with the executor under the sample's own camera, lights, Cycles seed and the split's render settings; the
model then sees the target and the render side by side (plus the parse errors) and writes a corrected
program. Every round (its program, image loss, renders, tokens, seconds) is stored; the kept round is the
one with the lowest image loss, the earliest among equals, so the first answer is kept when no later one
is better. The image loss is igbench.baselines.render_compare's: the mean squared difference of the
Gaussian-blurred render and target.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from igbench.errors import UserError
from igbench.files import write_json_atomic, write_text_atomic


@dataclass
class VLMModel:
    path: str = ""  # a Hub model id or a local folder (`tiny-random:<arch>` builds one at train time)


@dataclass
class VLMPredict:
    batch_size: int = 4  # samples per generate call (local) or per group of requests (api)
    max_new_tokens: int = 512
    do_sample: bool = False  # greedy by default; sampling draws with `seed`
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    prompt: Optional[str] = None  # instruction template file (default: igbench/prompts/program.txt)
    refine_prompt: Optional[str] = None  # refinement template file (default: igbench/prompts/refine.txt)
    camera: bool = False  # tell the model each sample's camera
    k_shot: int = 0  # examples (image + program) from `shot_split`, drawn with `shot_seed`
    shot_split: str = "train"
    shot_seed: int = 0
    refine_rounds: int = 0
    render_device: str = "cpu"  # cpu | gpu (Cycles), for refinement renders
    render_samples: Optional[int] = None  # Cycles samples per refinement render; null: the split's
    blur: float = 1.0  # Gaussian sigma (pixels) of the image loss
    # --model api only
    concurrency: int = 4  # requests in flight at once
    timeout: float = 120.0  # seconds per request
    max_retries: int = 6  # on 429, 5xx, timeouts, connection errors and malformed bodies
    backoff: float = 0.5  # seconds before the first retry; doubles each retry (at most 30 s)
    cache: bool = True  # response cache on disk
    cache_dir: Optional[str] = None  # default: vlm-responses in igbench.files.cache_folder


@dataclass
class VLMConfig:
    model: VLMModel = field(default_factory=VLMModel)
    predict: VLMPredict = field(default_factory=VLMPredict)


@dataclass
class Answer:
    text: str
    tokens_in: int
    tokens_out: int
    seconds: float
    cached: Optional[bool] = None  # API answers: whether the response cache had it; local: None


def generation_params(p: VLMPredict) -> dict:
    """What changes an answer besides the prompt (part of the API cache key)."""
    params = {"max_new_tokens": p.max_new_tokens, "do_sample": p.do_sample}
    if p.do_sample:
        params.update(temperature=p.temperature, top_p=p.top_p, seed=p.seed)
    return params


def load_config(overrides=(), base: dict | None = None) -> VLMConfig:
    from igbench.config import load_config as load

    config = load(VLMConfig, None, list(overrides), base=base)
    p = config.predict
    if p.batch_size < 1 or p.max_new_tokens < 1 or p.concurrency < 1 or p.refine_rounds < 0 or p.max_retries < 0:
        raise UserError("predict.batch_size, max_new_tokens and concurrency must be at least 1; "
                        "refine_rounds and max_retries at least 0")
    return config


# ------------------------------------------------------------------------------------------- the loop


ROW_COLUMNS = ["id", "task", "index", "seed", "image", "camera", "lights"]


def run_predictions(backend, config: VLMConfig, data, split: str, out, limit=None, progress=True,
                    run_info: dict | None = None) -> dict:
    """Answer every sample of `split` not yet in `out`; `run_info` (a run folder's run.yaml) must name the
    split's task."""
    from tqdm.auto import tqdm

    from igbench.dataset import load_rows
    from igbench.runs import check_task
    from igbench.score.predictions import append_predictions, todo_rows

    p = config.predict
    task, rows, folder = load_rows(data, split, columns=ROW_COLUMNS)
    if run_info is not None:
        check_task(run_info, task, data)
    prompt = Prompt(config, task, data)
    out = Path(out)
    prompt.save_next_to(out, backend.identity)
    todo, skipped = todo_rows(rows, out, limit)
    refiner = Refiner(task, folder, split, config) if p.refine_rounds else None
    bar = tqdm(total=len(todo), desc=f"{backend.identity['model_kind']} {split}", disable=not progress, unit="img",
               dynamic_ncols=True)
    written = 0
    try:
        for start in range(0, len(todo), p.batch_size):
            batch = todo[start:start + p.batch_size]
            records = predict_batch(backend, prompt, batch, refiner)
            append_predictions(out, records)
            written += len(records)
            bar.update(len(records))
    finally:
        bar.close()
        if refiner:
            refiner.close()
    return {"written": written, "skipped": skipped, "out": str(out), "prompt_sha256": prompt.sha256}


def predict_batch(backend, prompt: "Prompt", rows: list[dict], refiner: Optional["Refiner"]) -> list[dict]:
    from igbench.models.vlm_prompt import first_conversation, image_bytes

    ids = [r["id"] for r in rows]
    images = [image_bytes(r["image"]) for r in rows]
    conversations = [first_conversation(prompt.instructions(r), png, prompt.shots) for r, png in zip(rows, images)]
    rounds = [[round_record(0, a)] for a in backend.answer(conversations, ids)]
    if refiner is not None:
        refiner.refine(backend, prompt, rows, images, rounds)
    records = []
    for row, history in zip(rows, rounds):
        kept = kept_round(history)
        record = {"id": row["id"], **answer_fields(history[kept]["program"]), "prompt_sha256": prompt.sha256,
                  **{k: sum(h[k] for h in history) for k in ("tokens_in", "tokens_out")},
                  "seconds": round(sum(h["seconds"] for h in history), 4)}
        if "cached" in history[0]:
            record["cached"] = all(h["cached"] for h in history)
        if refiner is not None:
            record.update(kept_round=kept, renders=sum(h.get("renders", 0) for h in history), rounds=history)
        records.append(record)
    return records


def answer_fields(text: str) -> dict:
    """How an answer goes to the scorer, as it is: JSON objects (a list of them, one, or {"objects": [...]},
    optionally in a ```json fence) as `objects` with the text kept as `answer`; anything else as `program`."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, ValueError):
        return {"program": text}
    if isinstance(value, dict):
        value = value["objects"] if isinstance(value.get("objects"), list) else [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return {"objects": value, "answer": text}
    return {"program": text}


def parsed_answer(sample_id: str, text: str, task):
    """The scorer's reading of an answer (igbench.score.predictions.parse_prediction)."""
    from igbench.score.predictions import Prediction, parse_prediction

    fields = answer_fields(text)
    return parse_prediction(Prediction(sample_id, 0, program=fields.get("program"), objects=fields.get("objects")), task)


def round_record(number: int, answer: Answer) -> dict:
    record = {"round": number, "program": answer.text, "tokens_in": answer.tokens_in, "tokens_out": answer.tokens_out,
              "seconds": round(answer.seconds, 4)}
    if answer.cached is not None:
        record["cached"] = answer.cached
    return record


def kept_round(history: list[dict]) -> int:
    """The round with the lowest image loss, the earliest among equals; round 0 when none was rendered."""
    losses = [(h["loss"], h["round"]) for h in history if h.get("loss") is not None]
    return min(losses)[1] if losses else 0


# ---------------------------------------------------------------------------------------- the prompt


class Prompt:
    """The instructions (from the task YAML and the template), the k-shot examples and the refinement
    template of a run, and their sha256 (saved next to the predictions and on every line)."""

    def __init__(self, config: VLMConfig, task, data):
        from igbench.models.vlm_prompt import (INSTRUCTION_FIELDS, PROGRAM_TEMPLATE, REFINE_FIELDS, REFINE_TEMPLATE,
                                               fill, read_template, task_facts)

        p = config.predict
        self.task, self.camera = task, p.camera
        self.template = read_template(p.prompt, PROGRAM_TEMPLATE, INSTRUCTION_FIELDS)
        self.refine_template = read_template(p.refine_prompt, REFINE_TEMPLATE, REFINE_FIELDS) if p.refine_rounds else None
        self.facts = task_facts(task)
        self.shots, shot_ids = self._shots(p, task, data)
        shown = fill(self.template, {**self.facts, "camera": "<the sample's camera>\n" if p.camera else ""})
        self.text = shown
        identity = {"instructions": shown, "shots": [{"id": i, "image_sha256": hashlib.sha256(png).hexdigest(),
                                                      "program": prog} for i, (png, prog) in zip(shot_ids, self.shots)],
                    "refine_template": self.refine_template, "refine_rounds": p.refine_rounds,
                    "generation": generation_params(p)}
        self.identity = identity
        self.sha256 = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    @staticmethod
    def _shots(p: VLMPredict, task, data) -> tuple[list[tuple[bytes, str]], list[str]]:
        from igbench.dataset import load_rows
        from igbench.models.prompting import format_target, ordered_objects
        from igbench.models.vlm_prompt import image_bytes, pick_shots

        if p.k_shot <= 0:
            return [], []
        shot_task, rows, _ = load_rows(data, p.shot_split, columns=["id", "task", "image", "objects"])
        if shot_task.name != task.name:
            raise UserError(f"the {p.shot_split} split is task '{shot_task.name}', not '{task.name}'")
        chosen = pick_shots(rows, p.k_shot, p.shot_seed)
        return ([(image_bytes(r["image"]), format_target(ordered_objects(r, task), task)[0]) for r in chosen],
                [r["id"] for r in chosen])

    def instructions(self, row: dict) -> str:
        from igbench.models.vlm_prompt import camera_text, fill

        camera = camera_text(row["camera"]) if self.camera else ""
        return fill(self.template, {**self.facts, "camera": camera})

    def refinement(self, previous: str, errors: list[str]) -> str:
        from igbench.models.vlm_prompt import fill

        problems = ("The scorer rejected parts of it:\n" + "\n".join(f"- {e}" for e in errors[:10]) + "\n") if errors else ""
        return fill(self.refine_template, {"previous_program": previous, "parse_errors": problems})

    def save_next_to(self, out: Path, backend_identity: dict) -> None:
        """OUT.prompt.txt (what the model is told) and OUT.prompt.json (the hash and what it covers); a rerun
        into the same file with another prompt is refused, so one file never mixes two prompts."""
        meta_path, text_path = out.with_suffix(".prompt.json"), out.with_suffix(".prompt.txt")
        if meta_path.exists() and out.exists():
            try:
                saved = json.loads(meta_path.read_text()).get("sha256")
            except (json.JSONDecodeError, AttributeError):
                saved = None
            if saved != self.sha256:
                raise UserError(f"{out} was written with another prompt or generation settings ({meta_path}); "
                                "choose another --out")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(text_path, self.text)
        meta = {"sha256": self.sha256, **{k: v for k, v in backend_identity.items() if k != "model_kind"},
                "k_shot": len(self.shots), **self.identity}
        write_json_atomic(meta_path, meta, sort_keys=False)


# ------------------------------------------------------------------------------------ render feedback


class Refiner:
    """Renders answers with the executor (one Blender child process per resolution) and runs the rounds."""

    def __init__(self, task, folder: Path, split: str, config: VLMConfig):
        self.task, self.folder, self.split, self.config = task, folder, split, config
        self.renderers: dict = {}

    def render(self, row: dict, program) -> tuple[Optional[object], Optional[str]]:
        from igbench.render.child import BlenderProcess
        from igbench.render_settings import split_render_settings
        from igbench.scene import Camera, Light, Scene

        camera = Camera.from_dict(row["camera"])
        key = (camera.width, camera.height)
        if key not in self.renderers:
            p = self.config.predict
            settings = split_render_settings(self.folder, camera, p.render_device, p.render_samples)
            self.renderers[key] = BlenderProcess(str(self.task.path), settings, "refinement")
        scene = Scene(self.task.name, self.split, int(row["index"]), int(row["seed"]), program, camera,
                      [Light.from_dict(x) for x in row["lights"]])
        try:
            return self.renderers[key].render(scene.to_dict(self.task)), None
        except RuntimeError as err:
            return None, str(err)[:200]

    def refine(self, backend, prompt: Prompt, rows: list[dict], images: list[bytes], rounds: list[list[dict]]) -> None:
        import numpy as np
        from PIL import Image

        from igbench.metrics.image import blur_rgb, image_loss_map
        from igbench.models.vlm_prompt import refine_conversation, side_by_side

        sigma = self.config.predict.blur
        targets = []
        for png in images:
            with Image.open(io.BytesIO(png)) as img:
                targets.append(np.asarray(img.convert("RGB")))
        for number in range(self.config.predict.refine_rounds + 1):
            conversations = []
            for row, target, history in zip(rows, targets, rounds):
                last = history[-1]
                parsed = parsed_answer(row["id"], last["program"], self.task)
                tick = time.perf_counter()
                rgb, error = self.render(row, parsed.program)
                last["seconds"] = round(last["seconds"] + time.perf_counter() - tick, 4)
                last["renders"] = 1
                last["parse_errors"] = parsed.details
                last["loss"] = None if rgb is None else float(image_loss_map(rgb, blur_rgb(target, sigma), sigma).mean())
                if error:
                    last["render_error"] = error
                if rgb is None:
                    rgb = np.zeros_like(target)
                conversations.append(refine_conversation(prompt.instructions(row), side_by_side(target, rgb),
                                                         prompt.refinement(last["program"], parsed.details)))
            if number == self.config.predict.refine_rounds:
                return
            answers = backend.answer(conversations, [r["id"] for r in rows])
            for history, answer in zip(rounds, answers):
                history.append(round_record(number + 1, answer))

    def close(self) -> None:
        for renderer in self.renderers.values():
            renderer.close()
