"""The dataset card (README.md with YAML front matter) and sample grid of a pushed igbench dataset."""
from __future__ import annotations

import io
from pathlib import Path

import yaml

from igbench.task import load_task

SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M")]

CITATION = """@misc{igbench,
  title  = {igbench: an open benchmark suite for inverse graphics},
  year   = {2026},
  note   = {Rendered with igbench; see the generation settings in this card}
}
@inproceedings{johnson2017clevr,
  title     = {{CLEVR}: A Diagnostic Dataset for Compositional Language and Elementary Visual Reasoning},
  author    = {Johnson, Justin and Hariharan, Bharath and van der Maaten, Laurens and Fei-Fei, Li and
               Zitnick, C. Lawrence and Girshick, Ross},
  booktitle = {CVPR},
  year      = {2017}
}
@article{kulits2024igllm,
  title   = {Re-Thinking Inverse Graphics With Large Language Models},
  author  = {Kulits, Peter and Feng, Haiwen and Liu, Weiyang and Abrevaya, Victoria and Black, Michael J.},
  journal = {Transactions on Machine Learning Research},
  year    = {2024}
}"""


def size_category(n: int) -> str:
    return next((label for limit, label in SIZE_CATEGORIES if n < limit), "n>10M")


def front_matter(splits, license: str) -> dict:
    from igbench.dataset import features

    task = load_task(splits[0].saved["config"]["task"])
    total = sum(s.n for s in splits)
    return {
        "license": license,
        "pretty_name": f"igbench {task.name}",
        "task_categories": ["image-to-text"],
        "tags": ["inverse-graphics", "synthetic", "blender", "igbench", task.name],
        "size_categories": [size_category(total)],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s.name, "path": f"data/{s.name}-*"} for s in splits]}],
        "dataset_info": {
            "config_name": "default",
            "features": features(task, depth=bool(splits[0].saved["config"].get("depth")))._to_yaml_list(),
            "splits": [{"name": s.name, "num_examples": s.n} for s in splits],
        },
    }


def render_card(splits, repo_id: str, license: str) -> str:
    task = load_task(splits[0].saved["config"]["task"])
    meta = yaml.safe_dump(front_matter(splits, license), sort_keys=False)
    first = splits[0].saved
    versions = first.get("versions", {})
    settings = first.get("render_settings", {})
    split_rows = "\n".join(
        f"| `{s.name}` | {s.n} | {s.saved['config']['seed']} | {_rules(task, s.name)} |" for s in splits
    )
    return f"""---
{meta}---

# igbench {task.name}

{task.description}

Rendered with igbench, an open benchmark suite for inverse graphics:
each image comes with the **scene program** that renders it, e.g.

```python
{_first_program(splits[0])}
```

![samples](images/samples.png)

## Splits

| split | samples | base seed | rules |
|---|---|---|---|
{split_rows}

Sample *i* of a split is fully determined by (task, split, base seed, *i*); its own seed is stored in the
`seed` column.

## Generation settings

- igbench {versions.get("igbench")}, Blender (bpy) {versions.get("bpy")}, Python {versions.get("python")}
- Cycles on {settings.get("device", "cpu")}, {settings.get("width")}x{settings.get("height")} pixels,
  {settings.get("samples")} samples, OpenImageDenoise {"on" if settings.get("denoise") else "off"},
  {settings.get("max_bounces")} light bounces{", depth maps (`depth`, millimetres)" if settings.get("depth") else ""}
- Task file SHA-256: `{first.get("task_sha256")}` (the YAML that declares vocabulary and split rules;
  the full render configs are in `igbench/`)

## Loading

```python
import datasets
ds = datasets.load_dataset("{repo_id}", split="{splits[0].name}")
ds[0]["image"], ds[0]["program"]
```

Columns: `id`, `task`, `split`, `index`, `seed`, `image`, `segmentation` (instance ids: 0 ground,
*k* the program's *k*-th object), `program` (canonical text), `objects` (per object attributes, 3-D
location, rotation, pixel coordinates, visible pixels, 2-D box), `camera` (`K`, `world_to_camera` with
OpenCV axes), `lights`.

## Citation

```bibtex
{CITATION}
```
"""


def _rules(task, split: str) -> str:
    rules = task.split_rules(split)
    parts = [f"{rules['num_objects'][0]}-{rules['num_objects'][1]} objects"] if "num_objects" in rules else []
    palette = len(task.categorical["color"].values) if "color" in task.categorical else 0
    for shape, colors in (rules.get("colors_by_shape") or {}).items():
        if len(colors) < palette:  # name only the restricted palettes
            parts.append(f"{shape}: {'/'.join(colors)}")
    return "; ".join(parts) or "see task YAML"


def _first_program(split) -> str:
    import pyarrow.parquet as pq

    table = pq.read_table(split.files[0], columns=["program"])
    return table.column("program")[0].as_py()


def sample_grid(parquet: Path, out: Path, columns: int = 4, rows: int = 2, width: int = 240) -> None:
    """A grid of the first images of a parquet file, for the card."""
    import pyarrow.parquet as pq
    from PIL import Image

    images = [Image.open(io.BytesIO(cell["bytes"])).convert("RGB")
              for cell in pq.read_table(parquet, columns=["image"]).column("image").to_pylist()[: columns * rows]]
    height = round(width * images[0].height / images[0].width)
    grid = Image.new("RGB", (columns * width, ((len(images) + columns - 1) // columns) * height), "white")
    for k, image in enumerate(images):
        grid.paste(image.resize((width, height)), ((k % columns) * width, (k // columns) * height))
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
