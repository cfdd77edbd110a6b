"""Representation unification (seed paper 002's idea): do parallel English and native
statements get similar hidden states as continued pretraining goes on?

Each statement is its mean final-norm hidden state; each language's vectors are centred
on that language's mean (removing the language-identity direction, which otherwise
makes every cross-lingual pair look alike); `parallel` is the mean cosine between a
statement and its own translation, `baseline` the mean cosine between a statement and
the other items' translations. parallel > baseline means the model relates the two.
"""

from __future__ import annotations

import numpy as np


def unification(en: np.ndarray, xx: np.ndarray) -> tuple[float, float]:
    if len(en) != len(xx) or len(en) < 2:
        return float("nan"), float("nan")

    def unit(a: np.ndarray) -> np.ndarray:
        a = a - a.mean(0, keepdims=True)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    sim = unit(en.astype(np.float64)) @ unit(xx.astype(np.float64)).T
    n = len(sim)
    parallel = float(np.trace(sim) / n)
    baseline = float((sim.sum() - np.trace(sim)) / (n * (n - 1)))
    return parallel, baseline
