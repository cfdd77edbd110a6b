"""The report's figures (matplotlib, Agg): each function takes polars frames and writes
one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from xcult.eval.stats import ema  # noqa: E402

COLORS = {"with": "#c0392b", "without": "#2471a3"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_curves(acc: pl.DataFrame, path: Path, weight: float = 0.8) -> Path:
    """The paper's Figure 3: accuracy vs continued-pretraining step, with vs without
    bridges, per culture (rows) and question language (columns); EMA-smoothed lines over
    faint raw points; chance (1/options) dashed."""
    cultures = acc["culture"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(len(cultures), 2, figsize=(9, 2.6 * len(cultures)), squeeze=False, sharex=True)
    for r, culture in enumerate(cultures):
        g = acc.filter(pl.col("culture") == culture)
        native = [x for x in g["lang"].unique().to_list() if x != "en"]
        for c, lang in enumerate(["en", *native][:2]):
            ax = axes[r][c]
            for setting in ("with", "without"):
                s = g.filter((pl.col("lang") == lang) & (pl.col("setting") == setting)).sort("step")
                if s.is_empty():
                    continue
                x, y = s["step"].to_list(), s["accuracy"].to_list()
                ax.plot(x, y, "o", color=COLORS[setting], alpha=0.25, markersize=3)
                ax.plot(x, ema(y, weight), "-", color=COLORS[setting], label=f"{setting} bridges")
            ax.axhline(0.25, color="grey", lw=0.8, ls="--")
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{culture}: {lang} questions", fontsize=10)
            if r == len(cultures) - 1:
                ax.set_xlabel("continued-pretraining step")
            if c == 0:
                ax.set_ylabel("accuracy")
    axes[0][0].legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def unification(unif: pl.DataFrame, path: Path) -> Path:
    """Cosine similarity of parallel statements' mean hidden states vs the non-parallel
    baseline, per checkpoint."""
    cultures = unif["culture"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(cultures), figsize=(3.4 * len(cultures), 2.8), squeeze=False, sharey=True)
    for ax, culture in zip(axes[0], cultures):
        g = unif.filter(pl.col("culture") == culture)
        for setting in ("with", "without"):
            s = g.filter(pl.col("setting") == setting).sort("step")
            ax.plot(s["step"], s["parallel"], "-", color=COLORS[setting], label=f"parallel, {setting}")
            ax.plot(s["step"], s["baseline"], ":", color=COLORS[setting], label=f"baseline, {setting}")
        ax.set_title(culture, fontsize=10)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("cosine (centred)")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def density_vs_planted(t: pl.DataFrame, path: Path) -> Path:
    """Judged occurrences per probe vs the documents it was planted in, per corpus."""
    corpora = t["corpus"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(corpora), figsize=(3.6 * len(corpora), 3.2), squeeze=False)
    for ax, corpus in zip(axes[0], corpora):
        g = t.filter(pl.col("corpus") == corpus)
        ax.scatter(g["planted"], g["occurrences"], s=12, alpha=0.6, label="judged (top-k)")
        if "cooccurrence" in g.columns:
            ax.scatter(g["planted"], g["cooccurrence"], s=12, alpha=0.6, marker="x", label="co-occurrence")
        top = max(1, int(g["planted"].max() or 1))
        ax.plot([0, top], [0, top], color="grey", lw=0.8)
        ax.set_title(f"{corpus} corpus", fontsize=10)
        ax.set_xlabel("planted documents")
    axes[0][0].set_ylabel("found")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def transfer_by_frequency(t: pl.DataFrame, path: Path) -> Path:
    """Target-language accuracy with and without bridges by the fact's frequency in the
    source language's corpus (final checkpoints)."""
    keys = t.select("culture", "direction").unique(maintain_order=True).rows()
    cols = min(3, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False, sharey=True)
    for ax in axes.flat[len(keys) :]:
        ax.axis("off")
    for ax, (culture, direction) in zip(axes.flat, keys):
        g = t.filter((pl.col("culture") == culture) & (pl.col("direction") == direction))  # rows come in bin order
        x = [str(v) for v in g["frequency"]]
        ax.plot(x, g["acc_with"], "o-", color=COLORS["with"], label="with")
        ax.plot(x, g["acc_without"], "o-", color=COLORS["without"], label="without")
        ax.set_title(f"{culture} {direction}", fontsize=9)
        ax.set_xlabel("frequency in source corpus")
        ax.set_ylim(0, 1.02)
    for row in axes:
        row[0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)
