"""The one-screen summary `xcult prep` ends with."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from xcult import layout
from xcult.config import RunConfig


def print_summary(cfg: RunConfig, stats: dict[str, dict[str, Any]]) -> None:
    t = Table(title=f"xcult prep — {cfg.experiment.name}")
    for col in ("output", "docs", "tokens", "mono:par", "min dist", "dropped", "skipped", "s"):
        t.add_column(col, justify="left" if col == "output" else "right")
    for unit, s in stats.items():
        dropped = sum(n for i in s["inputs"].values() for n in i["dropped"].values())
        skipped = sum(n for i in s["inputs"].values() for n in i["skipped"].values())
        for o in s["outputs"]:
            ratio = o.get("ratio_mono_per_parallel")
            t.add_row(
                f"{unit}/{o['setting']}" if o["setting"] != "monolingual" else unit,
                f"{o['documents']:,}",
                f"{o['tokens']:,}",
                "—" if ratio is None else f"{ratio:.3f}",
                "—" if o.get("min_pair_distance") is None else f"{o['min_pair_distance']:,}",
                f"{dropped:,}",
                f"{skipped:,}",
                f"{s['seconds']:.1f}",
            )
    c = Console()
    c.print(t)
    for unit, s in stats.items():
        if cs := s.get("codeswitch"):
            c.print(f"{unit}/with: code-switched {cs['words_switched']:,} of {cs['words_listed']:,} lexicon words (rate {cs['rate']})")
    c.print(f"manifest: {layout.of(cfg).manifest}")
