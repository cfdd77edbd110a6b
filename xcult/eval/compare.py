"""`xcult compare A B`: paired significance between two sample logs in lm-eval's format
(lm-eval's `--log_samples` output, or the logs `xcult eval` writes per checkpoint):
per task and over all questions, accuracy of A and B, the gap with its paired BCa
bootstrap CI, the exact McNemar p-value, and Holm-corrected p-values across the tasks.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from xcult.errors import InputError
from xcult.eval.lm_eval_format import read_samples
from xcult.stats import holm, mcnemar_exact, paired_bootstrap_ci

ALL = "(all)"


def _metric(a: pl.DataFrame, b: pl.DataFrame, metric: str | None) -> str:
    """`metric`, else xcult's paper metric where both logs carry it, else lm-eval's `acc`."""
    have = lambda f, k: k in f.columns and f[k].null_count() == 0  # noqa: E731
    if metric is None:
        metric = "acc_mean" if have(a, "acc_mean") and have(b, "acc_mean") else "acc"
    for name, f in (("A", a), ("B", b)):
        if not have(f, metric):
            keys = sorted(c for c in f.columns if c.startswith("acc") and f[c].null_count() == 0)
            raise InputError(f"log {name} does not hold {metric!r} for every question (it has: {', '.join(keys) or 'none'})")
    return metric


def compare(a: Path, b: Path, metric: str | None = None, n_boot: int = 10_000, alpha: float = 0.05, seed: int = 0) -> tuple[pl.DataFrame, dict]:
    """(one row per task and one for all questions, notes: the metric and any tasks only
    one log holds). Questions pair by task and position; their documents must agree."""
    fa, fb = read_samples(a), read_samples(b)
    metric = _metric(fa, fb, metric)
    joined = fa.select("task", "doc_id", "key", a=metric).join(fb.select("task", "doc_id", "key", b=metric), on=["task", "doc_id"], how="full", coalesce=True)
    only = {
        "A": sorted(set(fa["task"]) - set(fb["task"])),
        "B": sorted(set(fb["task"]) - set(fa["task"])),
    }
    shared = joined.filter(pl.col("task").is_in(list(set(fa["task"]) & set(fb["task"]))))
    unpaired = shared.filter(pl.col("a").is_null() | pl.col("b").is_null())
    if unpaired.height:
        r = unpaired.row(0, named=True)
        raise InputError(f"task {r['task']}: the logs hold different numbers of questions (doc {r['doc_id']} is in one only)")
    differ = shared.filter(pl.col("key") != pl.col("key_right"))
    if differ.height:
        r = differ.row(0, named=True)
        raise InputError(f"task {r['task']} doc {r['doc_id']}: the two logs hold different questions there (document hashes differ)")
    if shared.is_empty():
        raise InputError(f"{a} and {b} share no task")
    rows = []
    for task, g in sorted(shared.group_by("task"), key=lambda x: x[0][0]):
        rows.append(_row(task[0], g, n_boot, alpha, seed))
    if len(rows) > 1:
        rows.append(_row(ALL, shared, n_boot, alpha, seed))
    table = pl.DataFrame(rows)
    tasks = table.filter(pl.col("task") != ALL)
    adjusted = dict(zip(tasks["task"], holm(tasks["p_mcnemar"].to_numpy(), alpha)))
    table = table.with_columns(p_holm=pl.col("task").replace_strict(adjusted, default=None, return_dtype=pl.Float64))
    return table, {"metric": metric, "only_in": only, "a": str(a), "b": str(b)}


def _row(task: str, g: pl.DataFrame, n_boot: int, alpha: float, seed: int) -> dict:
    g = g.sort("task", "doc_id")
    x, y = g["a"].to_numpy(), g["b"].to_numpy()
    lo, hi = paired_bootstrap_ci(x, y, n_boot, alpha, seed)
    return {
        "task": task, "n": len(x), "acc_a": float(x.mean()), "acc_b": float(y.mean()), "gap": float(x.mean() - y.mean()),
        "ci_low": lo, "ci_high": hi, "p_mcnemar": mcnemar_exact(x, y),
    }
