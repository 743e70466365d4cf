"""Baselines for the benchmark table, each a model in `igbench.models.MODELS` (trained and run through
`igbench train --model NAME` / `igbench predict`, like IG-LLM):

    oracle          the reference programs themselves (the ceiling; its re-render fidelity is the noise floor)
    prior           the train split's most frequent attributes, mean count and mean positions
    cnn-set         a small CNN trained from scratch to fill K object slots, Hungarian-matched (DETR-style)
    render-compare  analysis by synthesis: refines any predictions' continuous parameters by re-rendering

The leaderboard (`igbench.leaderboard`, `make benchmark`) runs them all and writes results/. Installed as
`igbench.baselines`; nothing here imports torch or bpy at import time.
"""
