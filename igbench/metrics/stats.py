"""Bootstrap confidence intervals, seeded and deterministic."""
from __future__ import annotations

import numpy as np

N_RESAMPLES = 1000
SEED = 0


def resample_counts(n: int, n_resamples: int = N_RESAMPLES, seed: int = SEED, chunk: int = 100):
    """Yield (chunk, n) matrices W: W[r, b] = how often scene b is drawn in resample r (n draws with
    replacement, uniform). Seeded with numpy's PCG64, so the same (n, n_resamples, seed) gives the same W."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        rows = min(chunk, n_resamples - done)
        draws = rng.integers(0, n, size=(rows, n))
        counts = np.zeros((rows, n))
        for r in range(rows):
            counts[r] = np.bincount(draws[r], minlength=n)
        yield counts
        done += rows


def bootstrap_ratios(num: np.ndarray, den: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """Percentile bootstrap interval of ratio-of-sums statistics, resampling scenes.

    For per-scene numerators x_b and denominators y_b (columns k), each resample r draws B scenes with
    replacement (counts w_rb) and computes  s_rk = sum_b w_rb x_bk / sum_b w_rb y_bk ; the interval is the
    ((1 - level)/2, (1 + level)/2) quantiles of s_rk over r. Means are the case y_b = 1. Resamples with a
    zero denominator give NaN (left out of the quantiles). Returns the (n_resamples, K) matrix of s_rk."""
    num = np.asarray(num, float).reshape(len(num), -1)
    den = np.asarray(den, float).reshape(len(den), -1)
    n = num.shape[0]
    if n == 0:
        return np.full((n_resamples, num.shape[1]), np.nan)
    stats = []
    for w in resample_counts(n, n_resamples, seed):
        top, bottom = w @ num, w @ den
        with np.errstate(divide="ignore", invalid="ignore"):
            stats.append(np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan))
    return np.concatenate(stats)


def percentile_interval(stats: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The ((1 - level)/2, (1 + level)/2) quantiles of each column of resampled statistics, NaNs left out."""
    stats = np.asarray(stats, float).reshape(len(stats), -1)
    alpha = (1 - level) / 2
    lo, hi = np.full(stats.shape[1], np.nan), np.full(stats.shape[1], np.nan)
    for k in range(stats.shape[1]):
        column = stats[:, k][np.isfinite(stats[:, k])]
        if column.size:
            lo[k], hi[k] = np.quantile(column, [alpha, 1 - alpha])
    return lo, hi
