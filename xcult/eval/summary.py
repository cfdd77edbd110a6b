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


def transfer_view(main: pl.DataFrame) -> Table:
    t = Table(title="transfer at the final checkpoint: acc(with) - acc(without)")
    for c in ("culture", "direction", "step", "with", "without", "gap", "95% CI", "McNemar p", ""):
        t.add_column(c)
    for r in main.iter_rows(named=True):
        t.add_row(
            r["culture"], r["direction"], str(r["step"]), f"{r['acc_with']:.3f}", f"{r['acc_without']:.3f}",
            f"{r['gap']:+.3f}", f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]", f"{r['p_mcnemar']:.3g}", r["mark"],
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
