"""Statistics over per-item correctness: paired BCa bootstrap and exact McNemar (scipy),
Holm correction (statsmodels), RankC (no library has it), EMA."""

from __future__ import annotations

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests


def paired_bootstrap_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 10_000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """BCa bootstrap CI of mean(a) - mean(b) for paired per-item scores, resampling items
    (scipy.stats.bootstrap, paired). When every item has the same difference the
    distribution is a point and the CI is that point (BCa is undefined there)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"paired samples need equal, non-zero lengths ({len(a)} vs {len(b)})")
    d = a - b
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    res = stats.bootstrap(
        (a, b), _mean_difference, paired=True, vectorized=True, n_resamples=n_boot, batch=1000,
        confidence_level=1 - alpha, method="BCa", rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return a.mean(axis=axis) - b.mean(axis=axis)


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for paired booleans: a binomial test (p = 1/2) on
    the discordant pairs; 1 when there are none."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n01 = int((a & ~b).sum())
    n = n01 + int((~a & b).sum())
    return 1.0 if n == 0 else float(stats.binomtest(n01, n, 0.5).pvalue)


def holm(pvalues: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Holm step-down adjusted p-values over one family of tests (statsmodels)."""
    pvalues = np.asarray(pvalues, dtype=float)
    if len(pvalues) == 0:
        return pvalues
    return multipletests(pvalues, alpha=alpha, method="holm")[1]


def rankc(rank_a: np.ndarray, rank_b: np.ndarray) -> float:
    """RankC (Qi et al. 2023): mean over items of sum_j w_j * P@j between two languages'
    option rankings, w = softmax over (n-1, ..., 0) so the top ranks weigh most.

    `rank_a[i]` lists option indices of item i best first; options are aligned by index.
    """
    rank_a, rank_b = np.asarray(rank_a), np.asarray(rank_b)
    n_items, n = rank_a.shape
    if n_items == 0:
        return float("nan")
    w = np.exp(np.arange(n - 1, -1, -1, dtype=float))
    w /= w.sum()
    total = 0.0
    for ra, rb in zip(rank_a, rank_b):
        total += sum(w[j - 1] * len(set(ra[:j]) & set(rb[:j])) / j for j in range(1, n + 1))
    return total / n_items


def ema(values: list[float], weight: float = 0.8) -> list[float]:
    """TensorBoard-style smoothing: s_t = weight * s_{t-1} + (1 - weight) * x_t, s_0 = x_0."""
    out: list[float] = []
    for x in values:
        out.append(x if not out else weight * out[-1] + (1 - weight) * x)
    return out
