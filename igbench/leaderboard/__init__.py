"""The leaderboard: every model of `igbench.models.MODELS` rendered, trained, predicted and scored at one
scale, and the table of results (`make benchmark`, or `python -m igbench.leaderboard.run --scale S`).

    run.py      the driver: each step as the igbench command a user would type, resumably
    table.py    results/README.md and results/benchmark.png from the per-model scores
    configs/    the scales (small, dot2d, paper)

Not to be confused with `igbench bench render` (igbench/render/bench.py), which measures render speed.
"""
