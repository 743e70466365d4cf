"""Scoring: predictions.jsonl against a rendered reference split -> scores.json, per-sample JSONL, report.

Library entry point (what the CLI and the trainer call):

    from igbench.score import score_predictions
    result = score_predictions(predictions, reference)   # -> dict in the scores.json schema
"""
from igbench.score.api import ScoreConfig, run_score, score_predictions

__all__ = ["ScoreConfig", "run_score", "score_predictions"]
