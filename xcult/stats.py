"""Statistics over per-item correctness: paired bootstrap, McNemar, RankC, EMA."""

from __future__ import annotations

import math

import numpy as np


def paired_bootstrap_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 10_000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """CI of mean(a) - mean(b) for paired per-item scores, resampling items."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"paired samples need equal, non-zero lengths ({len(a)} vs {len(b)})")
    rng = np.random.default_rng(seed)
    d = a - b
    means = np.empty(n_boot)
    for s in range(0, n_boot, 1000):  # bounded memory for large item sets
        idx = rng.integers(0, len(d), size=(min(1000, n_boot - s), len(d)))
        means[s : s + len(idx)] = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for paired booleans: binomial test on discordant pairs."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n01 = int((a & ~b).sum())
    n10 = int((~a & b).sum())
    n = n01 + n10
    if n == 0:
        return 1.0
    k = min(n01, n10)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


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
