"""What a leaderboard scale cost on the machine that ran it, from its step log (`RUNS/bench_log.jsonl`: one
line per command run, with its seconds, exit code and start time)."""
from __future__ import annotations

import json
from pathlib import Path


def read_log(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals: wall-clock time with steps running side by side."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def cost_summary(entries: list[dict]) -> dict:
    """Seconds per kind of step (render, train, predict, score, refine), their sum, and the wall-clock time
    (the union of the steps' intervals; None when a step has no start time on record). Every logged run
    counts, interrupted and repeated ones too: what the machine spent, never less than a clean run."""
    by_kind: dict[str, float] = {}
    for entry in entries:
        kind = entry["what"].split()[0]
        by_kind[kind] = by_kind.get(kind, 0.0) + entry["seconds"]
    timed = entries and all("started" in e for e in entries)
    wall = union_seconds([(e["started"], e["started"] + e["seconds"]) for e in entries]) if timed else None
    return {"steps": len(entries), "seconds_by_kind": by_kind, "sum_seconds": sum(by_kind.values()),
            "wall_seconds": wall, "jobs": max((e.get("jobs", 1) for e in entries), default=1)}
