"""The one-screen summaries `xcult eval` ends with."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table


def _acc_table(acc: pl.DataFrame, title: str) -> Table:
    t = Table(title=title)
    for c in ("culture", "setting", "step", "lang", "n", "accuracy", "ties 1/k", "tied@top", "RankC"):
        t.add_column(c, justify="right" if c not in ("culture", "setting", "lang") else "left")
    for r in acc.iter_rows(named=True):
        t.add_row(
            r["culture"], r["setting"], str(r["step"]), r["lang"], str(r["n"]),
            f"{r['accuracy']:.3f}", f"{r['accuracy_ties']:.3f}", str(r["items_tied_at_top"]), f"{r['rankc']:.3f}",
        )
    return t


def _p(v: float) -> str:
    return "<.001" if v < 0.001 else f"{v:.3f}"


def transfer_view(main: pl.DataFrame) -> Table:
    """The final-checkpoint transfer table in under 80 columns."""
    step = main["step"].max() if len(main) else 0
    t = Table(title=f"transfer at step {step}: acc(with) - acc(without)", min_width=60)
    for c in ("culture", "dir", "with", "w/o", "gap", "95% CI", "p", "Holm", ""):
        t.add_column(c, no_wrap=True)
    for r in main.iter_rows(named=True):
        t.add_row(
            r["culture"], r["direction"], f"{r['acc_with']:.2f}", f"{r['acc_without']:.2f}",
            f"{r['gap']:+.2f}", f"[{r['ci_low']:+.2f},{r['ci_high']:+.2f}]", _p(r["p_mcnemar"]), _p(r["p_holm"]), r["mark"],
        )
    return t


def compare_view(table: pl.DataFrame, notes: dict) -> Table:
    """`xcult compare`'s table in under 80 columns (A and B named in the title)."""
    short = lambda p: "/".join(Path(p).parts[-2:])  # noqa: E731
    t = Table(title=f"{notes['metric']}: A - B\nA = {short(notes['a'])}\nB = {short(notes['b'])}")
    for c in ("task", "n", "A", "B", "gap", "95% CI", "p", "Holm"):
        t.add_column(c, no_wrap=c != "task", overflow="fold")
    for r in table.iter_rows(named=True):
        t.add_row(
            r["task"], str(r["n"]), f"{r['acc_a']:.3f}", f"{r['acc_b']:.3f}", f"{r['gap']:+.3f}",
            f"[{r['ci_low']:+.2f},{r['ci_high']:+.2f}]", _p(r["p_mcnemar"]), "" if r["p_holm"] is None else _p(r["p_holm"]),
        )
    return t


def print_accuracy(source: Path | pl.DataFrame, stats: dict | None = None) -> None:
    console = Console()
    if isinstance(source, pl.DataFrame):
        console.print(_acc_table(source, "accuracy"))
        return
    acc = pl.read_parquet(source / "accuracy.parquet")
    last = acc.group_by("culture", "setting").agg(pl.col("step").max())
    console.print(_acc_table(acc.join(last, on=["culture", "setting", "step"]).sort("culture", "setting", "lang"), "accuracy at the final checkpoint"))
    console.print(transfer_view(pl.read_parquet(source / "main_table.parquet")))
    if stats:
        console.print(
            f"{stats['checkpoints_scored']} checkpoints scored, {stats['checkpoints_skipped']} already done; "
            f"{stats['questions_scored']} questions in {stats['seconds']} s; outputs in {source}"
        )


def sweep_view(summary: pl.DataFrame) -> Table:
    """One row per run x culture x direction: the final gap, its CI and significance
    (fits 80 columns: the run label carries the overrides)."""
    t = Table(title="sweep: transfer gap at each run's final checkpoint")
    for c in ("run", "culture", "dir", "gap", "95% CI", ""):
        t.add_column(c, overflow="fold")
    for r in summary.sort("run", "culture", "direction").iter_rows(named=True):
        t.add_row(r["run"], r["culture"], r["direction"], f"{r['gap']:+.3f}", f"[{r['ci_low']:+.2f},{r['ci_high']:+.2f}]", r["mark"])
    return t


def pooled_view(pooled: pl.DataFrame) -> Table:
    """One row per grid point x culture x direction: the gap over all seeds' items."""
    t = Table(title="sweep: transfer gap pooled over seeds (final checkpoints)")
    for c in ("point", "culture", "dir", "n", "gap", "95% CI", "p"):
        t.add_column(c, overflow="fold")
    for r in pooled.sort("point", "culture", "direction").iter_rows(named=True):
        t.add_row(r["point"], r["culture"], r["direction"], str(r["n"]), f"{r['gap']:+.3f}", f"[{r['ci_low']:+.3f},{r['ci_high']:+.3f}]", f"{r['p_mcnemar']:.3f}")
    return t


def diagnostics_line(diag: pl.DataFrame) -> str:
    """Final-checkpoint translation and alignment, with vs without bridges, in two lines."""
    last = diag.filter(pl.col("step") == diag["step"].max())
    parts = []
    for col, name in (("translation_name", "translated names"), ("translation_value", "values"), ("embedding_alignment", "embedding alignment")):
        if col in last.columns:
            w, wo = (last.filter(pl.col("setting") == s)[col].mean() for s in ("with", "without"))
            parts.append(f"{name} {w:.2f} / {wo:.2f}")
    return "with / without bridges: " + "; ".join(parts) if parts else ""
